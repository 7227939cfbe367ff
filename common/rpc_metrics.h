// Request metrics for a gRPC server, as an interceptor: the latency of every RPC by method, and the
// RPCs answered with an error by code. Requests the token check refuses (UNAUTHENTICATED) never
// reach an interceptor, so they are not counted here.
#ifndef PSREC_COMMON_RPC_METRICS_H_
#define PSREC_COMMON_RPC_METRICS_H_

#include <memory>
#include <string>

#include "grpcpp/support/server_interceptor.h"

namespace psrec {

// Observes `<prefix>_request_seconds{rpc="Pull"}` (a histogram, by the method's short name) and
// counts `<prefix>_rejected_requests_total{code="ABORTED"}` for every answer that is not OK, in the
// process's registry (common/metrics.h).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RequestMetricsInterceptor(
    const std::string& prefix);

}  // namespace psrec

#endif  // PSREC_COMMON_RPC_METRICS_H_

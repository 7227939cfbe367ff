// A parameter server's request metrics: psrec_ps_request_seconds{rpc="Pull"} (a histogram) and
// psrec_ps_rejected_requests_total{code="ABORTED"}, in the process's registry (common/metrics.h).
// Every request is measured where it is handled, from the start of its handling to its answer:
// the unary handlers (ps/server.cc) through Measured, and each request on a Stream
// (ps/stream_session.h), which gRPC sees as one call. Requests the token check refuses
// (UNAUTHENTICATED) never reach a handler, so they are not counted.
//
// A gRPC server interceptor did this for the unary calls until the ThreadSanitizer stage reported a
// race between gRPC deleting it with its ServerContext and gRPC running it, inside gRPC's own
// headers, as a server stopped on its own Shutdown RPC (docs/hardening.md). Timing in the handlers
// needs none of gRPC's experimental interceptor API.
#ifndef PSREC_PS_REQUEST_METRICS_H_
#define PSREC_PS_REQUEST_METRICS_H_

#include <string>

#include "absl/status/status.h"
#include "common/metrics.h"
#include "grpcpp/support/status.h"

namespace psrec {

// psrec_ps_request_seconds{rpc=`rpc`}.
Histogram RequestSeconds(const std::string& rpc);

// Counts an answer that is not OK in psrec_ps_rejected_requests_total, by code.
void CountRejected(absl::StatusCode code);

// Runs `handler` (returning a grpc::Status), observes its seconds as `rpc` and counts it when it is
// not OK; returns what it returned.
template <typename Handler>
grpc::Status Measured(const std::string& rpc, Handler&& handler) {
  const grpc::Status status = Timed(RequestSeconds(rpc), handler);
  if (!status.ok()) CountRejected(static_cast<absl::StatusCode>(status.error_code()));
  return status;
}

}  // namespace psrec

#endif  // PSREC_PS_REQUEST_METRICS_H_

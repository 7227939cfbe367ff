// The flags every long-running role (ps, worker, coordinator) takes for being run by an operator:
//   --health_port: gRPC health for Kubernetes' probes, plaintext and token-free (common/health.h).
//   --metrics_port: Prometheus /metrics over HTTP (common/metrics.h).
// 0, the default, turns either off.
#ifndef PSREC_COMMON_OPS_FLAGS_H_
#define PSREC_COMMON_OPS_FLAGS_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/health.h"
#include "common/metrics.h"

namespace psrec {

// --help lists the flags of this file for the roles that take them.
const char* OpsFlagsFile();

// Starts a `Server` (HealthServer or MetricsServer) on `port` when it is not 0, else returns
// nullptr. INVALID_ARGUMENT naming `flag` for a port outside [0, 65535].
template <typename Server>
absl::StatusOr<std::unique_ptr<Server>> StartIfRequested(absl::string_view flag, int port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", port, " is not in [0, 65535]"));
  }
  if (port == 0) return nullptr;
  return Server::Start(port);
}

// A role's operator endpoints; either is null when its flag is 0.
struct OpsEndpoints {
  std::unique_ptr<HealthServer> health;
  std::unique_ptr<MetricsServer> metrics;
};

// Starts what --health_port and --metrics_port ask for, and logs $POD_NAME once when it is set
// (Kubernetes' downward API), so that later log lines can be tied to a pod that is gone.
// INVALID_ARGUMENT for a port out of range, UNAVAILABLE when one cannot be listened on.
absl::StatusOr<OpsEndpoints> StartOpsEndpointsFromFlags();

}  // namespace psrec

#endif  // PSREC_COMMON_OPS_FLAGS_H_

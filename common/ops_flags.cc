#include "common/ops_flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "common/log.h"

ABSL_FLAG(int32_t, health_port, 0,
          "Serve gRPC health (grpc.health.v1) on 0.0.0.0:PORT, plaintext and without a token, for "
          "Kubernetes' probes: service \"\" is liveness, \"readiness\" is SERVING while this role "
          "can work and NOT_SERVING from SIGTERM on. 0: off.");
ABSL_FLAG(int32_t, metrics_port, 0,
          "Serve Prometheus metrics (psrec_*) at http://0.0.0.0:PORT/metrics, plaintext and "
          "without a token. 0: off.");

namespace psrec {

const char* OpsFlagsFile() { return __FILE__; }

absl::StatusOr<OpsEndpoints> StartOpsEndpointsFromFlags() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && pod[0] != '\0') {
    PSREC_LOG(INFO) << "pod " << pod;
  }
  OpsEndpoints ops;
  absl::StatusOr<std::unique_ptr<HealthServer>> health =
      StartIfRequested<HealthServer>("health_port", absl::GetFlag(FLAGS_health_port));
  if (!health.ok()) return health.status();
  ops.health = *std::move(health);
  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics =
      StartIfRequested<MetricsServer>("metrics_port", absl::GetFlag(FLAGS_metrics_port));
  if (!metrics.ok()) return metrics.status();
  ops.metrics = *std::move(metrics);
  return ops;
}

}  // namespace psrec

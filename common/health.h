// gRPC's health service (grpc.health.v1.Health, Check and Watch) on a port of its own, plaintext
// and without a token, for Kubernetes' probes (--health_port). The kubelet's gRPC probe can present
// neither a token nor a client certificate and does not speak TLS, so the probes get their own port
// and every RPC on the main port keeps needing the token (deploy/NOTES-for-cpp.md, "Ports").
//
// Two service names answer:
//   ""           liveness: SERVING while the process runs.
//   "readiness"  SERVING while the role can do its work (SetReady), NOT_SERVING from Stopping() on.
// Any other name answers NOT_FOUND, as gRPC's health service does. Thread-safe.
#ifndef PSREC_COMMON_HEALTH_H_
#define PSREC_COMMON_HEALTH_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"

namespace psrec {

class HealthServer {
 public:
  static constexpr char kReadiness[] = "readiness";

  // Serves on 0.0.0.0:`port` (0 picks a free port), live and not ready, and logs the address.
  // UNAVAILABLE naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(int port);
  // Stops serving; probes in flight are cancelled.
  ~HealthServer();

  int port() const { return port_; }
  // Readiness follows `ready` until Stopping() has been called; after that it stays NOT_SERVING.
  void SetReady(bool ready);
  // The role is stopping (SIGTERM): readiness goes NOT_SERVING for good. Liveness stays SERVING
  // until the process exits, so that the kubelet does not kill a pod that is finishing cleanly.
  void Stopping();

 private:
  HealthServer() = default;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::CallbackGenericService unimplemented_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Null-safe shorthands for the roles, whose health server is absent without --health_port.
inline void SetReady(HealthServer* health, bool ready) {
  if (health != nullptr) health->SetReady(ready);
}
inline void SetStopping(HealthServer* health) {
  if (health != nullptr) health->Stopping();
}

}  // namespace psrec

#endif  // PSREC_COMMON_HEALTH_H_

#include "common/health.h"

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"

namespace psrec {

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(int port) {
  // gRPC's own health service, which every server built from here on gets; psrec's main servers
  // have it too (common/rpc.cc).
  grpc::EnableDefaultHealthCheckService(true);
  const std::string address = absl::StrCat("0.0.0.0:", port);
  std::unique_ptr<HealthServer> health(new HealthServer());
  grpc::ServerBuilder builder;
  // gRPC lets servers share a port by default (SO_REUSEPORT); a probe must reach this process.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // gRPC adds its health service only once the server starts, and refuses to build a server with
  // no service of its own; the generic one answers every other method UNIMPLEMENTED.
  builder.RegisterCallbackGenericService(&health->unimplemented_);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &health->port_);
  health->server_ = builder.BuildAndStart();
  if (health->server_ == nullptr || health->port_ == 0 ||
      health->server_->GetHealthCheckService() == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve health on ", address));
  }
  grpc::HealthCheckServiceInterface* service = health->server_->GetHealthCheckService();
  service->SetServingStatus("", true);
  service->SetServingStatus(kReadiness, false);
  PSREC_LOG(INFO) << "health (grpc.health.v1, plaintext) on 0.0.0.0:" << health->port_;
  return health;
}

HealthServer::~HealthServer() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
}

void HealthServer::SetReady(bool ready) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  server_->GetHealthCheckService()->SetServingStatus(kReadiness, ready);
}

void HealthServer::Stopping() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  server_->GetHealthCheckService()->SetServingStatus(kReadiness, false);
}

}  // namespace psrec

#include "common/rpc.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/security.h"
#include "common/service_flags.h"
#include "grpcpp/health_check_service_interface.h"

namespace psrec {

absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  // gRPC and absl share the canonical codes and their numbers (OK = 0 .. UNAUTHENTICATED = 16).
  const int number = static_cast<int>(status.error_code());
  const absl::StatusCode code = number > 0 && number <= 16 ? static_cast<absl::StatusCode>(number)
                                                           : absl::StatusCode::kUnknown;
  return absl::Status(code, absl::StrCat(what, " failed: ", absl::StatusCodeToString(code), ": ",
                                         status.error_message()));
}

grpc::ChannelArguments QuickReconnect() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A restarted peer may come back at a new address under the same name (a Kubernetes pod made
  // again, a container restarted by podman). gRPC resolves the name again only when a connection
  // attempt fails, and by default an attempt to an address where nothing answers (no RST, as after
  // the peer's IP is gone) lasts 20 s, and resolutions are at least 30 s apart: with
  // --fail_after=30s the coordinator gave up on a server that was back after 12 s
  // (scripts/k8s_e2e.sh --scenario=kill-ps). Attempts of 5 s and resolutions 1 s apart find it.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
  // A DNS query that is never answered (the e2e's DNS server, podman's aardvark-dns, fell silent
  // for 15 s and more after a container started) would hold the resolution for up to gRPC's
  // default of 2 minutes: it fails after 2 s instead, and PeerChannel tries on a new channel.
  args.SetInt(GRPC_ARG_DNS_ARES_QUERY_TIMEOUT_MS, 2000);
  return args;
}

PeerChannel::PeerChannel(std::string address, const grpc::ChannelArguments& args)
    : address_(std::move(address)),
      args_(args),
      channel_(CreatePeerChannel(address_, args_)),
      made_(absl::Now()) {}

void PeerChannel::Renew() {
  channel_ = CreatePeerChannel(address_, args_);
  made_ = absl::Now();
  ++renewals_;
}

bool PeerChannel::Refresh() {
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && absl::Now() - made_ >= kMinAge) {
    Renew();
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return state == GRPC_CHANNEL_READY;
}

bool PeerChannel::WaitForConnected(absl::Time deadline) {
  while (!Refresh()) {
    if (absl::Now() >= deadline) return false;
    const grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/false);
    // Connected since Refresh looked: waiting for a change from READY would sleep to the deadline
    // (and the caller's call would then fail DEADLINE_EXCEEDED without being sent). Loaded machines
    // hit this window: OpsIntegrationTest's workers failed GetConfig to both shards 1 run in 10.
    if (state == GRPC_CHANNEL_READY) continue;
    // A failed channel is looked at again when it is old enough to be replaced.
    const absl::Time wake =
        state == GRPC_CHANNEL_TRANSIENT_FAILURE ? std::min(deadline, made_ + kMinAge) : deadline;
    channel_->WaitForStateChange(state, absl::ToChronoTime(wake));
  }
  return true;
}

absl::Status RetryWhileUnreachable(absl::Duration fail_after,
                                   const std::function<absl::Status(absl::Time give_up)>& attempt) {
  const absl::Time give_up = absl::Now() + fail_after;
  for (bool logged = false;;) {
    absl::Status s = attempt(give_up);
    if (!(absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s))) return s;
    if (absl::Now() >= give_up) {
      return absl::Status(
          s.code(), absl::StrCat(s.message(), "; gave up after ", absl::FormatDuration(fail_after),
                                 " (--fail_after)"));
    }
    if (!logged) {
      PSREC_LOG(WARNING) << s.message() << "; retrying for up to "
                         << absl::FormatDuration(fail_after);
    }
    logged = true;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<StartedServer> StartServer(const std::string& host, int port,
                                          const std::vector<grpc::Service*>& services,
                                          int max_message_bytes) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const std::string address = ListenAddress(host, port);
  StartedServer started;
  builder.AddListeningPort(address, ServerCredentials(), &started.port);
  AddAuthCheck(&builder);
  if (max_message_bytes > 0) builder.SetMaxReceiveMessageSize(max_message_bytes);
  for (grpc::Service* service : services) builder.RegisterService(service);
  started.server = builder.BuildAndStart();
  if (started.server == nullptr || started.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  started.server->GetHealthCheckService()->SetServingStatus(true);
  return started;
}

}  // namespace psrec

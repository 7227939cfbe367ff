// What every role that serves or calls RPCs shares: status conversion both ways, channel settings
// for peers that restart, the retry loop for an unreachable peer, and starting a server with the
// job's credentials, token check and health service.
#ifndef PSREC_COMMON_RPC_H_
#define PSREC_COMMON_RPC_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace psrec {

// OK for an OK `status`; otherwise an absl::Status with the same canonical code and the message
// "<what> failed: <CODE>: <grpc message>", where `what` names the RPC and the peer.
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what);

// Channel arguments for a peer that may not be up yet, or may restart: gRPC's reconnect backoff
// (by default growing from 1 s to 2 min, during which calls fail at once) is held to 100 ms .. 1 s,
// so a retry or a wait_for_ready call notices a peer within a second of its coming up, also at a
// new address under the same name (the name is resolved again at most once a second while it
// resolves; a name that stopped resolving needs a new channel: PeerChannel).
grpc::ChannelArguments QuickReconnect();

// A channel to one peer, made anew once it has failed. A gRPC channel keeps the addresses it last
// resolved while its peer's name no longer resolves, and retries a failed resolution with a
// back-off growing from 1 s towards 2 minutes that no channel argument shortens (gRPC 1.51): a peer
// made again under the same name at a new address (a Kubernetes pod re-made, a container restarted
// by podman) was found only after --fail_after (scripts/k8s_e2e.sh --scenario=kill-ps). A new
// channel resolves the name at once. Channels carry the job's credentials (CreatePeerChannel).
// Not thread-safe; the channels it hands out are.
class PeerChannel {
 public:
  // A channel has lived this long before it is given up for a new one: a peer that stays away
  // costs a new channel, and so a resolution, about once a second.
  static constexpr absl::Duration kMinAge = absl::Seconds(1);

  PeerChannel(std::string address, const grpc::ChannelArguments& args);

  const std::string& address() const { return address_; }
  // The channel of the next call. A call made earlier keeps its own channel (its ClientContext
  // holds it), also after Renew.
  const std::shared_ptr<grpc::Channel>& get() const { return channel_; }
  // Channels made after the first.
  int renewals() const { return renewals_; }

  // Replaces the channel by a new one to the same address.
  void Renew();

  // True when the channel is connected. Otherwise starts connecting it, after replacing it by a
  // new one if it is in TRANSIENT_FAILURE and kMinAge old; one that is connecting is left to
  // finish its attempt.
  bool Refresh();

  // Refreshes the channel until it is connected (true) or `deadline` has passed (false).
  bool WaitForConnected(absl::Time deadline);

 private:
  const std::string address_;
  const grpc::ChannelArguments args_;
  std::shared_ptr<grpc::Channel> channel_;
  absl::Time made_;
  int renewals_ = 0;
};

// Calls `attempt(give_up)` until it returns anything but UNAVAILABLE or DEADLINE_EXCEEDED (a peer
// not up yet, restarting, or silent), every 200 ms for up to `fail_after`; an attempt should not
// let its call outlive `give_up` by more than the call's own deadline, and should make its call on
// a channel it has seen connected (PeerChannel::WaitForConnected), since a channel that has failed
// may not find its peer again for a long time. The first failure is logged. A peer still
// unreachable at the end gives the last error, with "; gave up after <fail_after> (--fail_after)"
// added.
absl::Status RetryWhileUnreachable(absl::Duration fail_after,
                                   const std::function<absl::Status(absl::Time give_up)>& attempt);

// The same code and message as a grpc::Status, for a handler's answer.
grpc::Status ToGrpc(const absl::Status& status);

// A started gRPC server and the port it listens on.
struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

// Builds and starts a server on `host`:`port` (0: a free port) for `services`, with the job's
// credentials and token check (common/security.h) and gRPC's health service, serving. Messages up
// to `max_message_bytes` are received (0: gRPC's default of 4 MiB). UNAVAILABLE naming the address
// when it cannot listen.
absl::StatusOr<StartedServer> StartServer(const std::string& host, int port,
                                          const std::vector<grpc::Service*>& services,
                                          int max_message_bytes = 0);

}  // namespace psrec

#endif  // PSREC_COMMON_RPC_H_

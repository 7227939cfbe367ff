// Flags shared by the roles that serve or call RPCs (ps, coordinator, worker), defined once here.
//   --host, --port, --port_file: where a server listens, and where it reports a port it picked.
//   --rpc_timeout: the deadline of every RPC, and how long a peer may take to come up.
//   --register_timeout: how long registration may take (a coordinator and its workers start
//     together but load their data at their own pace).
//   --fail_after: how long a peer may stay unreachable before the job fails, naming it.
//   --checkpoint_dir: where checkpoints live (ps and coordinator).
#ifndef PSREC_COMMON_SERVICE_FLAGS_H_
#define PSREC_COMMON_SERVICE_FLAGS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace psrec {

// --help lists the flags of these files: ServiceFlagsFile() for servers, PeerFlagsFile() for every
// role that calls peers (peer_flags.cc).
const char* ServiceFlagsFile();
const char* PeerFlagsFile();

std::string HostFlag();
int PortFlag();
std::string PortFileFlag();
absl::Duration RpcTimeoutFlag();
absl::Duration RegisterTimeoutFlag();
absl::Duration FailAfterFlag();
std::string CheckpointDirFlag();

// "host:port" for grpc::ServerBuilder::AddListeningPort, with an IPv6 host put in brackets.
std::string ListenAddress(const std::string& host, int port);

// If --port_file is set, writes `port` there through a temporary file and a rename, so a reader
// never sees a partial number.
absl::Status WritePortFileIfRequested(int port);

}  // namespace psrec

#endif  // PSREC_COMMON_SERVICE_FLAGS_H_

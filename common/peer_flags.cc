// The flags of every role that talks to peers, `psrec train` included (service_flags.h declares
// their accessors). The listening flags (--host, --port, --port_file) are in service_flags.cc, so
// that --help and flag checking offer them only to the roles that serve.
#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "common/service_flags.h"

ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(30),
          "Deadline of every RPC, and how long to wait for a peer to come up.");

ABSL_FLAG(
    absl::Duration, register_timeout, absl::Minutes(5),
    "Coordinator: how long to wait for every worker to register and load its data. Worker: how "
    "long to keep trying to register while the coordinator is not up yet.");

ABSL_FLAG(absl::Duration, fail_after, absl::Seconds(30),
          "How long a peer (a parameter server, the coordinator) may stay unreachable or silent "
          "before this process gives up on the job with an error naming it. A coordinator also "
          "waits this long for a lost server to come back before it fails the job.");

ABSL_FLAG(std::string, checkpoint_dir, "",
          "Directory of the job's checkpoints, one subdirectory each (ps: writes its rows there; "
          "coordinator: writes each MANIFEST there and restores from it). Every role must see the "
          "same storage. Empty: no checkpoints, and a lost server or worker restarts training "
          "from the first epoch.");

namespace psrec {

const char* PeerFlagsFile() { return __FILE__; }

absl::Duration RpcTimeoutFlag() { return absl::GetFlag(FLAGS_rpc_timeout); }
absl::Duration RegisterTimeoutFlag() { return absl::GetFlag(FLAGS_register_timeout); }
absl::Duration FailAfterFlag() { return absl::GetFlag(FLAGS_fail_after); }
std::string CheckpointDirFlag() { return absl::GetFlag(FLAGS_checkpoint_dir); }

}  // namespace psrec

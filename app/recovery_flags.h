// The coordinator's recovery flags (checkpoint cadence, --resume, the worker lease), shared by
// `psrec coordinator` and `psrec train`, which passes them on to the coordinator it starts.
#ifndef PSREC_APP_RECOVERY_FLAGS_H_
#define PSREC_APP_RECOVERY_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/recovery.h"

namespace psrec {

const char* RecoveryFlagsFile();

// From --checkpoint_dir, --checkpoint_every_secs, --keep_checkpoints, --resume, --auto_resume,
// --worker_lease, --fail_after, --max_rollbacks and --min_workers (checked against the config's
// num_workers).
// Errors name the flag.
absl::StatusOr<RecoveryOptions> RecoveryOptionsFromFlags(const JobConfig& config);

// The same settings as flags for a child coordinator (and, for --checkpoint_dir and --fail_after,
// any child).
std::vector<std::string> RecoveryFlagsForChild(const RecoveryOptions& options);

}  // namespace psrec

#endif  // PSREC_APP_RECOVERY_FLAGS_H_

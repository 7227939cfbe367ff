#include "app/recovery_flags.h"

#include <cmath>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/service_flags.h"

ABSL_FLAG(double, checkpoint_every_secs, 60,
          "With --checkpoint_dir: write a checkpoint after the first epoch that ends this many "
          "seconds after the last one (0: after every epoch), and always after the last epoch. "
          "Checkpoints are taken between epochs, when no worker is pushing.");
ABSL_FLAG(int32_t, keep_checkpoints, 3,
          "How many complete checkpoints to keep; older ones are deleted.");
ABSL_FLAG(bool, resume, false,
          "Start from the latest complete checkpoint in --checkpoint_dir (any number of shards "
          "may have written it) instead of from fresh rows. A corrupt or mismatched latest "
          "checkpoint is an error, not a reason to start over.");
ABSL_FLAG(bool, auto_resume, false,
          "With --checkpoint_dir: resume from the latest complete checkpoint there if it holds one "
          "of this job (the same config), start from fresh rows if it holds none. A checkpoint of "
          "another config is refused (exit 2). What a supervisor that restarts the coordinator "
          "(Kubernetes, psrec train) passes; the servers and workers still alive rejoin it.");
ABSL_FLAG(absl::Duration, worker_lease, absl::Seconds(10),
          "A worker that sends nothing (workers heartbeat every quarter of this) for this long is "
          "taken for dead: its unfinished epoch is redone by the others from the last checkpoint.");
ABSL_FLAG(int32_t, min_workers, 1,
          "A new generation never starts with fewer live workers: after a worker is lost, the "
          "coordinator waits up to --register_timeout for replacements to register and load their "
          "data, and fails the job if none come. At most --workers.");
ABSL_FLAG(int32_t, max_rollbacks, 20,
          "How many times the job may roll back to a checkpoint before it fails.");

namespace psrec {

const char* RecoveryFlagsFile() { return __FILE__; }

absl::StatusOr<RecoveryOptions> RecoveryOptionsFromFlags(const JobConfig& config) {
  RecoveryOptions options;
  options.checkpoint_dir = CheckpointDirFlag();
  const double every = absl::GetFlag(FLAGS_checkpoint_every_secs);
  if (!std::isfinite(every) || every < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--checkpoint_every_secs=", every, " must be a number >= 0"));
  }
  options.checkpoint_every = absl::Seconds(every);
  const int32_t keep = absl::GetFlag(FLAGS_keep_checkpoints);
  if (absl::Status s = FlagAtLeast("keep_checkpoints", keep, 1); !s.ok()) return s;
  options.keep_checkpoints = static_cast<uint32_t>(keep);
  options.resume = absl::GetFlag(FLAGS_resume);
  if (options.resume && options.checkpoint_dir.empty()) {
    return absl::InvalidArgumentError("--resume needs --checkpoint_dir");
  }
  // Without a checkpoint_dir there is nothing to resume from: every start is fresh.
  options.auto_resume = absl::GetFlag(FLAGS_auto_resume);
  options.worker_lease = absl::GetFlag(FLAGS_worker_lease);
  if (absl::Status s = FlagAtLeast("worker_lease", options.worker_lease, absl::Milliseconds(100));
      !s.ok()) {
    return s;
  }
  options.fail_after = FailAfterFlag();
  if (absl::Status s = FlagAtLeast("fail_after", options.fail_after, absl::Milliseconds(100));
      !s.ok()) {
    return s;
  }
  const int32_t max_rollbacks = absl::GetFlag(FLAGS_max_rollbacks);
  if (max_rollbacks < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_rollbacks=", max_rollbacks, " must not be negative"));
  }
  options.max_rollbacks = static_cast<uint32_t>(max_rollbacks);
  const int32_t min_workers = absl::GetFlag(FLAGS_min_workers);
  if (min_workers < 1 || static_cast<uint32_t>(min_workers) > config.num_workers()) {
    return absl::InvalidArgumentError(absl::StrCat("--min_workers=", min_workers,
                                                   " must be from 1 to --workers (",
                                                   config.num_workers(), ")"));
  }
  options.min_workers = static_cast<uint32_t>(min_workers);
  return options;
}

std::vector<std::string> RecoveryFlagsForChild(const RecoveryOptions& options) {
  return {
      absl::StrCat("--checkpoint_dir=", options.checkpoint_dir),
      absl::StrCat("--checkpoint_every_secs=", absl::ToDoubleSeconds(options.checkpoint_every)),
      absl::StrCat("--keep_checkpoints=", options.keep_checkpoints),
      absl::StrCat("--resume=", options.resume ? "true" : "false"),
      absl::StrCat("--auto_resume=", options.auto_resume ? "true" : "false"),
      absl::StrCat("--worker_lease=", absl::FormatDuration(options.worker_lease)),
      absl::StrCat("--fail_after=", absl::FormatDuration(options.fail_after)),
      absl::StrCat("--max_rollbacks=", options.max_rollbacks),
      absl::StrCat("--min_workers=", options.min_workers),
  };
}

}  // namespace psrec

// What the coordinator asks of the parameter servers and of the checkpoint directory to keep a job
// alive: a Restore at each new generation, a health check while an epoch runs, checkpoints
// between epochs (and pruning the old ones), the checkpoint to roll back or resume from, and how
// many rollbacks a job may take.
//
// Thread-safety: the job loop's thread (JobRunner::Run's) makes every call but rollbacks(), which
// any thread may make. The calls that reach the shards block for up to fail_after; the caller holds
// no lock over them.
#ifndef PSREC_COORDINATOR_RECOVERY_H_
#define PSREC_COORDINATOR_RECOVERY_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/shard_control.h"
#include "proto/config.pb.h"

namespace psrec {

// How the coordinator keeps the job alive (app/recovery_flags.h fills it from flags).
struct RecoveryOptions {
  std::string checkpoint_dir;  // empty: no checkpoints; a rollback restarts from fresh rows
  // A checkpoint is written after the first epoch that ends this long after the last one (zero:
  // after every epoch), and after the last epoch.
  absl::Duration checkpoint_every = absl::Seconds(60);
  uint32_t keep_checkpoints = 3;  // older complete checkpoints are deleted
  bool resume = false;            // start from the latest complete checkpoint
  // Resume when checkpoint_dir holds a complete checkpoint of this job, start fresh when it holds
  // none: what a coordinator restarted by its supervisor does (--auto_resume). A checkpoint of
  // another config is still refused.
  bool auto_resume = false;
  // This coordinator process's incarnation (its start time in Unix ms; 0 in tests): workers
  // registered with another one are told to register again, and generations start above the
  // previous incarnation's (coordinator/coordinator_state.h).
  uint64_t incarnation = 0;
  absl::Duration worker_lease = absl::Seconds(10);
  absl::Duration fail_after = absl::Seconds(30);
  uint32_t max_rollbacks = 20;  // then the job fails: something is broken for good
  // A new generation never starts with fewer live workers than this: after a loss the coordinator
  // waits, up to the job's register_timeout, for replacements to register and load their data.
  uint32_t min_workers = 1;
};

// A complete checkpoint to start a generation from: its directory's name under checkpoint_dir and
// the epochs it holds. An empty name is fresh rows, at epoch 0.
struct RestartPoint {
  std::string checkpoint;
  uint32_t epochs_done = 0;
};

class Recovery {
 public:
  // `shards` may be null: the job has no recovery (enabled() is false, and only rollbacks() and
  // options() may be called); tests of scheduling alone run so. Otherwise it must outlive this.
  Recovery(JobConfig config, RecoveryOptions options, ShardControl* shards);

  bool enabled() const { return shards_ != nullptr; }
  const RecoveryOptions& options() const { return options_; }
  uint32_t rollbacks() const { return rollbacks_.load(); }

  // Once, when every worker is ready: where the job starts. Fresh rows, or with --resume (or
  // --auto_resume and a checkpoint there) the latest complete checkpoint (logged).
  // FAILED_PRECONDITION when checkpoint_dir already holds a checkpoint and neither was given;
  // otherwise as LatestCheckpoint. The first checkpoint is due checkpoint_every from now.
  absl::StatusOr<RestartPoint> Start();
  // The latest complete checkpoint under checkpoint_dir, or fresh rows when there is none (or no
  // checkpoint_dir). FAILED_PRECONDITION when it was written by a job with another config or holds
  // more epochs than the job; the reader's error (ps/checkpoint.h) for a bad manifest.
  absl::StatusOr<RestartPoint> LatestCheckpoint() const;
  // After trouble (`why`): counts a rollback and returns the checkpoint to roll back to, logging
  // both. ABORTED when there have been more than max_rollbacks; otherwise as LatestCheckpoint.
  absl::StatusOr<RestartPoint> BeginRollback(const std::string& why);
  // Counts trouble that needs no checkpoint (the data was being split, nothing trained yet) as a
  // rollback: ABORTED when there have been more than max_rollbacks.
  absl::Status CountRollback(const std::string& why);

  // The mean training rating, once the workers' splits have given it: checkpoints record it, and a
  // checkpoint with another one is refused.
  void set_rating_offset(float offset) { config_.set_rating_offset(offset); }

  // Restores every shard for `generation` from `checkpoint` (empty: fresh rows) or keeping its
  // rows, with SSP `clock` and `workers` allowed to push, and logs the new generation.
  // ShardControl's errors: ABORTED when keep_rows finds a shard restarted.
  absl::Status Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows,
                       uint64_t clock, const std::vector<uint32_t>& workers);
  // ShardControl::Check: "" when every shard is the process last restored, a description of one
  // that restarted otherwise; an error when a shard has been unreachable for fail_after.
  absl::StatusOr<std::string> CheckShards();

  // A checkpoint is due after an epoch that trained and evaluated fine: there is a checkpoint_dir,
  // and the epoch is the `last` or ends checkpoint_every after the last checkpoint.
  bool CheckpointDue(bool last) const;
  // Writes checkpoint ckpt-<epochs_done> of `generation` (the shards' files, then the MANIFEST
  // with `clock`) and prunes all but the newest keep_checkpoints complete ones. Returns the trouble
  // that makes the epoch roll back ("checkpoint failed: ..." when a shard failed, aborted or went
  // away), or "" when training goes on: also after a failure that left the rows intact (a full
  // disk, say; logged), so that the next epoch tries again. DEADLINE_EXCEEDED ends the job: a
  // shard gave no answer within fail_after.
  absl::StatusOr<std::string> Checkpoint(uint32_t epochs_done, uint64_t generation, uint64_t clock);

 private:
  absl::Status WriteCheckpoint(uint32_t epochs_done, uint64_t generation, uint64_t clock);

  JobConfig config_;
  const RecoveryOptions options_;
  ShardControl* const shards_;
  absl::Time last_checkpoint_;  // or the job's start
  std::atomic<uint32_t> rollbacks_{0};
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_RECOVERY_H_

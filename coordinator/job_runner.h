// The coordinator's job loop: it waits for the workers, then runs every epoch through the schedule,
// evaluates it, writes checkpoints, and rolls back on trouble.
//
// Recovery. The job runs in generations. Whenever something breaks under a running epoch (a
// worker's lease runs out, a worker reports a failed parameter-server call, a server restarted, the
// evaluation failed), the runner starts a new generation: it restores every shard to the last
// complete checkpoint (or to fresh rows when there is none), with the workers that are still alive,
// and runs again from that checkpoint's epoch. Every request of the old generation is refused from
// then on, so no shard is ahead of another and no stale push lands. Checkpoints are taken between
// epochs, when no worker is pushing. A worker that joins or leaves between epochs changes the
// generation without a restore.
//
// Thread-safety: Run is called once, on one thread; rollbacks() may be called from any. The runner
// takes state->mu (coordinator/coordinator_state.h) only around what it reads and changes there,
// and never while it calls the shards or the evaluator.
#ifndef PSREC_COORDINATOR_JOB_RUNNER_H_
#define PSREC_COORDINATOR_JOB_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/job_data.h"
#include "common/job_report.h"
#include "coordinator/coordinator_state.h"
#include "coordinator/recovery.h"
#include "coordinator/shard_control.h"
#include "proto/config.pb.h"

namespace psrec {

class JobRunner {
 public:
  // Called after each epoch with every worker reported; returns the test metrics, pulling rows of
  // `generation`.
  using Evaluator = std::function<absl::StatusOr<TestMetrics>(uint64_t generation)>;

  // `shards` may be null (no recovery: tests of scheduling alone); it and `state` must outlive the
  // runner.
  JobRunner(JobConfig config, RecoveryOptions recovery, ShardControl* shards,
            CoordinatorState* state);

  // Waits up to `register_timeout` for all workers to register and ask for work (so that a SYNC
  // clock never waits on a worker still reading its data), then runs every epoch, each bounded by
  // `epoch_timeout`, evaluating after each and rolling back on trouble. Writes `metrics_out` (if
  // not empty) after every epoch. Afterwards the schedule tells every worker DONE, or ABORTED if
  // the job failed.
  absl::StatusOr<std::vector<EpochRecord>> Run(const Evaluator& evaluate,
                                               absl::Duration register_timeout,
                                               absl::Duration epoch_timeout,
                                               const std::string& metrics_out);

  uint32_t rollbacks() const { return recovery_.rollbacks(); }

 private:
  // How one epoch ended: its record, or the trouble that rolls it back.
  struct EpochOutcome {
    EpochRecord record;
    std::string trouble;
  };

  absl::StatusOr<std::vector<EpochRecord>> RunEpochs(const Evaluator& evaluate,
                                                     absl::Duration epoch_timeout,
                                                     const std::string& metrics_out);
  // Waits up to register_timeout_ for every place to be taken by a worker that has asked for work.
  absl::Status AwaitAllReady();
  // The first generation; returns the epoch it starts with.
  absl::StatusOr<uint32_t> StartFirstGeneration();
  // Trains (unless `evaluate_only`), evaluates and checkpoints `epoch`.
  absl::StatusOr<EpochOutcome> RunEpoch(const Evaluator& evaluate, uint32_t epoch,
                                        bool evaluate_only, absl::Duration epoch_timeout);
  // Trains `epoch` with the live workers (a new generation first if they changed). Returns the
  // trouble that rolls it back, or "" with the training figures in *record.
  absl::StatusOr<std::string> TrainEpoch(uint32_t epoch, absl::Duration epoch_timeout,
                                         EpochRecord* record);
  // Waits until every member reported `epoch` or the schedule has trouble, watching leases and
  // the shards. DEADLINE_EXCEEDED after `epoch_timeout`; the error of a shard gone for good.
  absl::Status WaitForEpoch(uint32_t epoch, absl::Duration epoch_timeout);
  // Writes the checkpoint after `epochs_done` epochs if one is due; as Recovery::Checkpoint.
  absl::StatusOr<std::string> CheckpointIfDue(uint32_t epochs_done, bool last);
  // After trouble: a new generation from the latest complete checkpoint. Sets *epoch to the epoch
  // it resumes with.
  absl::Status Rollback(const std::string& why, uint32_t* epoch);
  // Starts a new generation with the live, ready workers (once there are min_workers of them),
  // restoring the rows from `checkpoint` (empty: fresh rows) or keeping them. Returns the error
  // that makes the job fail.
  absl::Status StartGeneration(const std::string& checkpoint, bool keep_rows);
  // Waits up to register_timeout_ for min_workers live, ready workers. False when they did not
  // come.
  bool AwaitMinWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu);
  // Takes workers whose lease ran out for lost; returns the trouble that makes for, if any.
  std::string ExpireLeases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu);

  const JobConfig config_;
  Recovery recovery_;
  CoordinatorState* const state_;
  absl::Duration register_timeout_ = absl::Minutes(5);  // Run's
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_JOB_RUNNER_H_

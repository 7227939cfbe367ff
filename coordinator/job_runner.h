// The coordinator's job loop: it waits for the workers, has them split the data, then runs every
// epoch through the schedule, has them evaluate it, writes checkpoints, and rolls back on trouble.
//
// The coordinator never reads a rating. The workers hold the data shares (common/share_set.h) the
// runner assigns them (AssignShares), and every step that needs the data is a task they do over
// their shares, reported back as sums: the counts that find SEED_TIME's threshold exactly
// (PercentileSearch), each share's split totals (which give the mean training rating and the
// epoch's plan), the training of an epoch, and the test errors (ErrorSums, exact in any order).
//
// Recovery. The job runs in generations. Whenever something breaks under a running task (a
// worker's lease runs out, a worker reports a failed parameter-server call, a server restarted),
// the runner starts a new generation: it restores every shard to the last complete checkpoint (or
// to fresh rows when there is none), with the workers that are still alive, who hold the lost
// worker's shares from then on, and runs again from that checkpoint's epoch. Every request of the
// old generation is refused from then on, so no shard is ahead of another and no stale push lands.
// Checkpoints are taken between epochs, when no worker is pushing. A worker that joins or leaves
// between epochs changes the generation without a restore. Trouble while the data is being split
// redoes the split with the live workers.
//
// Stopping (SIGTERM). RequestStop makes Run end at the next epoch boundary, the only point where
// no worker pushes, for SYNC, SSP and ASYNC alike: the epoch under way is trained and evaluated,
// and its checkpoint written whether or not one was due (the "final checkpoint"); then Run returns
// CANCELLED without telling the workers anything, so that they wait for the next coordinator
// incarnation and register with it. Trouble in that epoch, or a stop while waiting for workers,
// ends Run at once with no checkpoint. A checkpoint is complete only once its MANIFEST is written
// (ps/checkpoint.h), so a stop that cuts one short leaves the last complete one as it was. Bounding
// the wait for the epoch's end is the caller's (app/coordinator_main.cc).
//
// Thread-safety: Run is called once, on one thread; rollbacks() and RequestStop() may be called
// from any. The runner takes state->mu (coordinator/coordinator_state.h) only around what it reads
// and changes there, and never while it calls the shards.
#ifndef PSREC_COORDINATOR_JOB_RUNNER_H_
#define PSREC_COORDINATOR_JOB_RUNNER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/job_data.h"
#include "common/job_report.h"
#include "common/process_stats.h"
#include "common/share_set.h"
#include "coordinator/coordinator_state.h"
#include "coordinator/recovery.h"
#include "coordinator/shard_control.h"
#include "proto/config.pb.h"
#include "proto/shares.pb.h"

namespace psrec {

// The job's data as the coordinator knows it: where the prepared shares are and their manifest,
// which says how many ratings each share holds (common/prepare.h).
struct JobDataInfo {
  std::string shares_dir;
  SharesManifest manifest;
  uint64_t fingerprint = 0;  // ManifestFingerprint(manifest)
};

class JobRunner {
 public:
  // `shards` may be null (no recovery: tests of scheduling alone); it and `state` must outlive the
  // runner.
  JobRunner(JobConfig config, JobDataInfo data, RecoveryOptions recovery, ShardControl* shards,
            CoordinatorState* state);

  // Waits up to `register_timeout` for all workers to register and ask for work, has them split the
  // data, then runs every epoch, each bounded by `epoch_timeout`, evaluating after each and rolling
  // back on trouble. Writes `metrics_out` (if not empty) after every epoch, and logs the table of
  // processes at the end. Afterwards the schedule tells every worker DONE, or ABORTED if the job
  // failed. INVALID_ARGUMENT when the split leaves no training or no test rating.
  absl::StatusOr<std::vector<EpochRecord>> Run(absl::Duration register_timeout,
                                               absl::Duration epoch_timeout,
                                               const std::string& metrics_out);

  uint32_t rollbacks() const { return recovery_.rollbacks(); }
  // Makes Run stop at the next epoch boundary (above). Thread-safe; takes state->mu.
  void RequestStop();
  // Takes `lost` workers (Membership::ExpireLeases or Leave) for lost: returns the trouble that
  // makes for (a member owed a report of the running task), or "", and updates the workers-alive
  // gauge.
  std::string Lose(const std::vector<Membership::Lost>& lost)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu);
  // The config with rating_offset filled in once the data is split.
  const JobConfig& config() const { return config_; }

 private:
  // How often a running task looks at leases and at the shards.
  static constexpr absl::Duration kWatchEvery = absl::Milliseconds(250);
  static constexpr absl::Duration kCheckShardsEvery = absl::Milliseconds(500);

  // How a task ended: every member's report, or the trouble that makes it be redone.
  struct TaskOutcome {
    std::vector<ReportRequest> reports;
    std::string trouble;
  };
  // How one epoch ended: its record, or the trouble that rolls it back.
  struct EpochOutcome {
    EpochRecord record;
    std::string trouble;
    bool stop = false;  // RequestStop came before its checkpoint: the job stops after it
  };

  absl::StatusOr<std::vector<EpochRecord>> RunEpochs(absl::Duration epoch_timeout,
                                                     const std::string& metrics_out);
  // RequestStop was called.
  bool Stopping();
  // Waits up to register_timeout_ for every place to be taken by a worker that has asked for work.
  absl::Status AwaitAllReady();

  // The data phase (job_tasks.cc): the members split the data, redone with the live workers on
  // trouble; sets threshold_, share_train_ and the rating_offset.
  absl::Status SplitData(absl::Duration timeout);
  // One try of it: the trouble that stops it, or "".
  absl::StatusOr<std::string> TrySplitData(absl::Duration timeout);
  // SEED_TIME's threshold, from rounds of COUNT_TIMES; the trouble that stops it, or "".
  absl::StatusOr<std::string> FindThreshold(absl::Duration timeout);
  // Runs `spec` over the members, each on the shares AssignShares gives it, and waits for it.
  // TRAIN parts get their steps and clocks from share_train_.
  absl::StatusOr<TaskOutcome> RunTask(const TaskSpec& spec, absl::Duration timeout);
  // Waits until every member reported the running task or the schedule has trouble, watching
  // leases, and the shards when `watch_shards`. DEADLINE_EXCEEDED after `timeout`; the error of a
  // shard gone for good.
  absl::Status WaitForTask(const std::string& what, absl::Duration timeout, bool watch_shards);
  // Keeps what each worker's report says of its process.
  void NoteProcesses(const std::vector<ReportRequest>& reports);
  // Every process of the job seen so far: this one, the servers (asked now), the workers.
  std::vector<ProcessReport> Processes();

  // The first generation; returns the epoch it starts with.
  absl::StatusOr<uint32_t> StartFirstGeneration();
  // Trains (unless `evaluate_only`), evaluates and checkpoints `epoch`.
  absl::StatusOr<EpochOutcome> RunEpoch(uint32_t epoch, bool evaluate_only,
                                        absl::Duration epoch_timeout);
  // Trains `epoch` with the live workers (a new generation first if they changed). Returns the
  // trouble that rolls it back, or "" with the training figures in *record.
  absl::StatusOr<std::string> TrainEpoch(uint32_t epoch, absl::Duration epoch_timeout,
                                         EpochRecord* record);
  // Has the members evaluate (and rank, when record->epoch ranks); the trouble, or "" with the
  // test metrics in *record.
  absl::StatusOr<std::string> Evaluate(uint32_t epoch, absl::Duration timeout, EpochRecord* record);
  // Adds up the members' ranking sums into *record, and the popularity baseline's into
  // popularity_ when `popularity` was asked for.
  absl::Status MergeRanking(const std::vector<ReportRequest>& reports, bool popularity,
                            EpochRecord* record);
  // Writes the checkpoint after `epochs_done` epochs if one is due; as Recovery::Checkpoint.
  absl::StatusOr<std::string> CheckpointIfDue(uint32_t epochs_done, bool last);
  // After trouble: a new generation from the latest complete checkpoint. Sets *epoch to the epoch
  // it resumes with.
  absl::Status Rollback(const std::string& why, uint32_t* epoch);
  // Starts a new generation with the live, ready workers (once there are min_workers of them),
  // restoring the rows from `checkpoint` (empty: fresh rows) or keeping them. Returns the error
  // that makes the job fail.
  absl::Status StartGeneration(const std::string& checkpoint, bool keep_rows);
  // A new generation of the live, ready workers without touching the servers (the data phase).
  absl::Status StartDataGeneration();
  // The schedule's next generation, of the live, ready workers once there are min_workers.
  absl::Status NextGeneration(std::vector<uint32_t>* members, uint64_t* generation,
                              uint64_t* clock);
  // Waits up to register_timeout_ for min_workers live, ready workers. False when they did not
  // come.
  bool AwaitMinWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu);
  // Takes workers whose lease ran out for lost; returns the trouble that makes for, if any.
  std::string ExpireLeases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu);

  JobConfig config_;
  const JobDataInfo data_;
  std::vector<uint64_t> share_rows_;   // by share, from the manifest: what AssignShares deals
  std::vector<uint64_t> share_train_;  // by share, from the split
  double threshold_ = 0;               // SEED_TIME's, once found
  ItemTrainStats item_stats_;          // the whole job's, from the split, when it ranks
  RankingMetrics popularity_;          // the baseline, once an evaluation ranked it
  ShardControl* const shards_;         // null: no recovery
  Recovery recovery_;
  CoordinatorState* const state_;
  absl::Duration register_timeout_ = absl::Minutes(5);  // Run's
  std::map<std::string, ProcessReport> workers_;        // by name, from their reports
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_JOB_RUNNER_H_

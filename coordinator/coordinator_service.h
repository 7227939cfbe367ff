// The coordinator of a distributed job: it admits workers whose config matches, hands each one a
// partition of every epoch, provides the SSP clock, and evaluates the test split after each epoch.
//
// Recovery. The job runs in generations. Whenever something breaks under a running epoch (a
// worker's lease runs out, a worker reports a failed parameter-server call, a server restarted, the
// evaluation failed), the coordinator starts a new generation: it restores every shard to the last
// complete checkpoint (or to fresh rows when there is none), with the workers that are still alive,
// and runs again from that checkpoint's epoch. Every request of the old generation is refused from
// then on, so no shard is ahead of another and no stale push lands. Checkpoints are taken between
// epochs, when no worker is pushing. A worker that joins or leaves between epochs changes the
// generation without a restore.
//
// Thread-safety: the gRPC handlers run on gRPC's threads and RunJob on the caller's; all shared
// state is behind mu_.
#ifndef PSREC_COORDINATOR_COORDINATOR_SERVICE_H_
#define PSREC_COORDINATOR_COORDINATOR_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/job_report.h"
#include "coordinator/shard_control.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"
#include "proto/coordinator.grpc.pb.h"

namespace psrec {

// One worker's share of an epoch, as WorkAssignment describes it.
struct Partition {
  uint64_t begin = 0, end = 0;
  uint64_t first_step = 0;
  uint64_t first_clock = 0;
  uint64_t num_clocks = 0;
};

// Splits `num_rows` training rows into `num_workers` contiguous partitions for `epoch`. Batch steps
// are numbered across the whole job so that with one worker they match the in-process trainer's;
// clocks are shared by all workers of an epoch.
std::vector<Partition> PlanEpoch(uint64_t num_rows, uint32_t num_workers, uint32_t batch_size,
                                 uint32_t epoch);

// The config fields two roles must agree on, as "field: a vs b"; empty when they agree. data_dir
// and rating_offset are the coordinator's to fill in and are not compared, nor is num_shards when
// `theirs` leaves it unset.
std::vector<std::string> RegistrationDifferences(const JobConfig& mine, const JobConfig& theirs);

// How the coordinator keeps the job alive (coordinator/recovery_flags.h fills it from flags).
struct RecoveryOptions {
  std::string checkpoint_dir;  // empty: no checkpoints; a rollback restarts from fresh rows
  // A checkpoint is written after the first epoch that ends this long after the last one (zero:
  // after every epoch), and after the last epoch.
  absl::Duration checkpoint_every = absl::Seconds(60);
  uint32_t keep_checkpoints = 3;  // older complete checkpoints are deleted
  bool resume = false;            // start from the latest complete checkpoint
  absl::Duration worker_lease = absl::Seconds(10);
  absl::Duration fail_after = absl::Seconds(30);
  uint32_t max_rollbacks = 20;  // then the job fails: something is broken for good
  // A new generation never starts with fewer live workers than this: after a loss the coordinator
  // waits, up to the job's register_timeout, for replacements to register and load their data.
  uint32_t min_workers = 1;
};

class CoordinatorService final : public Coordinator::Service {
 public:
  // `config` has rating_offset and data_dir filled in; `job` holds its data and split. `shards`
  // may be null (no recovery: tests of scheduling alone); it must outlive the service.
  CoordinatorService(JobConfig config, std::vector<std::string> ps_addresses, const JobData* job,
                     RecoveryOptions recovery = RecoveryOptions(), ShardControl* shards = nullptr);

  grpc::Status Register(grpc::ServerContext* context, const RegisterRequest* request,
                        RegisterResponse* response) override;
  grpc::Status GetWork(grpc::ServerContext* context, const GetWorkRequest* request,
                       WorkAssignment* response) override;
  grpc::Status Report(grpc::ServerContext* context, const ReportRequest* request,
                      ReportResponse* response) override;
  grpc::Status Clock(grpc::ServerContext* context, const ClockRequest* request,
                     ClockResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const HeartbeatRequest* request,
                         HeartbeatResponse* response) override;

  // Called after each epoch with every worker reported; returns the test metrics, pulling rows of
  // `generation`.
  using Evaluator = std::function<absl::StatusOr<TestMetrics>(uint64_t generation)>;

  // Waits up to `register_timeout` for all workers to register and ask for work (so that a SYNC
  // clock never waits on a worker still reading its data), then runs every epoch, each bounded by
  // `epoch_timeout`, evaluating after each and rolling back on trouble. Writes `metrics_out` (if
  // not empty) after every epoch. Afterwards every worker is told DONE, or ABORTED if the job
  // failed.
  absl::StatusOr<std::vector<EpochRecord>> RunJob(const Evaluator& evaluate,
                                                  absl::Duration register_timeout,
                                                  absl::Duration epoch_timeout,
                                                  const std::string& metrics_out);

  // Waits up to `timeout` for every live worker to have been told DONE.
  void WaitForWorkersToLeave(absl::Duration timeout);

  uint32_t rollbacks() const;

 private:
  struct WorkerState {
    std::string name;
    uint32_t assigned_epoch = UINT32_MAX;  // the epoch last handed out ...
    uint64_t assigned_generation = 0;      // ... and its generation
    uint32_t reported_epoch = UINT32_MAX;  // the epoch last reported ...
    uint64_t reported_generation = 0;      // ... and its generation
    uint64_t clock = 0;                    // SSP: the clock it is about to run
    bool ready = false;                    // has asked for work, so its data is loaded
    bool live = true;                      // its lease has not run out
    absl::Time last_seen;                  // its last RPC
    int polling = 0;                       // calls of its waiting in GetWork or Clock
    bool told_done = false;
  };
  // How waiting for an epoch ended.
  enum class EpochEnd { kReported, kTrouble };

  absl::StatusOr<std::vector<EpochRecord>> RunEpochs(const Evaluator& evaluate,
                                                     absl::Duration register_timeout,
                                                     absl::Duration epoch_timeout,
                                                     const std::string& metrics_out);
  // Waits (Register's long poll) while every place is held by a live worker. False when the call's
  // deadline came first or it was cancelled.
  bool AwaitPlace(grpc::ServerContext* context, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits up to register_timeout_ for min_workers live, ready workers. False when they did not
  // come.
  bool AwaitMinWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a new generation with the live, ready workers, restoring the rows from `checkpoint`
  // (empty: fresh rows) or keeping them. Returns the error that makes the job fail.
  absl::Status StartGeneration(const std::string& checkpoint, bool keep_rows);
  // After trouble: a new generation from the latest complete checkpoint. Sets *epoch to the epoch
  // it resumes with.
  absl::Status Rollback(const std::string& why, uint32_t* epoch);
  // The latest complete checkpoint's name and epochs, or "" and 0 when there is none.
  absl::StatusOr<std::pair<std::string, uint32_t>> LatestCheckpoint() const;
  absl::StatusOr<EpochEnd> WaitForEpoch(uint32_t epoch, absl::Duration epoch_timeout);
  absl::Status WriteCheckpoint(uint32_t epochs_done);
  // Marks workers whose lease ran out as dead; returns the trouble that makes for, if any.
  std::string ExpireLeases() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsMember(uint32_t id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllReported() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t MinClock() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<uint32_t> LiveReadyWorkers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records `id` as alive now; a worker whose lease had run out is back.
  void Seen(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // INVALID_ARGUMENT for an id never registered; otherwise Seen(id).
  grpc::Status Known(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobConfig config_;
  const std::vector<std::string> ps_addresses_;
  const JobData* const job_;
  const RecoveryOptions recovery_;
  ShardControl* const shards_;
  absl::Duration register_timeout_ = absl::Minutes(5);  // RunJob's; only its thread reads it

  mutable absl::Mutex mu_;
  std::vector<WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  bool running_epoch_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<uint32_t> members_ ABSL_GUARDED_BY(mu_);  // the generation's workers, by id
  uint64_t next_clock_ ABSL_GUARDED_BY(mu_) = 0;        // the first clock of the next plan
  std::string trouble_ ABSL_GUARDED_BY(mu_);            // why the running epoch must roll back
  uint32_t rollbacks_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_checkpoint_ ABSL_GUARDED_BY(mu_);
  std::vector<Partition> plan_ ABSL_GUARDED_BY(mu_);  // by worker id
  TrainStats epoch_stats_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // with done_: workers are told ABORTED
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_SERVICE_H_

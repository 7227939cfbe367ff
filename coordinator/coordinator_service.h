// The coordinator of a distributed job: it admits workers whose config matches, hands each one a
// partition of every epoch, provides the SSP clock, and evaluates the test split after each epoch.
//
// Thread-safety: the gRPC handlers run on gRPC's threads and RunJob on the caller's; all shared
// state is behind mu_.
#ifndef PSREC_COORDINATOR_COORDINATOR_SERVICE_H_
#define PSREC_COORDINATOR_COORDINATOR_SERVICE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/job.h"
#include "proto/config.pb.h"
#include "proto/coordinator.grpc.pb.h"
#include "worker/trainer.h"

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

class CoordinatorService final : public Coordinator::Service {
 public:
  // `config` has rating_offset and data_dir filled in; `job` holds its data and split.
  CoordinatorService(JobConfig config, std::vector<std::string> ps_addresses, const JobData* job);

  grpc::Status Register(grpc::ServerContext* context, const RegisterRequest* request,
                        RegisterResponse* response) override;
  grpc::Status GetWork(grpc::ServerContext* context, const GetWorkRequest* request,
                       WorkAssignment* response) override;
  grpc::Status Report(grpc::ServerContext* context, const ReportRequest* request,
                      ReportResponse* response) override;
  grpc::Status Clock(grpc::ServerContext* context, const ClockRequest* request,
                     ClockResponse* response) override;

  // Called after each epoch with every worker reported; returns the test metrics.
  using Evaluator = std::function<absl::StatusOr<TestMetrics>()>;

  // Waits up to `register_timeout` for all workers to register and ask for work (so that a SYNC
  // clock never waits on a worker still reading its data), then runs every epoch, each bounded by
  // `epoch_timeout`, evaluating after each. Writes `metrics_out` (if not empty) after every epoch.
  // Afterwards every worker is told DONE, or ABORTED if the job failed.
  absl::StatusOr<std::vector<EpochRecord>> RunJob(const Evaluator& evaluate,
                                                  absl::Duration register_timeout,
                                                  absl::Duration epoch_timeout,
                                                  const std::string& metrics_out);

  // Waits up to `timeout` for every registered worker to have been told DONE.
  void WaitForWorkersToLeave(absl::Duration timeout);

 private:
  struct WorkerState {
    std::string name;
    uint32_t assigned_epoch = UINT32_MAX;  // the epoch last handed out
    uint32_t reported_epoch = UINT32_MAX;  // the epoch last reported
    uint64_t clock = 0;                    // SSP: the clock it is about to run
    bool ready = false;                    // has asked for work, so its data is loaded
    bool told_done = false;
  };

  absl::StatusOr<std::vector<EpochRecord>> RunEpochs(const Evaluator& evaluate,
                                                     absl::Duration register_timeout,
                                                     absl::Duration epoch_timeout,
                                                     const std::string& metrics_out);
  bool AllReported() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t MinClock() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobConfig config_;
  const std::vector<std::string> ps_addresses_;
  const JobData* const job_;

  mutable absl::Mutex mu_;
  std::vector<WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  bool running_epoch_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Partition> plan_ ABSL_GUARDED_BY(mu_);
  TrainStats epoch_stats_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;  // with done_: workers are told ABORTED
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_COORDINATOR_SERVICE_H_

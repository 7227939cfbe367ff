// The epoch schedule: which generation the job is in and which workers are its members, the
// partition of the running epoch each member trains, their reports, and the SSP clock.
//
// A generation is a fixed set of member workers; an epoch runs within one generation. Every call
// that names a generation other than the current one is refused with ABORTED, so no stale report
// or clock counts. Between epochs the schedule hands out nothing; the job loop (JobRunner) starts
// each epoch and ends it once every member reported or something went wrong ("trouble": the epoch
// must be rolled back).
//
// Thread-safety: none of its own. It lives in CoordinatorState, under that mutex; the gRPC handlers
// and the job loop wait on HasAnswer, ClockAllowed, AllReported and trouble() with
// absl::Condition, so every call that changes the schedule may wake them.
#ifndef PSREC_COORDINATOR_SCHEDULE_H_
#define PSREC_COORDINATOR_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/job_report.h"
#include "proto/coordinator.pb.h"

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

class Schedule {
 public:
  // Epochs of `num_rows` training rows in batches of `batch_size` (> 0 once an epoch starts); SSP
  // lets a worker run `staleness` clocks ahead of the slowest member.
  Schedule(uint64_t num_rows, uint32_t batch_size, uint32_t staleness);

  // Worker `id` (given by Membership::Admit) arrives. A replacement keeps its predecessor's
  // progress, so that it is not handed a partition already trained; it trains from the next epoch
  // or generation on.
  void AddWorker(uint32_t id);

  // Starts the next generation with `members` (ids given to AddWorker) and no epoch running.
  // Returns the new generation; first_clock() is the clock it starts at.
  uint64_t NewGeneration(std::vector<uint32_t> members);
  // Replaces the members without a new generation (a job without recovery).
  void SetMembers(std::vector<uint32_t> members);
  uint64_t generation() const { return generation_; }
  uint64_t first_clock() const { return next_clock_; }  // of the next epoch started
  const std::vector<uint32_t>& members() const { return members_; }

  // Plans `epoch` over the members and lets them ask for it. REQUIRES: members() not empty.
  void StartEpoch(uint32_t epoch);
  // Marks the running epoch for a rollback because of `why`, unless it already is (the first
  // reason is kept). An empty `why` changes nothing.
  void SetTrouble(const std::string& why);
  const std::string& trouble() const { return trouble_; }
  // Every member has reported the running epoch.
  bool AllReported() const;
  // Worker `id` is a member that has not yet reported the running epoch: losing it is trouble.
  bool OwesReport(uint32_t id) const;
  // Ends the running epoch: nothing more is handed out. Returns what the members reported.
  TrainStats EndEpoch();
  // The job is over; from now on every worker is told DONE, or ABORTED when it `failed`.
  void Finish(bool failed);
  bool done() const { return done_; }

  // GetWork. Worker `id` gave up its assignment of `failed_generation` with `error` (logged): if
  // that is the running epoch's generation, the epoch is in trouble.
  void GaveUp(uint32_t id, uint64_t failed_generation, const std::string& error);
  // There is an answer for worker `id` other than WAIT: the job is over, or its partition of the
  // running epoch is ready and not yet reported. An assignment not yet reported is handed out
  // again: the answer to an earlier GetWork may have been lost.
  bool HasAnswer(uint32_t id) const;
  // Fills in the answer for worker `id`: DONE or ABORTED, TRAIN with its partition, or WAIT.
  void Answer(uint32_t id, WorkAssignment* work);

  // Report. OK and counted once (a retry whose first answer was lost is OK again); ABORTED for
  // another generation, or while no epoch runs (a rollback is under way); FAILED_PRECONDITION for a
  // report of anything but the worker's assignment of the running epoch.
  absl::Status Report(const ReportRequest& report);

  // Clock. ABORTED when `generation` is not the current one; otherwise worker `id` is about to run
  // `clock`.
  absl::Status EnterClock(uint32_t id, uint64_t clock, uint64_t generation);
  // SSP: `clock` is at most the slowest member's clock plus the staleness.
  bool ClockAllowed(uint64_t clock) const { return clock <= MinClock() + staleness_; }
  // The slowest member's clock (UINT64_MAX without members).
  uint64_t MinClock() const;
  // OK for the current generation, ABORTED naming both generations otherwise.
  absl::Status CheckGeneration(uint64_t generation) const;

 private:
  // One worker's progress, by worker id.
  struct Progress {
    uint32_t assigned_epoch = UINT32_MAX;  // the epoch last handed out ...
    uint64_t assigned_generation = 0;      // ... and its generation
    uint32_t reported_epoch = UINT32_MAX;  // the epoch last reported ...
    uint64_t reported_generation = 0;      // ... and its generation
    uint64_t clock = 0;                    // SSP: the clock it is about to run
  };

  bool IsMember(uint32_t id) const;
  bool Reported(uint32_t id) const;

  const uint64_t num_rows_;
  const uint32_t batch_size_;
  const uint32_t staleness_;
  std::vector<Progress> progress_;
  uint64_t generation_ = 0;
  std::vector<uint32_t> members_;  // the generation's workers, by id
  bool running_ = false;           // an epoch is handed out
  uint32_t epoch_ = 0;
  std::vector<Partition> plan_;  // by worker id
  uint64_t next_clock_ = 0;      // the first clock of the next plan
  std::string trouble_;          // why the running epoch must roll back
  TrainStats stats_;
  bool done_ = false;
  bool failed_ = false;  // with done_: workers are told ABORTED
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_SCHEDULE_H_

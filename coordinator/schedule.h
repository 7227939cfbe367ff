// The task schedule: which generation the job is in and which workers are its members, the part of
// the running task each member does, their reports, and the SSP clock.
//
// A task is one thing every member does over the data shares it holds: count timestamps, split,
// train an epoch, or evaluate (WorkAssignment in proto/coordinator.proto). A generation is a fixed
// set of member workers; a task runs within one generation. Every call that names a generation
// other than the current one is refused with ABORTED, so no stale report or clock counts. Between
// tasks the schedule hands out nothing; the job loop (JobRunner) starts each task and ends it once
// every member reported or something went wrong ("trouble": the work must be redone).
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
#include "absl/types/span.h"
#include "proto/coordinator.pb.h"

namespace psrec {

// One worker's part of a task, as WorkAssignment describes it.
struct Part {
  std::vector<uint32_t> shares;  // ascending
  // TRAIN only: the batch steps and clocks (first_clock is set by Schedule::StartTask).
  uint64_t first_step = 0;
  uint64_t first_clock = 0;
  uint64_t num_clocks = 0;
};

// What a task asks of every member alike.
struct TaskSpec {
  WorkAssignment::Kind kind = WorkAssignment::TRAIN;
  uint32_t epoch = 0;             // TRAIN, EVALUATE
  double threshold = 0;           // SEED_TIME's, once known
  float rating_offset = 0;        // TRAIN, EVALUATE
  std::vector<TimeRange> ranges;  // COUNT_TIMES
  bool rank = false;              // EVALUATE: also rank, as `ranking` says
  RankingWork ranking;
};

// Deals `share_rows.size()` shares out to `members` workers so that their rows come out even:
// largest share first, each to the member with the fewest rows so far (the lower index on a tie).
// Each member's list is ascending. A function of its arguments alone, so that a generation with the
// same members holds the same shares.
std::vector<std::vector<uint32_t>> AssignShares(absl::Span<const uint64_t> share_rows,
                                                size_t members);

// Sets the steps and clocks of an epoch's TRAIN parts whose members train `rows[k]` rows each, in
// batches of `batch_size`: member k's batches are numbered after those of members before it, and
// epochs one after the other as if every epoch had this plan, so that one member holding every
// share numbers them as the in-process trainer does. Every member pushes the clocks of the longest
// part (num_clocks).
void PlanTrainEpoch(absl::Span<const uint64_t> rows, uint32_t batch_size, uint32_t epoch,
                    std::vector<Part>* parts);

class Schedule {
 public:
  // SSP lets a worker run `staleness` clocks ahead of the slowest member. The first generation is
  // first_generation + 1: a coordinator that restarted starts above every generation of the one
  // before (CoordinatorState), so that no server takes the new incarnation's Restore for one it has
  // done and no push of the old one counts.
  explicit Schedule(uint32_t staleness, uint64_t first_generation = 0);

  // Worker `id` (given by Membership::Admit) arrives. A replacement keeps its predecessor's
  // progress, so that it is not handed a part already done; it takes part from the next task or
  // generation on.
  void AddWorker(uint32_t id);

  // Starts the next generation with `members` (ids given to AddWorker) and no epoch running.
  // Returns the new generation; first_clock() is the clock it starts at.
  uint64_t NewGeneration(std::vector<uint32_t> members);
  // Replaces the members without a new generation (a job without recovery).
  void SetMembers(std::vector<uint32_t> members);
  uint64_t generation() const { return generation_; }
  uint64_t first_clock() const { return next_clock_; }  // of the next TRAIN task started
  const std::vector<uint32_t>& members() const { return members_; }

  // Starts a task: members()[k] does parts[k], and may ask for it from now on. A TRAIN task takes
  // the next clocks (first_clock() on). REQUIRES: parts.size() == members().size().
  void StartTask(const TaskSpec& spec, std::vector<Part> parts);
  // Marks the running task for a rollback because of `why`, unless it already is (the first
  // reason is kept). An empty `why` changes nothing.
  void SetTrouble(const std::string& why);
  const std::string& trouble() const { return trouble_; }
  // Every member has reported the running task.
  bool AllReported() const;
  // Worker `id` is a member that has not yet reported the running task: losing it is trouble.
  bool OwesReport(uint32_t id) const;
  // Ends the running task: nothing more is handed out. Returns the members' reports, in the order
  // of members() (a member that did not report gives an empty one).
  std::vector<ReportRequest> EndTask();
  // The job is over; from now on every worker is told DONE, or ABORTED when it `failed`.
  void Finish(bool failed);
  bool done() const { return done_; }

  // GetWork. Worker `id` gave up its assignment of `failed_generation` with `error` (logged): if
  // that is the running epoch's generation, the epoch is in trouble.
  void GaveUp(uint32_t id, uint64_t failed_generation, const std::string& error);
  // There is an answer for worker `id` other than WAIT: the job is over, or its part of the
  // running task is ready and not yet reported. An assignment not yet reported is handed out
  // again: the answer to an earlier GetWork may have been lost.
  bool HasAnswer(uint32_t id) const;
  // Fills in the answer for worker `id`: DONE or ABORTED, its part of the running task, or WAIT.
  void Answer(uint32_t id, WorkAssignment* work);

  // Report. OK and kept once (a retry whose first answer was lost is OK again); ABORTED for
  // another generation, or while no task runs (a rollback is under way); FAILED_PRECONDITION for a
  // report of anything but the worker's assignment of the running task.
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
  // One worker's progress, by worker id. Tasks are numbered from 1 across the job.
  struct Progress {
    uint64_t assigned_task = 0;        // the task last handed out ...
    uint64_t assigned_generation = 0;  // ... and its generation
    uint64_t reported_task = 0;        // the task last reported ...
    uint64_t reported_generation = 0;  // ... and its generation
    uint64_t clock = 0;                // SSP: the clock it is about to run
    ReportRequest report;              // of reported_task
  };

  bool IsMember(uint32_t id) const;
  bool Reported(uint32_t id) const;

  const uint32_t staleness_;
  std::vector<Progress> progress_;
  uint64_t generation_ = 0;
  std::vector<uint32_t> members_;  // the generation's workers, by id
  bool running_ = false;           // a task is handed out
  uint64_t task_ = 0;              // the running (or last) task's number
  TaskSpec spec_;
  std::vector<Part> plan_;   // by worker id
  uint64_t next_clock_ = 0;  // the first clock of the next TRAIN task
  std::string trouble_;      // why the running task must roll back
  bool done_ = false;
  bool failed_ = false;  // with done_: workers are told ABORTED
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_SCHEDULE_H_

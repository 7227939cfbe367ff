#include "coordinator/schedule.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace psrec {
namespace {

uint64_t Batches(uint64_t rows, uint32_t batch_size) {
  return (rows + batch_size - 1) / batch_size;
}

absl::Status GenerationOver(uint64_t theirs, uint64_t current) {
  return absl::AbortedError(absl::StrCat("generation ", theirs,
                                         " is over; the job is at generation ", current,
                                         ": ask for work again"));
}

}  // namespace

std::vector<Partition> PlanEpoch(uint64_t num_rows, uint32_t num_workers, uint32_t batch_size,
                                 uint32_t epoch) {
  std::vector<Partition> plan(num_workers);
  uint64_t batches_in_epoch = 0, max_batches = 0;
  for (uint32_t w = 0; w < num_workers; ++w) {
    plan[w].begin = num_rows * w / num_workers;
    plan[w].end = num_rows * (w + 1) / num_workers;
    const uint64_t batches = Batches(plan[w].end - plan[w].begin, batch_size);
    plan[w].first_step = batches_in_epoch;  // offset within the epoch, rebased below
    batches_in_epoch += batches;
    max_batches = std::max(max_batches, batches);
  }
  for (Partition& p : plan) {
    p.first_step += uint64_t{epoch} * batches_in_epoch;
    p.first_clock = uint64_t{epoch} * max_batches;
    p.num_clocks = max_batches;
  }
  return plan;
}

Schedule::Schedule(uint64_t num_rows, uint32_t batch_size, uint32_t staleness)
    : num_rows_(num_rows), batch_size_(batch_size), staleness_(staleness) {}

void Schedule::AddWorker(uint32_t id) {
  if (id >= progress_.size()) progress_.resize(id + 1);
  progress_[id].clock = 0;
}

uint64_t Schedule::NewGeneration(std::vector<uint32_t> members) {
  running_ = false;
  trouble_.clear();
  members_ = std::move(members);
  return ++generation_;
}

void Schedule::SetMembers(std::vector<uint32_t> members) { members_ = std::move(members); }

bool Schedule::IsMember(uint32_t id) const {
  return std::find(members_.begin(), members_.end(), id) != members_.end();
}

bool Schedule::Reported(uint32_t id) const {
  const Progress& p = progress_[id];
  return p.reported_epoch == epoch_ && p.reported_generation == generation_;
}

void Schedule::StartEpoch(uint32_t epoch) {
  PSREC_CHECK(!members_.empty());
  epoch_ = epoch;
  const std::vector<Partition> parts =
      PlanEpoch(num_rows_, static_cast<uint32_t>(members_.size()), batch_size_, epoch);
  plan_.assign(progress_.size(), Partition());
  for (size_t k = 0; k < members_.size(); ++k) {
    plan_[members_[k]] = parts[k];
    plan_[members_[k]].first_clock = next_clock_;
  }
  next_clock_ += parts.front().num_clocks;
  stats_ = TrainStats();
  running_ = true;
}

void Schedule::SetTrouble(const std::string& why) {
  if (trouble_.empty()) trouble_ = why;
}

bool Schedule::AllReported() const {
  return std::all_of(members_.begin(), members_.end(), [&](uint32_t id) { return Reported(id); });
}

bool Schedule::OwesReport(uint32_t id) const { return running_ && IsMember(id) && !Reported(id); }

TrainStats Schedule::EndEpoch() {
  running_ = false;
  return stats_;
}

void Schedule::Finish(bool failed) {
  done_ = true;
  failed_ = failed;
  running_ = false;
}

void Schedule::GaveUp(uint32_t id, uint64_t failed_generation, const std::string& error) {
  PSREC_LOG(WARNING) << "worker " << id << " gave up generation " << failed_generation << ": "
                     << error;
  if (failed_generation == generation_ && running_) {
    SetTrouble(absl::StrCat("worker ", id, ": ", error));
  }
}

bool Schedule::HasAnswer(uint32_t id) const {
  // A worker that gave its assignment up has set trouble_ by now.
  return done_ || (running_ && trouble_.empty() && IsMember(id) && !Reported(id));
}

void Schedule::Answer(uint32_t id, WorkAssignment* work) {
  if (done_) {
    work->set_kind(failed_ ? WorkAssignment::ABORTED : WorkAssignment::DONE);
    return;
  }
  if (!HasAnswer(id)) {
    work->set_kind(WorkAssignment::WAIT);
    return;
  }
  const Partition& p = plan_[id];
  progress_[id].assigned_epoch = epoch_;
  progress_[id].assigned_generation = generation_;
  progress_[id].clock = p.first_clock;
  work->set_kind(WorkAssignment::TRAIN);
  work->set_epoch(epoch_);
  work->set_begin(p.begin);
  work->set_end(p.end);
  work->set_first_step(p.first_step);
  work->set_first_clock(p.first_clock);
  work->set_num_clocks(p.num_clocks);
  work->set_generation(generation_);
}

absl::Status Schedule::Report(const ReportRequest& report) {
  const uint32_t id = report.worker_id();
  const bool known = id < progress_.size();
  if (known && report.epoch() == progress_[id].reported_epoch &&
      report.generation() == progress_[id].reported_generation) {
    return absl::OkStatus();  // a retry whose first answer was lost
  }
  if (known && (report.generation() != generation_ || !running_)) {
    // Another generation, or a rollback under way that is about to start one.
    return GenerationOver(report.generation(), generation_);
  }
  if (!known || report.epoch() != epoch_ || progress_[id].assigned_epoch != epoch_ ||
      progress_[id].assigned_generation != generation_) {
    return absl::FailedPreconditionError(absl::StrCat("unexpected report from worker ", id,
                                                      " for epoch ", report.epoch(),
                                                      " (current epoch ", epoch_, ")"));
  }
  Progress& p = progress_[id];
  p.reported_epoch = epoch_;
  p.reported_generation = generation_;
  // The last clock of the epoch: SSP neighbours waiting on this worker may go on.
  p.clock = plan_[id].first_clock + plan_[id].num_clocks;
  stats_.loss_sum += report.loss_sum();
  stats_.examples += report.examples();
  stats_.batches += report.batches();
  return absl::OkStatus();
}

absl::Status Schedule::EnterClock(uint32_t id, uint64_t clock, uint64_t generation) {
  if (absl::Status s = CheckGeneration(generation); !s.ok()) return s;
  progress_[id].clock = clock;
  return absl::OkStatus();
}

uint64_t Schedule::MinClock() const {
  uint64_t min_clock = UINT64_MAX;
  for (uint32_t id : members_) min_clock = std::min(min_clock, progress_[id].clock);
  return min_clock;
}

absl::Status Schedule::CheckGeneration(uint64_t generation) const {
  if (generation == generation_) return absl::OkStatus();
  return GenerationOver(generation, generation_);
}

}  // namespace psrec

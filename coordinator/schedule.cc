#include "coordinator/schedule.h"

#include <algorithm>
#include <numeric>
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

std::vector<std::vector<uint32_t>> AssignShares(absl::Span<const uint64_t> share_rows,
                                                size_t members) {
  std::vector<std::vector<uint32_t>> parts(members);
  if (members == 0) return parts;
  std::vector<uint32_t> order(share_rows.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return share_rows[a] > share_rows[b]; });
  std::vector<uint64_t> load(members, 0);
  for (const uint32_t share : order) {
    const size_t k = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    parts[k].push_back(share);
    load[k] += share_rows[share];
  }
  for (std::vector<uint32_t>& p : parts) std::sort(p.begin(), p.end());
  return parts;
}

void PlanTrainEpoch(absl::Span<const uint64_t> rows, uint32_t batch_size, uint32_t epoch,
                    std::vector<Part>* parts) {
  uint64_t batches_in_epoch = 0, max_batches = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    const uint64_t batches = Batches(rows[k], batch_size);
    (*parts)[k].first_step = batches_in_epoch;  // offset within the epoch, rebased below
    batches_in_epoch += batches;
    max_batches = std::max(max_batches, batches);
  }
  for (Part& p : *parts) {
    p.first_step += uint64_t{epoch} * batches_in_epoch;
    p.num_clocks = max_batches;
  }
}

Schedule::Schedule(uint32_t staleness, uint64_t first_generation)
    : staleness_(staleness), generation_(first_generation) {}

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
  return p.reported_task == task_ && p.reported_generation == generation_;
}

void Schedule::StartTask(const TaskSpec& spec, std::vector<Part> parts) {
  PSREC_CHECK(parts.size() == members_.size())
      << parts.size() << " parts for " << members_.size() << " members";
  spec_ = spec;
  ++task_;
  plan_.assign(progress_.size(), Part());
  const bool train = spec.kind == WorkAssignment::TRAIN;
  for (size_t k = 0; k < members_.size(); ++k) {
    plan_[members_[k]] = std::move(parts[k]);
    if (train) plan_[members_[k]].first_clock = next_clock_;
  }
  if (train && !members_.empty()) next_clock_ += plan_[members_.front()].num_clocks;
  running_ = true;
}

void Schedule::SetTrouble(const std::string& why) {
  if (trouble_.empty()) trouble_ = why;
}

bool Schedule::AllReported() const {
  return std::all_of(members_.begin(), members_.end(), [&](uint32_t id) { return Reported(id); });
}

bool Schedule::OwesReport(uint32_t id) const { return running_ && IsMember(id) && !Reported(id); }

std::vector<ReportRequest> Schedule::EndTask() {
  running_ = false;
  std::vector<ReportRequest> reports;
  for (const uint32_t id : members_) {
    reports.push_back(Reported(id) ? progress_[id].report : ReportRequest());
  }
  return reports;
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
  const Part& p = plan_[id];
  progress_[id].assigned_task = task_;
  progress_[id].assigned_generation = generation_;
  work->set_kind(spec_.kind);
  work->set_epoch(spec_.epoch);
  work->set_task(task_);
  work->set_generation(generation_);
  for (const uint32_t share : p.shares) work->add_shares(share);
  work->set_threshold(spec_.threshold);
  work->set_rating_offset(spec_.rating_offset);
  for (const TimeRange& range : spec_.ranges) *work->add_ranges() = range;
  if (spec_.rank) *work->mutable_ranking() = spec_.ranking;
  if (spec_.kind == WorkAssignment::TRAIN) {
    progress_[id].clock = p.first_clock;
    work->set_first_step(p.first_step);
    work->set_first_clock(p.first_clock);
    work->set_num_clocks(p.num_clocks);
  }
}

absl::Status Schedule::Report(const ReportRequest& report) {
  const uint32_t id = report.worker_id();
  const bool known = id < progress_.size();
  if (known && report.task() == progress_[id].reported_task &&
      report.generation() == progress_[id].reported_generation) {
    return absl::OkStatus();  // a retry whose first answer was lost
  }
  if (known && (report.generation() != generation_ || !running_)) {
    // Another generation, or a rollback under way that is about to start one.
    return GenerationOver(report.generation(), generation_);
  }
  if (!known || report.task() != task_ || progress_[id].assigned_task != task_ ||
      progress_[id].assigned_generation != generation_) {
    return absl::FailedPreconditionError(absl::StrCat("unexpected report from worker ", id,
                                                      " for task ", report.task(),
                                                      " (current task ", task_, ")"));
  }
  Progress& p = progress_[id];
  p.reported_task = task_;
  p.reported_generation = generation_;
  p.report = report;
  // The last clock of the epoch: SSP neighbours waiting on this worker may go on.
  if (spec_.kind == WorkAssignment::TRAIN) p.clock = plan_[id].first_clock + plan_[id].num_clocks;
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

#include "coordinator/job_runner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "coordinator/coordinator_metrics.h"

namespace psrec {
namespace {

// Why Run ended after RequestStop.
absl::Status StoppedError(const std::string& when) {
  return absl::CancelledError(absl::StrCat("stopped on a signal ", when));
}

}  // namespace

JobRunner::JobRunner(JobConfig config, JobDataInfo data, RecoveryOptions recovery,
                     ShardControl* shards, CoordinatorState* state)
    : config_(std::move(config)),
      data_(std::move(data)),
      shards_(shards),
      recovery_(config_, std::move(recovery), shards),
      state_(state) {
  for (const ShareInfo& share : data_.manifest.shares()) share_rows_.push_back(share.rows());
}

absl::StatusOr<std::vector<EpochRecord>> JobRunner::Run(absl::Duration register_timeout,
                                                        absl::Duration epoch_timeout,
                                                        const std::string& metrics_out) {
  register_timeout_ = register_timeout;
  absl::StatusOr<std::vector<EpochRecord>> result = RunEpochs(epoch_timeout, metrics_out);
  if (result.ok()) PSREC_LOG(INFO) << "processes of the job:\n" << ProcessTable(Processes());
  absl::MutexLock lock(&state_->mu);
  // Stopped: the workers are told nothing, and register with the next incarnation.
  if (state_->stopping && !result.ok()) return result;
  // However else the job ends, workers asking for work from now on are told to exit.
  state_->schedule.Finish(/*failed=*/!result.ok());
  return result;
}

void JobRunner::RequestStop() {
  absl::MutexLock lock(&state_->mu);
  state_->stopping = true;  // releasing mu wakes the waits that look at it
}

bool JobRunner::Stopping() {
  absl::MutexLock lock(&state_->mu);
  return state_->stopping;
}

absl::StatusOr<std::vector<EpochRecord>> JobRunner::RunEpochs(absl::Duration epoch_timeout,
                                                              const std::string& metrics_out) {
  if (absl::Status s = AwaitAllReady(); !s.ok()) return s;
  if (absl::Status s = SplitData(epoch_timeout); !s.ok()) return s;
  absl::StatusOr<uint32_t> first = StartFirstGeneration();
  if (!first.ok()) return first.status();
  uint32_t epoch = *first;
  std::vector<EpochRecord> records;
  // A resumed job that has no epoch left still reports its model's metrics.
  const bool evaluate_only = epoch == config_.epochs() && epoch > 0;
  while (epoch < config_.epochs() || evaluate_only) {
    absl::StatusOr<EpochOutcome> outcome = RunEpoch(epoch, evaluate_only, epoch_timeout);
    if (!outcome.ok()) return outcome.status();
    if (!outcome->trouble.empty()) {
      if (Stopping()) {
        return StoppedError(absl::StrCat("in epoch ", epoch + 1, ", which had trouble (",
                                         outcome->trouble, "); no final checkpoint"));
      }
      if (!recovery_.enabled()) return absl::AbortedError(outcome->trouble);
      if (absl::Status s = Rollback(outcome->trouble, &epoch); !s.ok()) return s;
      while (!records.empty() && records.back().epoch > epoch) records.pop_back();
      continue;
    }
    if (absl::Status s = FinishEpoch(outcome->record, config_.epochs()); !s.ok()) return s;
    records.push_back(outcome->record);
    const EpochRecord& done = outcome->record;
    CoordinatorMetrics::Get().EpochDone(done.epoch, done.test.mae, done.test.rmse);
    if (!metrics_out.empty()) {
      const std::vector<ProcessReport> processes = Processes();
      if (absl::Status s = WriteMetricsJson(metrics_out, config_, records, processes, popularity_);
          !s.ok()) {
        return s;
      }
    }
    if (evaluate_only) break;
    ++epoch;
    if (epoch < config_.epochs() && outcome->stop) {
      return StoppedError(absl::StrCat("after epoch ", epoch, ", its checkpoint written"));
    }
  }
  return records;
}

absl::Status JobRunner::AwaitAllReady() {
  absl::MutexLock lock(&state_->mu);
  auto all_ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->membership.AllReady() || state_->stopping;
  };
  PSREC_LOG(INFO) << "waiting for " << config_.num_workers() << " workers";
  if (state_->mu.AwaitWithTimeout(absl::Condition(&all_ready), register_timeout_)) {
    return state_->stopping ? StoppedError("while waiting for the workers") : absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("only ", state_->membership.size(), " of ", config_.num_workers(),
                   " workers registered (", state_->membership.ReadyCount(),
                   " with their data loaded) within ", absl::FormatDuration(register_timeout_)));
}

absl::StatusOr<uint32_t> JobRunner::StartFirstGeneration() {
  if (!recovery_.enabled()) {
    absl::MutexLock lock(&state_->mu);
    state_->schedule.SetMembers(state_->membership.LiveReady());
    return 0;
  }
  absl::StatusOr<RestartPoint> start = recovery_.Start();
  if (!start.ok()) return start.status();
  if (absl::Status s = StartGeneration(start->checkpoint, /*keep_rows=*/false); !s.ok()) return s;
  return start->epochs_done;
}

absl::StatusOr<JobRunner::EpochOutcome> JobRunner::RunEpoch(uint32_t epoch, bool evaluate_only,
                                                            absl::Duration epoch_timeout) {
  const absl::Time start = absl::Now();
  EpochOutcome outcome;
  EpochRecord& record = outcome.record;
  record.epoch = epoch + (evaluate_only ? 0 : 1);
  if (!evaluate_only) {
    absl::StatusOr<std::string> trouble = TrainEpoch(epoch, epoch_timeout, &record);
    if (!trouble.ok()) return trouble.status();
    outcome.trouble = *trouble;
  }
  record.train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (outcome.trouble.empty()) {
    absl::StatusOr<std::string> trouble = Evaluate(epoch, epoch_timeout, &record);
    if (!trouble.ok()) return trouble.status();
    outcome.trouble = *trouble;
  }
  if (outcome.trouble.empty() && !evaluate_only) {
    // A stop's final checkpoint is written whether or not one was due.
    outcome.stop = Stopping();
    absl::StatusOr<std::string> trouble =
        CheckpointIfDue(epoch + 1, epoch + 1 == config_.epochs() || outcome.stop);
    if (!trouble.ok()) return trouble.status();
    outcome.trouble = *trouble;
  }
  record.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return outcome;
}

absl::StatusOr<std::string> JobRunner::TrainEpoch(uint32_t epoch, absl::Duration epoch_timeout,
                                                  EpochRecord* record) {
  bool joined_or_left;
  {
    absl::MutexLock lock(&state_->mu);
    ExpireLeases();
    joined_or_left = state_->membership.LiveReady() != state_->schedule.members();
  }
  // Workers that joined or left between epochs change the generation, rows kept.
  if (joined_or_left && recovery_.enabled()) {
    absl::Status s = StartGeneration("", /*keep_rows=*/true);
    // A server restarted between epochs: its rows are not the job's. (Trouble is never "".)
    if (absl::IsAborted(s)) return s.message().empty() ? s.ToString() : std::string(s.message());
    if (!s.ok()) return s;
  }
  {
    absl::MutexLock lock(&state_->mu);
    if (!recovery_.enabled()) state_->schedule.SetMembers(state_->membership.LiveReady());
    if (state_->schedule.members().empty()) return absl::UnavailableError("no worker is left");
  }
  TaskSpec spec;
  spec.kind = WorkAssignment::TRAIN;
  spec.epoch = epoch;
  spec.threshold = threshold_;
  spec.rating_offset = config_.rating_offset();
  absl::StatusOr<TaskOutcome> outcome = RunTask(spec, epoch_timeout);
  if (!outcome.ok()) return outcome.status();
  TrainStats stats;
  for (const ReportRequest& report : outcome->reports) {  // in member order: the same sum always
    stats.loss_sum += report.loss_sum();
    stats.examples += report.examples();
    stats.batches += report.batches();
  }
  record->train_loss = stats.mean_loss();
  record->examples = stats.examples;
  return outcome->trouble;
}

absl::StatusOr<std::string> JobRunner::CheckpointIfDue(uint32_t epochs_done, bool last) {
  if (!recovery_.CheckpointDue(last)) return std::string();
  uint64_t generation, clock;
  {
    absl::MutexLock lock(&state_->mu);
    generation = state_->schedule.generation();
    clock = state_->schedule.first_clock();
  }
  return recovery_.Checkpoint(epochs_done, generation, clock);
}

absl::Status JobRunner::Rollback(const std::string& why, uint32_t* epoch) {
  absl::StatusOr<RestartPoint> latest = recovery_.BeginRollback(why);
  if (!latest.ok()) return latest.status();
  if (absl::Status s = StartGeneration(latest->checkpoint, /*keep_rows=*/false); !s.ok()) return s;
  CoordinatorMetrics::Get().rollbacks.Increment();
  *epoch = latest->epochs_done;
  return absl::OkStatus();
}

absl::Status JobRunner::StartGeneration(const std::string& checkpoint, bool keep_rows) {
  std::vector<uint32_t> members;
  uint64_t generation, clock;
  if (absl::Status s = NextGeneration(&members, &generation, &clock); !s.ok()) return s;
  if (!recovery_.enabled()) return absl::OkStatus();
  return recovery_.Restore(generation, checkpoint, keep_rows, clock, members);
}

absl::Status JobRunner::StartDataGeneration() {
  std::vector<uint32_t> members;
  uint64_t generation, clock;
  if (absl::Status s = NextGeneration(&members, &generation, &clock); !s.ok()) return s;
  PSREC_LOG(INFO) << "generation " << generation << ": workers [" << absl::StrJoin(members, ",")
                  << "] split the data";
  return absl::OkStatus();
}

absl::Status JobRunner::NextGeneration(std::vector<uint32_t>* members, uint64_t* generation,
                                       uint64_t* clock) {
  absl::MutexLock lock(&state_->mu);
  if (!AwaitMinWorkers()) {
    if (state_->stopping) return StoppedError("while waiting for workers");
    return absl::UnavailableError(
        absl::StrCat("only ", state_->membership.LiveReady().size(),
                     " live workers, fewer than --min_workers=", recovery_.options().min_workers,
                     ", and no replacement registered and loaded its data within ",
                     absl::FormatDuration(register_timeout_), " (--register_timeout)"));
  }
  *members = state_->membership.LiveReady();
  *clock = state_->schedule.first_clock();
  *generation = state_->schedule.NewGeneration(*members);
  CoordinatorMetrics::Get().generation.Set(static_cast<double>(*generation));
  // Releasing the mutex re-evaluates the Conditions of Clock calls waiting in the old generation.
  return absl::OkStatus();
}

bool JobRunner::AwaitMinWorkers() {
  const size_t wanted = std::max(recovery_.options().min_workers, 1u);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->membership.LiveReady().size() >= wanted || state_->stopping;
  };
  ExpireLeases();
  if (enough()) return true;
  PSREC_LOG(WARNING) << state_->membership.LiveReady().size()
                     << " live workers, fewer than --min_workers=" << wanted << "; waiting up to "
                     << absl::FormatDuration(register_timeout_)
                     << " for replacements to register and load their data";
  const absl::Time give_up = absl::Now() + register_timeout_;
  while (!enough() && absl::Now() < give_up) {
    state_->mu.AwaitWithTimeout(absl::Condition(&enough), kWatchEvery);
    ExpireLeases();
  }
  return enough() && !state_->stopping;
}

std::string JobRunner::ExpireLeases() { return Lose(state_->membership.ExpireLeases(absl::Now())); }

std::string JobRunner::Lose(const std::vector<Membership::Lost>& lost) {
  std::string trouble;
  for (const Membership::Lost& worker : lost) {
    if (trouble.empty() && state_->schedule.OwesReport(worker.id)) trouble = worker.what;
  }
  CoordinatorMetrics::Get().workers_alive.Set(state_->membership.LiveReady().size());
  return trouble;
}

}  // namespace psrec

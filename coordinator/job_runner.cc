#include "coordinator/job_runner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "coordinator/coordinator_metrics.h"

namespace psrec {
namespace {

// How often a running epoch looks at leases and at the shards.
constexpr absl::Duration kWatchEvery = absl::Milliseconds(250);
constexpr absl::Duration kCheckShardsEvery = absl::Milliseconds(500);

}  // namespace

JobRunner::JobRunner(JobConfig config, RecoveryOptions recovery, ShardControl* shards,
                     CoordinatorState* state)
    : config_(std::move(config)), recovery_(config_, std::move(recovery), shards), state_(state) {}

absl::StatusOr<std::vector<EpochRecord>> JobRunner::Run(const Evaluator& evaluate,
                                                        absl::Duration register_timeout,
                                                        absl::Duration epoch_timeout,
                                                        const std::string& metrics_out) {
  register_timeout_ = register_timeout;
  absl::StatusOr<std::vector<EpochRecord>> result = RunEpochs(evaluate, epoch_timeout, metrics_out);
  // However the job ends, workers asking for work from now on are told to exit.
  absl::MutexLock lock(&state_->mu);
  state_->schedule.Finish(/*failed=*/!result.ok());
  return result;
}

absl::StatusOr<std::vector<EpochRecord>> JobRunner::RunEpochs(const Evaluator& evaluate,
                                                              absl::Duration epoch_timeout,
                                                              const std::string& metrics_out) {
  if (absl::Status s = AwaitAllReady(); !s.ok()) return s;
  absl::StatusOr<uint32_t> first = StartFirstGeneration();
  if (!first.ok()) return first.status();
  uint32_t epoch = *first;
  std::vector<EpochRecord> records;
  // A resumed job that has no epoch left still reports its model's metrics.
  const bool evaluate_only = epoch == config_.epochs() && epoch > 0;
  while (epoch < config_.epochs() || evaluate_only) {
    absl::StatusOr<EpochOutcome> outcome = RunEpoch(evaluate, epoch, evaluate_only, epoch_timeout);
    if (!outcome.ok()) return outcome.status();
    if (!outcome->trouble.empty()) {
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
      if (absl::Status s = WriteMetricsJson(metrics_out, config_, records); !s.ok()) return s;
    }
    if (evaluate_only) break;
    ++epoch;
  }
  return records;
}

absl::Status JobRunner::AwaitAllReady() {
  absl::MutexLock lock(&state_->mu);
  auto all_ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->membership.AllReady();
  };
  PSREC_LOG(INFO) << "waiting for " << config_.num_workers() << " workers";
  if (state_->mu.AwaitWithTimeout(absl::Condition(&all_ready), register_timeout_)) {
    return absl::OkStatus();
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

absl::StatusOr<JobRunner::EpochOutcome> JobRunner::RunEpoch(const Evaluator& evaluate,
                                                            uint32_t epoch, bool evaluate_only,
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
  uint64_t generation;
  {
    absl::MutexLock lock(&state_->mu);
    generation = state_->schedule.generation();
  }
  record.train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (outcome.trouble.empty()) {
    absl::StatusOr<TestMetrics> metrics = evaluate(generation);
    if (metrics.ok()) {
      record.test = *metrics;
    } else if (!recovery_.enabled()) {
      return metrics.status();
    } else {
      outcome.trouble = absl::StrCat("evaluation failed: ", metrics.status().message());
    }
  }
  if (outcome.trouble.empty() && !evaluate_only) {
    absl::StatusOr<std::string> trouble = CheckpointIfDue(epoch + 1, epoch + 1 == config_.epochs());
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
    state_->schedule.StartEpoch(epoch);
  }
  if (absl::Status s = WaitForEpoch(epoch, epoch_timeout); !s.ok()) return s;
  absl::MutexLock lock(&state_->mu);
  const TrainStats stats = state_->schedule.EndEpoch();
  record->train_loss = stats.mean_loss();
  record->examples = stats.examples;
  return state_->schedule.trouble();
}

absl::Status JobRunner::WaitForEpoch(uint32_t epoch, absl::Duration epoch_timeout) {
  const absl::Time give_up = absl::Now() + epoch_timeout;
  absl::Time next_check = absl::Now() + kCheckShardsEvery;
  while (true) {
    {
      absl::MutexLock lock(&state_->mu);
      auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
        return state_->schedule.AllReported() || !state_->schedule.trouble().empty();
      };
      state_->mu.AwaitWithTimeout(absl::Condition(&ended), kWatchEvery);
      if (state_->schedule.AllReported()) return absl::OkStatus();
      if (state_->schedule.trouble().empty()) state_->schedule.SetTrouble(ExpireLeases());
      if (!state_->schedule.trouble().empty()) return absl::OkStatus();
    }
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          "epoch ", epoch + 1, " did not finish within ", absl::FormatDuration(epoch_timeout)));
    }
    if (recovery_.enabled() && absl::Now() >= next_check) {
      absl::StatusOr<std::string> trouble = recovery_.CheckShards();
      if (!trouble.ok()) return trouble.status();
      next_check = absl::Now() + kCheckShardsEvery;
      if (!trouble->empty()) {
        absl::MutexLock lock(&state_->mu);
        state_->schedule.SetTrouble(*trouble);
      }
    }
  }
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
  {
    absl::MutexLock lock(&state_->mu);
    if (!AwaitMinWorkers()) {
      return absl::UnavailableError(
          absl::StrCat("only ", state_->membership.LiveReady().size(),
                       " live workers, fewer than --min_workers=", recovery_.options().min_workers,
                       ", and no replacement registered and loaded its data within ",
                       absl::FormatDuration(register_timeout_), " (--register_timeout)"));
    }
    members = state_->membership.LiveReady();
    clock = state_->schedule.first_clock();
    generation = state_->schedule.NewGeneration(members);
    CoordinatorMetrics::Get().generation.Set(static_cast<double>(generation));
  }  // Releasing the mutex re-evaluates the Conditions of Clock calls waiting in the old
     // generation.
  if (!recovery_.enabled()) return absl::OkStatus();
  return recovery_.Restore(generation, checkpoint, keep_rows, clock, members);
}

bool JobRunner::AwaitMinWorkers() {
  const size_t wanted = std::max(recovery_.options().min_workers, 1u);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->membership.LiveReady().size() >= wanted;
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
  return enough();
}

std::string JobRunner::ExpireLeases() {
  std::string trouble;
  for (const Membership::Lost& lost : state_->membership.ExpireLeases(absl::Now())) {
    if (trouble.empty() && state_->schedule.OwesReport(lost.id)) trouble = lost.what;
  }
  CoordinatorMetrics::Get().workers_alive.Set(state_->membership.LiveReady().size());
  return trouble;
}

}  // namespace psrec

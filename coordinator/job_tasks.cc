// JobRunner's tasks (coordinator/job_runner.h): running one over the members and waiting for it,
// the data phase that has the workers split the data, evaluation, and the table of processes.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/held_ranking.h"
#include "common/log.h"
#include "coordinator/job_runner.h"

namespace psrec {
namespace {

const char* TaskName(WorkAssignment::Kind kind) {
  switch (kind) {
    case WorkAssignment::COUNT_TIMES:
      return "counting timestamps";
    case WorkAssignment::SPLIT:
      return "splitting the data";
    case WorkAssignment::TRAIN:
      return "training";
    case WorkAssignment::EVALUATE:
      return "evaluating";
    default:
      return "working";
  }
}

}  // namespace

absl::StatusOr<JobRunner::TaskOutcome> JobRunner::RunTask(const TaskSpec& spec,
                                                          absl::Duration timeout) {
  {
    absl::MutexLock lock(&state_->mu);
    const size_t members = state_->schedule.members().size();
    if (members == 0) return absl::UnavailableError("no worker is left");
    const std::vector<std::vector<uint32_t>> shares = AssignShares(share_rows_, members);
    std::vector<Part> parts(members);
    std::vector<uint64_t> rows(members, 0);
    for (size_t k = 0; k < members; ++k) {
      parts[k].shares = shares[k];
      for (const uint32_t share : shares[k]) {
        rows[k] += share < share_train_.size() ? share_train_[share] : 0;
      }
    }
    if (spec.kind == WorkAssignment::TRAIN) {
      PlanTrainEpoch(rows, config_.batch_size(), spec.epoch, &parts);
    }
    state_->schedule.StartTask(spec, std::move(parts));
  }
  const std::string what =
      spec.kind == WorkAssignment::TRAIN || spec.kind == WorkAssignment::EVALUATE
          ? absl::StrCat(TaskName(spec.kind), " epoch ", spec.epoch + 1)
          : std::string(TaskName(spec.kind));
  // The data phase does not touch the servers, and before the first generation they have no rows
  // to lose: a check then would take their first incarnation for a restart.
  const bool watch_shards =
      spec.kind == WorkAssignment::TRAIN || spec.kind == WorkAssignment::EVALUATE;
  if (absl::Status s = WaitForTask(what, timeout, watch_shards); !s.ok()) return s;
  TaskOutcome outcome;
  {
    absl::MutexLock lock(&state_->mu);
    outcome.reports = state_->schedule.EndTask();
    outcome.trouble = state_->schedule.trouble();
  }
  NoteProcesses(outcome.reports);
  return outcome;
}

absl::Status JobRunner::WaitForTask(const std::string& what, absl::Duration timeout,
                                    bool watch_shards) {
  const absl::Time give_up = absl::Now() + timeout;
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
      return absl::DeadlineExceededError(
          absl::StrCat(what, " did not finish within ", absl::FormatDuration(timeout)));
    }
    if (watch_shards && recovery_.enabled() && absl::Now() >= next_check) {
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

absl::Status JobRunner::SplitData(absl::Duration timeout) {
  const absl::Time start = absl::Now();
  {
    // Every place is taken by a ready worker now; the first try needs no generation of its own.
    absl::MutexLock lock(&state_->mu);
    state_->schedule.SetMembers(state_->membership.LiveReady());
  }
  for (bool retry = false;; retry = true) {
    if (retry) {
      if (absl::Status s = StartDataGeneration(); !s.ok()) return s;
    }
    absl::StatusOr<std::string> trouble = TrySplitData(timeout);
    if (!trouble.ok()) return trouble.status();
    if (trouble->empty()) break;
    if (!recovery_.enabled()) return absl::AbortedError(*trouble);
    if (absl::Status s = recovery_.CountRollback(*trouble); !s.ok()) return s;
    PSREC_LOG(WARNING) << "splitting the data again, with the live workers, because " << *trouble;
  }
  recovery_.set_rating_offset(config_.rating_offset());
  PSREC_LOG(INFO) << absl::StrFormat(
      "the workers split %u ratings in %u shares (%s, mean training rating %.4f) in %.2f s",
      data_.manifest.num_ratings(), data_.manifest.num_shares(), EnumFlagName(config_.split()),
      config_.rating_offset(), absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobRunner::TrySplitData(absl::Duration timeout) {
  if (config_.split() == SEED_TIME) {
    absl::StatusOr<std::string> trouble = FindThreshold(timeout);
    if (!trouble.ok() || !trouble->empty()) return trouble;
  }
  TaskSpec spec;
  spec.kind = WorkAssignment::SPLIT;
  spec.threshold = threshold_;
  absl::StatusOr<TaskOutcome> outcome = RunTask(spec, timeout);
  if (!outcome.ok()) return outcome.status();
  if (!outcome->trouble.empty()) return outcome->trouble;
  const uint32_t num_shares = data_.manifest.num_shares();
  std::vector<bool> seen(num_shares, false);
  share_train_.assign(num_shares, 0);
  item_stats_ = ItemTrainStats(RanksAtAll(config_) ? data_.manifest.num_items() : 0);
  SplitTotals totals;
  for (const ReportRequest& report : outcome->reports) {
    if (absl::Status s = MergeItemStats(report.items(), &item_stats_); !s.ok()) {
      return absl::InternalError(
          absl::StrCat("worker ", report.worker_id(), "'s split: ", s.message()));
    }
    for (const ShareSplit& split : report.splits()) {
      if (split.share() >= num_shares || seen[split.share()]) {
        return absl::InternalError(absl::StrCat("worker ", report.worker_id(),
                                                " reported the split of share ", split.share(),
                                                ", which is not its own"));
      }
      seen[split.share()] = true;
      share_train_[split.share()] = split.train();
      totals.Add(
          ShareSummary{split.share(), split.train(), split.test(), split.train_half_stars()});
    }
  }
  if (std::find(seen.begin(), seen.end(), false) != seen.end()) {
    return absl::InternalError("the workers' splits leave out a share");
  }
  if (absl::Status s = CheckSplitTotals(totals, config_.split(), data_.manifest.source().path());
      !s.ok()) {
    return s;
  }
  config_.set_rating_offset(totals.MeanTrainRating());
  return std::string();
}

absl::StatusOr<std::string> JobRunner::FindThreshold(absl::Duration timeout) {
  PercentileSearch search = SeedTimeSearch(data_.manifest, config_.test_fraction());
  while (!search.done()) {
    TaskSpec spec;
    spec.kind = WorkAssignment::COUNT_TIMES;
    for (const TimeBuckets& range : search.Query()) {
      TimeRange* wire = &spec.ranges.emplace_back();
      wire->set_lo(range.lo);
      wire->set_shift(range.shift);
      wire->set_count(range.count);
    }
    absl::StatusOr<TaskOutcome> outcome = RunTask(spec, timeout);
    if (!outcome.ok()) return outcome.status();
    if (!outcome->trouble.empty()) return outcome->trouble;
    std::vector<uint64_t> counts(BucketCount(search.Query()), 0);
    for (const ReportRequest& report : outcome->reports) {
      if (static_cast<size_t>(report.time_counts_size()) != counts.size()) {
        return absl::InternalError(absl::StrCat("worker ", report.worker_id(), " reported ",
                                                report.time_counts_size(), " counts for ",
                                                counts.size(), " buckets"));
      }
      for (size_t i = 0; i < counts.size(); ++i) counts[i] += report.time_counts(i);
    }
    if (absl::Status s = search.Add(counts); !s.ok()) return absl::InternalError(s.message());
  }
  threshold_ = search.value();
  return std::string();
}

absl::StatusOr<std::string> JobRunner::Evaluate(uint32_t epoch, absl::Duration timeout,
                                                EpochRecord* record) {
  TaskSpec spec;
  spec.kind = WorkAssignment::EVALUATE;
  spec.epoch = epoch;
  spec.threshold = threshold_;
  spec.rating_offset = config_.rating_offset();
  spec.rank = RanksAfterEpoch(config_, record->epoch, data_.manifest.num_users(),
                              data_.manifest.num_items());
  const bool popularity = spec.rank && !popularity_.ranked;
  if (popularity) ItemStatsToWire(item_stats_, spec.ranking.mutable_popularity());
  absl::StatusOr<TaskOutcome> outcome = RunTask(spec, timeout);
  if (!outcome.ok()) return outcome.status();
  if (!outcome->trouble.empty()) return absl::StrCat("evaluation failed: ", outcome->trouble);
  if (spec.rank) {
    if (absl::Status s = MergeRanking(outcome->reports, popularity, record); !s.ok()) return s;
  }
  ErrorSums sums;
  for (const ReportRequest& report : outcome->reports) {
    const ErrorTotals& e = report.errors();
    sums.Merge(ErrorSums::FromWire(e.count(), e.abs_units(), e.sq_units_hi(), e.sq_units_lo(),
                                   e.non_finite()));
  }
  record->test = sums.Metrics();
  return std::string();
}

absl::Status JobRunner::MergeRanking(const std::vector<ReportRequest>& reports, bool popularity,
                                     EpochRecord* record) {
  RankingSums model, popular;
  for (const ReportRequest& report : reports) {
    for (auto [wire, sums] : {std::pair{&report.ranking(), &model},
                              std::pair{&report.popularity(), popularity ? &popular : nullptr}}) {
      if (sums == nullptr) continue;
      absl::StatusOr<RankingSums> part = RankingFromWire(*wire);
      absl::Status merged = part.ok() ? sums->Merge(*part) : part.status();
      if (!merged.ok()) {
        return absl::InternalError(
            absl::StrCat("worker ", report.worker_id(), "'s ranking: ", merged.message()));
      }
    }
  }
  record->ranking = RankingMetrics::Of(model);
  if (popularity) {
    popularity_ = RankingMetrics::Of(popular);
    PSREC_LOG(INFO) << "popularity baseline: " << RankingText(popularity_);
  }
  return absl::OkStatus();
}

void JobRunner::NoteProcesses(const std::vector<ReportRequest>& reports) {
  for (const ReportRequest& report : reports) {
    if (!report.has_process()) continue;
    const ProcessStats& p = report.process();
    workers_[p.name()] = ProcessReport{p.role(), p.name(), p.peak_rss_bytes(), p.cpu_seconds(), ""};
  }
}

std::vector<ProcessReport> JobRunner::Processes() {
  // The servers' figures come from their Stats answers: a server that does not answer (it died)
  // is left out.
  std::vector<ProcessReport> out = {SelfReport("coordinator", "coordinator")};
  if (shards_ != nullptr) {
    for (ProcessReport& server : shards_->Processes()) out.push_back(std::move(server));
  }
  for (const auto& [name, report] : workers_) out.push_back(report);
  return out;
}

}  // namespace psrec

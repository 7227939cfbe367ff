// The worker's tasks (worker/worker.h): what it does over its data shares for each assignment.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/held_ranking.h"
#include "common/log.h"
#include "common/process_stats.h"
#include "worker/worker.h"

namespace psrec {
namespace {

absl::Status Annotate(const absl::Status& status, const std::string& prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

std::vector<uint32_t> SharesOf(const WorkAssignment& work) {
  return std::vector<uint32_t>(work.shares().begin(), work.shares().end());
}

}  // namespace

absl::Status Worker::DoTask(const WorkAssignment& work, ReportRequest* report) {
  report->set_worker_id(worker_id_);
  report->set_incarnation(incarnation_);
  report->set_epoch(work.epoch());
  report->set_generation(work.generation());
  report->set_task(work.task());
  absl::Status status;
  switch (work.kind()) {
    case WorkAssignment::COUNT_TIMES:
      status = CountTimes(work, report);
      break;
    case WorkAssignment::SPLIT:
      status = SplitShares(work, report);
      break;
    case WorkAssignment::TRAIN:
      status = TrainEpoch(work, report);
      break;
    case WorkAssignment::EVALUATE:
      status = Evaluate(work, report);
      break;
    default:
      return absl::InternalError(absl::StrCat("GetWork to coordinator (", options_.coordinator,
                                              ") answered an unknown kind ", work.kind()));
  }
  ProcessStats* process = report->mutable_process();
  process->set_role("worker");
  process->set_name(options_.name_given ? options_.name
                                        : absl::StrCat("worker", worker_id_.load()));
  process->set_peak_rss_bytes(PeakRssBytes());
  process->set_cpu_seconds(CpuSeconds());
  return status;
}

absl::Status Worker::CountTimes(const WorkAssignment& work, ReportRequest* report) {
  std::vector<TimeBuckets> ranges;
  size_t buckets = 0;
  for (const TimeRange& r : work.ranges()) {
    ranges.push_back(TimeBuckets{r.lo(), r.shift(), r.count()});
    buckets += r.count();
  }
  std::vector<uint64_t> counts(buckets, 0);
  if (absl::Status s = data_->CountTimes(SharesOf(work), ranges, absl::MakeSpan(counts)); !s.ok()) {
    return s;
  }
  report->mutable_time_counts()->Add(counts.begin(), counts.end());
  return absl::OkStatus();
}

absl::Status Worker::SplitShares(const WorkAssignment& work, ReportRequest* report) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<ShareSummary>> summaries =
      data_->Split(SharesOf(work), SplitSpec::Of(config_, work.threshold()));
  if (!summaries.ok()) return summaries.status();
  uint64_t train = 0, test = 0;
  for (const ShareSummary& s : *summaries) {
    ShareSplit* split = report->add_splits();
    split->set_share(s.share);
    split->set_train(s.train);
    split->set_test(s.test);
    split->set_train_half_stars(s.train_half_stars);
    train += s.train;
    test += s.test;
  }
  if (RanksAtAll(config_)) {
    ItemTrainStats items(data_->manifest().num_items());
    if (absl::Status s = data_->AddItemTrainStats(SharesOf(work), &items); !s.ok()) return s;
    ItemStatsToWire(items, report->mutable_items());
  }
  PSREC_LOG(INFO) << absl::StrFormat("split %u shares of %s: %u train / %u test, in %.2f s",
                                     work.shares_size(), data_->dir(), train, test,
                                     absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

absl::Status Worker::HoldShares(const WorkAssignment& work) {
  const std::vector<uint32_t> shares = SharesOf(work);
  const bool changed = shares != data_->held();
  if (absl::Status s = data_->Hold(shares, SplitSpec::Of(config_, work.threshold())); !s.ok()) {
    return s;
  }
  if (changed) {
    PSREC_LOG(INFO) << "holding shares [" << absl::StrJoin(shares, ",")
                    << "]: " << data_->train_rows().size() << " training and "
                    << data_->test_rows().size() << " test ratings";
  }
  if (trainer_ == nullptr || config_.rating_offset() != work.rating_offset()) {
    config_.set_rating_offset(work.rating_offset());
    absl::StatusOr<std::unique_ptr<Trainer>> trainer =
        Trainer::Create(config_, &data_->table(), store_.get());
    if (!trainer.ok()) return trainer.status();
    trainer_ = *std::move(trainer);
  }
  return absl::OkStatus();
}

absl::Status Worker::TrainEpoch(const WorkAssignment& work, ReportRequest* report) {
  if (absl::Status s = HoldShares(work); !s.ok()) return s;
  const uint64_t batch = config_.batch_size();
  const uint64_t num_train = data_->train_rows().size();
  const uint64_t batches = (num_train + batch - 1) / batch;
  if (work.epoch() >= config_.epochs() ||
      (config_.consistency() == SYNC && batches > work.num_clocks())) {
    return absl::InternalError(
        absl::StrCat("the coordinator assigned epoch ", work.epoch(), " of shares [",
                     absl::StrJoin(work.shares(), ","), "] with ", work.num_clocks(),
                     " clocks, but they hold ", num_train, " training rows, in ", batches,
                     " batches of ", batch, ", and the job has ", config_.epochs(), " epochs"));
  }
  const std::vector<uint32_t> order = EpochOrder(data_->train_rows(), config_.seed(), work.epoch());
  store_->set_generation(work.generation());
  const absl::Time start = absl::Now();
  absl::StatusOr<TrainStats> stats = TrainBatches(work, order);
  if (!stats.ok()) return stats.status();
  if (absl::Status s = FinishClocks(work, stats->batches); !s.ok()) return s;
  // The coordinator evaluates once every worker has reported, so the last push must have landed.
  if (absl::Status s = store_->Flush(); !s.ok()) {
    return Annotate(s, absl::StrCat("epoch ", work.epoch() + 1, " last push: "));
  }
  report->set_loss_sum(stats->loss_sum);
  report->set_examples(stats->examples);
  report->set_batches(stats->batches);
  const double secs = std::max(absl::ToDoubleSeconds(absl::Now() - start), 1e-9);
  PSREC_LOG(INFO) << absl::StrFormat(
      "epoch %u/%u: %u ratings in %u batches, train loss %.4f, %.0f ratings/s", work.epoch() + 1,
      config_.epochs(), stats->examples, stats->batches, stats->mean_loss(),
      static_cast<double>(stats->examples) / secs);
  return absl::OkStatus();
}

absl::Status Worker::Evaluate(const WorkAssignment& work, ReportRequest* report) {
  if (absl::Status s = HoldShares(work); !s.ok()) return s;
  const absl::Span<const uint32_t> test = data_->test_rows();
  std::vector<float> pred(test.size());
  // Reads rows as they are after the epoch: SYNC servers have applied every clock by the time the
  // coordinator hands out evaluation, and clock 0 never waits.
  store_->set_generation(work.generation());
  store_->set_clock(0);
  if (absl::Status s = trainer_->Predict(test, absl::MakeSpan(pred)); !s.ok()) {
    return Annotate(s, absl::StrCat("evaluating epoch ", work.epoch() + 1, ": "));
  }
  const ErrorSums sums = ScoreRows(data_->table(), test, pred);
  ErrorTotals* errors = report->mutable_errors();
  errors->set_count(sums.count());
  errors->set_abs_units(sums.abs_units());
  errors->set_sq_units_hi(sums.sq_units_hi());
  errors->set_sq_units_lo(sums.sq_units_lo());
  errors->set_non_finite(sums.non_finite());
  if (work.has_ranking()) return Rank(work, report);
  return absl::OkStatus();
}

absl::Status Worker::Rank(const WorkAssignment& work, ReportRequest* report) {
  const absl::Time start = absl::Now();
  // Grouped once for both rankings (RankHeldShares and RankHeldSharesByPopularity each group).
  const HeldUsers held = GroupHeldUsers(data_->table(), data_->train_rows(), data_->test_rows());
  absl::StatusOr<RankingSums> model =
      RankHeldUsers(config_, data_->table(), held, store_.get(), kRankingK);
  if (!model.ok()) {
    return Annotate(model.status(), absl::StrCat("ranking after epoch ", work.epoch() + 1, ": "));
  }
  RankingToWire(*model, report->mutable_ranking());
  if (work.ranking().popularity_size() > 0) {
    ItemTrainStats items(data_->manifest().num_items());
    if (absl::Status s = MergeItemStats(work.ranking().popularity(), &items); !s.ok()) {
      return absl::InternalError(absl::StrCat("the coordinator's item statistics: ", s.message()));
    }
    absl::StatusOr<RankingSums> popular =
        RankHeldPopularity(data_->table(), held, items, kRankingK);
    if (!popular.ok()) return popular.status();
    RankingToWire(*popular, report->mutable_popularity());
  }
  PSREC_LOG(INFO) << absl::StrFormat("ranked %d users of %d shares over %u items in %.2f s",
                                     model->users, work.shares_size(), model->catalogue_size,
                                     absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

}  // namespace psrec

#include "app/local_job.h"

#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/data_flags.h"
#include "common/held_ranking.h"
#include "common/job_data.h"
#include "common/log.h"
#include "common/prepare.h"
#include "common/process_stats.h"
#include "ps/local_store.h"
#include "worker/progress.h"
#include "worker/trainer.h"

namespace psrec {

absl::StatusOr<std::unique_ptr<ShareSet>> HoldJobData(JobConfig* config) {
  const absl::Time start = absl::Now();
  const std::string shares_dir = SharesDirFor(config->data_dir(), SharesDirFlag());
  absl::StatusOr<SharesManifest> manifest =
      EnsurePrepared(config->data_dir(), shares_dir, PrepareOptions());
  if (!manifest.ok()) return manifest.status();
  absl::StatusOr<std::unique_ptr<ShareSet>> data = HoldAllShares(shares_dir, config);
  if (!data.ok()) return data.status();
  PSREC_LOG(INFO) << absl::StrFormat(
      "%s: %u ratings, %u users, %u items in %u shares; %s split %u train / %u test; data ready "
      "in %.2f s",
      manifest->source().path(), manifest->num_ratings(), manifest->num_users(),
      manifest->num_items(), manifest->num_shares(), EnumFlagName(config->split()),
      (*data)->train_rows().size(), (*data)->test_rows().size(),
      absl::ToDoubleSeconds(absl::Now() - start));
  return data;
}

absl::StatusOr<RankingMetrics> PopularityBaseline(const JobConfig& config, ShareSet& data) {
  if (!RanksAtAll(config)) return RankingMetrics{};
  ItemTrainStats stats(data.table().num_items());
  if (absl::Status s = data.AddItemTrainStats(data.held(), &stats); !s.ok()) return s;
  absl::StatusOr<RankingSums> sums = RankHeldSharesByPopularity(data, stats);
  if (!sums.ok()) return sums.status();
  return RankingMetrics::Of(*sums);
}

absl::StatusOr<RankingMetrics> RankAfterEpoch(const JobConfig& config, uint32_t epoch,
                                              const ShareSet& data, ParamStore* store) {
  if (!RanksAfterEpoch(config, epoch, data.table().num_users(), data.table().num_items())) {
    return RankingMetrics{};
  }
  absl::StatusOr<RankingSums> sums = RankHeldShares(config, data, store);
  if (!sums.ok()) return sums.status();
  return RankingMetrics::Of(*sums);
}

absl::StatusOr<std::vector<EpochRecord>> RunLocalJob(JobConfig config,
                                                     const std::string& metrics_out) {
  absl::StatusOr<std::unique_ptr<ShareSet>> data = HoldJobData(&config);
  if (!data.ok()) return data.status();
  absl::StatusOr<std::unique_ptr<LocalStore>> store =
      LocalStore::Create(config.tables(), config.optimizer(), config.seed());
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer =
      Trainer::Create(config, &(*data)->table(), store->get());
  if (!trainer.ok()) return trainer.status();

  absl::StatusOr<RankingMetrics> popularity = PopularityBaseline(config, **data);
  if (!popularity.ok()) return popularity.status();
  if (popularity->ranked) PSREC_LOG(INFO) << "popularity baseline: " << RankingText(*popularity);

  const absl::Span<const uint32_t> test = (*data)->test_rows();
  std::vector<EpochRecord> records;
  std::vector<float> pred(test.size());
  uint64_t step = 0;
  for (uint32_t epoch = 0; epoch < config.epochs(); ++epoch) {
    const absl::Time start = absl::Now();
    const std::vector<uint32_t> order = EpochOrder((*data)->train_rows(), config.seed(), epoch);
    ProgressLog progress(epoch + 1, config.epochs(), order.size(), absl::Seconds(1));
    TrainHooks hooks;
    hooks.progress = [&](const TrainStats& so_far) { progress.Update(so_far); };
    absl::StatusOr<TrainStats> stats = (*trainer)->Train(order, step, hooks);
    if (!stats.ok()) return stats.status();
    step += stats->batches;
    EpochRecord record;
    record.epoch = epoch + 1;
    record.train_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    record.examples = stats->examples;
    record.train_loss = stats->mean_loss();
    if (absl::Status s = (*trainer)->Predict(test, absl::MakeSpan(pred)); !s.ok()) return s;
    record.test = ScoreRows((*data)->table(), test, pred).Metrics();
    absl::StatusOr<RankingMetrics> ranking =
        RankAfterEpoch(config, record.epoch, **data, store->get());
    if (!ranking.ok()) return ranking.status();
    record.ranking = *ranking;
    record.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (absl::Status s = FinishEpoch(record, config.epochs()); !s.ok()) return s;
    records.push_back(record);
    const ProcessReport self = SelfReport("train", "train");
    if (!metrics_out.empty()) {
      if (absl::Status s = WriteMetricsJson(metrics_out, config, records, {&self, 1}, *popularity);
          !s.ok()) {
        return s;
      }
    }
  }
  const ProcessReport self = SelfReport("train", "train");
  PSREC_LOG(INFO) << "processes of the job:\n" << ProcessTable({&self, 1});
  return records;
}

}  // namespace psrec

#include "app/local_job.h"

#include <memory>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/job_data.h"
#include "common/log.h"
#include "ps/local_store.h"
#include "worker/progress.h"
#include "worker/trainer.h"

namespace psrec {

absl::StatusOr<std::vector<EpochRecord>> RunLocalJob(JobConfig config,
                                                     const std::string& metrics_out) {
  absl::StatusOr<JobData> job = PrepareData(&config);
  if (!job.ok()) return job.status();
  PSREC_LOG(INFO) << job->data.path << ": " << job->data.ratings.size() << " ratings, "
                  << job->data.user_ids.size() << " users, " << job->data.item_ids.size()
                  << " items; " << EnumFlagName(config.split()) << " split "
                  << job->split.train.size() << " train / " << job->split.test.size() << " test";
  absl::StatusOr<std::unique_ptr<LocalStore>> store =
      LocalStore::Create(config.tables(), config.optimizer(), config.seed());
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer =
      Trainer::Create(config, &job->data, store->get());
  if (!trainer.ok()) return trainer.status();

  std::vector<EpochRecord> records;
  std::vector<float> pred(job->split.test.size());
  uint64_t step = 0;
  for (uint32_t epoch = 0; epoch < config.epochs(); ++epoch) {
    const absl::Time start = absl::Now();
    const std::vector<uint32_t> order = EpochOrder(job->split.train, config.seed(), epoch);
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
    if (absl::Status s = (*trainer)->Predict(job->split.test, absl::MakeSpan(pred)); !s.ok()) {
      return s;
    }
    record.test = Score(job->data, job->split.test, pred);
    record.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (absl::Status s = FinishEpoch(record, config.epochs()); !s.ok()) return s;
    records.push_back(record);
    if (!metrics_out.empty()) {
      if (absl::Status s = WriteMetricsJson(metrics_out, config, records); !s.ok()) return s;
    }
  }
  return records;
}

}  // namespace psrec

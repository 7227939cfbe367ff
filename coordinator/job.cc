#include "coordinator/job.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/log.h"
#include "coordinator/job_config.h"
#include "google/protobuf/util/json_util.h"
#include "ps/local_store.h"
#include "worker/progress.h"
#include "worker/trainer.h"

namespace psrec {

absl::Status FinishEpoch(const EpochRecord& record, uint32_t epochs) {
  const std::string line =
      absl::StrFormat("epoch %u/%u train loss %.4f  test MAE %.4f RMSE %.4f  %.0f ratings/s  %.2fs",
                      record.epoch, epochs, record.train_loss, record.test.mae, record.test.rmse,
                      static_cast<double>(record.examples) / record.train_seconds, record.seconds);
  PSREC_LOG(INFO) << line;
  if (!std::isfinite(record.train_loss) || !std::isfinite(record.test.mae) ||
      !std::isfinite(record.test.rmse)) {
    return absl::OutOfRangeError(
        absl::StrCat("training diverged at ", line, "; try a smaller --lr"));
  }
  return absl::OkStatus();
}

absl::Status WriteMetricsJson(const std::string& path, const JobConfig& config,
                              absl::Span<const EpochRecord> epochs) {
  std::string config_json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  if (auto s = google::protobuf::util::MessageToJsonString(config, &config_json, options);
      !s.ok()) {
    return absl::InternalError(absl::StrCat("config to JSON: ", s.ToString()));
  }
  std::string out = absl::StrCat("{\n  \"config\": ", config_json, ",\n  \"epochs\": [");
  for (size_t k = 0; k < epochs.size(); ++k) {
    const EpochRecord& e = epochs[k];
    absl::StrAppendFormat(&out,
                          "%s\n    {\"epoch\": %u, \"train_loss\": %.17g, \"test_mae\": %.17g, "
                          "\"test_rmse\": %.17g, \"seconds\": %.3f, \"train_seconds\": %.3f, "
                          "\"examples\": %u}",
                          k == 0 ? "" : ",", e.epoch, e.train_loss, e.test.mae, e.test.rmse,
                          e.seconds, e.train_seconds, e.examples);
  }
  out += "\n  ]";
  if (!epochs.empty()) {
    absl::StrAppendFormat(&out, ",\n  \"final\": {\"test_mae\": %.17g, \"test_rmse\": %.17g}",
                          epochs.back().test.mae, epochs.back().test.rmse);
  }
  out += "\n}\n";
  return WriteFileAtomically(path, out);
}

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
    absl::StatusOr<TrainStats> stats =
        (*trainer)->Train(order, step, [&](const TrainStats& so_far) { progress.Update(so_far); });
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

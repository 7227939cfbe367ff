#include "app/eval_main.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "app/checkpoint_scoring.h"
#include "app/local_job.h"
#include "app/metrics_flag.h"
#include "common/data_flags.h"
#include "common/files.h"
#include "common/job_config.h"
#include "common/job_data.h"
#include "common/job_report.h"
#include "common/log.h"
#include "google/protobuf/util/json_util.h"
#include "ps/local_store.h"
#include "worker/trainer.h"

// --data belongs to the job flags (coordinator/job_config.cc); eval reads it alone of them.
ABSL_DECLARE_FLAG(std::string, data);

ABSL_FLAG(std::string, checkpoint, "",
          "A checkpoint directory (holding a MANIFEST), or a --checkpoint_dir root, in which case "
          "its latest complete checkpoint is used.");

namespace psrec {
namespace {

struct Evaluation {
  std::string checkpoint;  // the directory read
  CheckpointManifest manifest;
  JobConfig config;  // the manifest's, with the data directory used
  TestMetrics test;
  RankingMetrics ranking, popularity;  // unranked when the config never ranks
};

absl::StatusOr<Evaluation> Evaluate(const std::string& checkpoint_flag) {
  absl::StatusOr<CheckpointSource> source =
      FindCheckpointSource(checkpoint_flag, absl::GetFlag(FLAGS_data));
  if (!source.ok()) return source.status();
  Evaluation eval;
  eval.checkpoint = source->dir;
  eval.manifest = source->manifest;
  // HoldJobData recomputes rating_offset from the data; LoadCheckpointRows then compares it with
  // the manifest's, so a different ratings file is refused rather than scored.
  absl::StatusOr<std::unique_ptr<ShareSet>> data = HoldJobData(&source->config);
  if (!data.ok()) return data.status();
  eval.config = source->config;
  absl::StatusOr<std::unique_ptr<LocalStore>> store = LoadCheckpointRows(*source);
  if (!store.ok()) return store.status();
  const absl::Span<const uint32_t> test = (*data)->test_rows();
  PSREC_LOG(INFO) << "loaded " << eval.checkpoint << " (" << eval.manifest.epochs_done()
                  << " epochs); evaluating " << test.size() << " test ratings of "
                  << (*data)->manifest().source().path();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer =
      Trainer::Create(eval.config, &(*data)->table(), store->get());
  if (!trainer.ok()) return trainer.status();
  std::vector<float> pred(test.size());
  if (absl::Status s = (*trainer)->Predict(test, absl::MakeSpan(pred)); !s.ok()) return s;
  eval.test = ScoreRows((*data)->table(), test, pred).Metrics();
  // As the last epoch of the run would: ranked unless the config never ranks.
  absl::StatusOr<RankingMetrics> ranking =
      RankAfterEpoch(eval.config, eval.config.epochs(), **data, store->get());
  if (!ranking.ok()) return ranking.status();
  eval.ranking = *ranking;
  absl::StatusOr<RankingMetrics> popularity = PopularityBaseline(eval.config, **data);
  if (!popularity.ok()) return popularity.status();
  eval.popularity = *popularity;
  return eval;
}

absl::Status WriteEvalJson(const std::string& path, const Evaluation& eval) {
  std::string config_json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  if (auto s = google::protobuf::util::MessageToJsonString(eval.config, &config_json, options);
      !s.ok()) {
    return absl::InternalError(absl::StrCat("config to JSON: ", s.ToString()));
  }
  std::string baseline;
  if (eval.popularity.ranked) {
    baseline = absl::StrFormat(
        "  \"baseline\": {\"popularity\": {\"recall_at_10\": %.17g, \"ndcg_at_10\": %.17g, "
        "\"coverage_at_10\": %.17g}},\n",
        eval.popularity.recall, eval.popularity.ndcg, eval.popularity.coverage);
  }
  std::string ranking;
  if (eval.ranking.ranked) {
    ranking = absl::StrFormat(
        ", \"recall_at_10\": %.17g, \"ndcg_at_10\": %.17g, \"coverage_at_10\": %.17g",
        eval.ranking.recall, eval.ranking.ndcg, eval.ranking.coverage);
  }
  const std::string out = absl::StrFormat(
      "{\n  \"checkpoint\": %s,\n  \"epochs_done\": %u,\n  \"config\": %s,\n%s"
      "  \"final\": {\"test_mae\": %.17g, \"test_rmse\": %.17g%s}\n}\n",
      JsonString(eval.checkpoint), eval.manifest.epochs_done(), config_json, baseline,
      eval.test.mae, eval.test.rmse, ranking);
  return WriteFileAtomically(path, out);
}

int RunEval(const std::set<std::string>& specified) {
  SetLogRole("eval");
  // The job flags are registered for --data alone: the rest of the config is the checkpoint's.
  for (const std::string& name : specified) {
    if (name != "checkpoint" && name != "data" && name != "metrics_out" && name != "shares_dir") {
      return Exit("eval", kExitUsage,
                  absl::StrCat("--", name,
                               " does not apply: the job's config comes from the checkpoint's "
                               "MANIFEST (flags: --checkpoint, --data, --shares_dir, "
                               "--metrics_out)"));
    }
  }
  const std::string checkpoint = absl::GetFlag(FLAGS_checkpoint);
  if (checkpoint.empty()) {
    return Exit("eval", kExitUsage, "--checkpoint=DIR is required; see psrec eval --help");
  }
  absl::StatusOr<Evaluation> eval = Evaluate(checkpoint);
  if (!eval.ok()) {
    return Exit("eval", kExitFailed, eval.status());
  }
  std::string ranking;
  if (eval->ranking.ranked) {
    ranking = absl::StrFormat(
        " recall_at_10=%.17g ndcg_at_10=%.17g coverage_at_10=%.17g popularity_recall_at_10=%.17g "
        "popularity_ndcg_at_10=%.17g",
        eval->ranking.recall, eval->ranking.ndcg, eval->ranking.coverage, eval->popularity.recall,
        eval->popularity.ndcg);
  }
  std::printf("checkpoint=%s epochs_done=%u test_mae=%.17g test_rmse=%.17g%s\n",
              eval->checkpoint.c_str(), eval->manifest.epochs_done(), eval->test.mae,
              eval->test.rmse, ranking.c_str());
  if (const std::string path = MetricsOutFlag(); !path.empty()) {
    if (absl::Status s = WriteEvalJson(path, *eval); !s.ok()) {
      return Exit("eval", kExitFailed, s);
    }
  }
  return 0;
}

}  // namespace

Subcommand EvalSubcommand() {
  return Subcommand{
      "eval",
      "report the test MAE, RMSE and ranking metrics of a saved checkpoint",
      "psrec eval --checkpoint=DIR [--data=DIR] [--metrics_out=FILE]\n\n"
      "Reads the checkpoint's MANIFEST (DIR, or the latest complete checkpoint under a\n"
      "--checkpoint_dir root), takes the job's config from it, reads and splits the ratings\n"
      "(--data, else the directory the manifest records, else the usual search; through their\n"
      "prepared shares, made first if needed, as psrec train does), loads every\n"
      "row after checking each file's size, crc32 and contents, and evaluates the test split.\n"
      "stdout gets one line: 'checkpoint=... epochs_done=N test_mae=... test_rmse=...', and\n"
      "unless the job's ranking_every is negative 'recall_at_10=... ndcg_at_10=...\n"
      "coverage_at_10=... popularity_recall_at_10=... popularity_ndcg_at_10=...' (over the\n"
      "whole catalogue, as the run's last epoch ranks).\n"
      "--metrics_out also writes them as JSON. Of the job flags listed below only --data\n"
      "applies. Exit 1: a missing, corrupt or mismatched checkpoint (the message names the\n"
      "file); exit 2: bad flags.",
      {JobFlagsFile(), DataFlagsFile(), MetricsFlagFile(), __FILE__},
      &RunEval,
  };
}

}  // namespace psrec

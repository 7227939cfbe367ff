// A checkpoint's test MAE and RMSE, overall and on the test ratings of movies with few training
// ratings (fewer than --max_train_ratings, default 10; movies never rated in training included),
// where a movie's own rows have learned little and side information such as genres should help
// most. Loads the checkpoint as `psrec recommend` does (the whole ratings file, split as the run
// split it) and predicts with the trainer, so the overall figures are `psrec eval`'s.
//
//   build/bench/few_ratings_eval --ckpt=DIR [--ratings_dir=DIR] [--max_train_ratings=10]
//
// stdout: one line per slice, "all ..." then "few ...", each with its ratings, MAE and RMSE.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "app/checkpoint_scoring.h"
#include "bench/bench_main.h"
#include "worker/trainer.h"

ABSL_FLAG(std::string, ckpt, "", "A checkpoint directory, or a --checkpoint_dir root.");
ABSL_FLAG(std::string, ratings_dir, "", "The ratings it was trained on; empty: the MANIFEST's.");
ABSL_FLAG(int32_t, max_train_ratings, 10,
          "The slice: test ratings of movies with fewer training ratings than this.");

namespace psrec {
namespace {

struct Errors {
  uint64_t n = 0;
  double abs = 0, sq = 0;
  void Add(float pred, float target) {
    const double e = static_cast<double>(pred) - static_cast<double>(target);
    ++n;
    abs += std::fabs(e);
    sq += e * e;
  }
  void Print(const char* name) const {
    const double d = n == 0 ? 1.0 : static_cast<double>(n);
    std::printf("%s ratings=%llu test_mae=%.4f test_rmse=%.4f\n", name,
                static_cast<unsigned long long>(n), abs / d, std::sqrt(sq / d));
  }
};

}  // namespace

int BenchMain() {
  absl::StatusOr<ScoringCheckpoint> ckpt =
      LoadScoringCheckpoint(absl::GetFlag(FLAGS_ckpt), absl::GetFlag(FLAGS_ratings_dir));
  if (!ckpt.ok()) {
    std::fprintf(stderr, "few_ratings_eval: %s\n", ckpt.status().ToString().c_str());
    return 1;
  }
  const Dataset& data = ckpt->job.data;
  const std::vector<uint32_t>& test = ckpt->job.split.test;
  absl::StatusOr<std::unique_ptr<Trainer>> trainer =
      Trainer::Create(ckpt->config, &data, ckpt->store.get());
  std::vector<float> pred(test.size());
  absl::Status s =
      trainer.ok() ? (*trainer)->Predict(test, absl::MakeSpan(pred)) : trainer.status();
  if (!s.ok()) {
    std::fprintf(stderr, "few_ratings_eval: %s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<uint32_t> train_counts(data.item_ids.size(), 0);
  for (const uint32_t row : ckpt->job.split.train) ++train_counts[data.ratings[row].item];
  const auto few = static_cast<uint32_t>(absl::GetFlag(FLAGS_max_train_ratings));
  Errors all, slice;
  for (size_t k = 0; k < test.size(); ++k) {
    const Rating& r = data.ratings[test[k]];
    all.Add(pred[k], r.rating);
    if (train_counts[r.item] < few) slice.Add(pred[k], r.rating);
  }
  std::printf("checkpoint=%s model=%s\n", ckpt->dir.c_str(),
              ModelKind_Name(ckpt->config.model()).c_str());
  all.Print("all");
  slice.Print("few");
  return 0;
}

}  // namespace psrec

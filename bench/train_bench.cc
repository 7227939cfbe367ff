// In-process training throughput, one thread: ratings/s for each model at the default batch size.
//
//   build/bench/train_bench [--data=DIR] [--epochs=N] [--batch_size=B]
//
// Trains on the random split of ml-latest-small (found as `psrec train` finds it) with psrec's
// default config, times only the training passes (no evaluation), and reports the best of
// `--repeats` runs of
// `--epochs` epochs, so a noisy neighbour costs a repeat rather than the figure.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/local_job.h"
#include "common/allocator.h"
#include "common/job_config.h"
#include "common/model.h"
#include "ps/local_store.h"
#include "worker/trainer.h"

ABSL_FLAG(int32_t, repeats, 3, "Timed runs per model; the best is reported.");

namespace psrec {
namespace {

absl::StatusOr<double> RatingsPerSecond(JobConfig config, const ShareSet& job) {
  double best = 0;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    auto store = LocalStore::Create(config.tables(), config.optimizer(), config.seed());
    if (!store.ok()) return store.status();
    auto trainer = Trainer::Create(config, &job.table(), store->get());
    if (!trainer.ok()) return trainer.status();
    uint64_t examples = 0, step = 0;
    const absl::Time start = absl::Now();
    for (uint32_t epoch = 0; epoch < config.epochs(); ++epoch) {
      auto stats = (*trainer)->Train(EpochOrder(job.train_rows(), config.seed(), epoch), step, {});
      if (!stats.ok()) return stats.status();
      examples += stats->examples;
      step += stats->batches;
    }
    best = std::max(best, examples / absl::ToDoubleSeconds(absl::Now() - start));
  }
  return best;
}

int Main(const std::set<std::string>& specified) {
  absl::StatusOr<JobConfig> base = JobConfigFromFlags(specified);
  if (!base.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", std::string(base.status().message()).c_str());
    return 2;
  }
  if (specified.count("split") == 0) base->set_split(RANDOM);
  if (specified.count("epochs") == 0) base->set_epochs(3);
  auto dir = FindDataDir(base->data_dir());
  if (!dir.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", std::string(dir.status().message()).c_str());
    return 1;
  }
  base->set_data_dir(*dir);
  auto job = HoldJobData(&*base);  // the shares, prepared first if need be
  if (!job.ok()) {
    std::fprintf(stderr, "train_bench: %s\n", std::string(job.status().message()).c_str());
    return 1;
  }
  std::printf(
      "in-process training, 1 thread, %s, %zu training ratings, batch %u, %u epochs, best of %d\n",
      dir->c_str(), (*job)->train_rows().size(), base->batch_size(), base->epochs(),
      absl::GetFlag(FLAGS_repeats));
  std::printf("%-6s %14s %12s\n", "model", "ratings/s", "vs bias");
  double bias_rate = 0;
  for (ModelKind model : {BIAS, DOT, MLP}) {
    JobConfig config = *base;
    config.set_model(model);
    FillTableSpecs(&config);
    auto rate = RatingsPerSecond(config, **job);
    if (!rate.ok()) {
      std::fprintf(stderr, "train_bench: %s\n", std::string(rate.status().message()).c_str());
      return 1;
    }
    if (model == BIAS) bias_rate = *rate;
    std::printf("%-6s %14.0f %11.2fx\n", EnumFlagName(model).c_str(), *rate, *rate / bias_rate);
  }
  return 0;
}

}  // namespace
}  // namespace psrec

int main(int argc, char** argv) {
  psrec::TuneAllocator();
  std::set<std::string> specified;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) specified.insert(arg.substr(2, arg.find('=') - 2));
  }
  absl::ParseCommandLine(argc, argv);
  return psrec::Main(specified);
}

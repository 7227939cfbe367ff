// psrec: one binary, one subcommand per role.
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "app/coordinator_main.h"
#include "app/eval_main.h"
#include "app/prepare_main.h"
#include "app/ps_main.h"
#include "app/recommend_main.h"
#include "app/synth_main.h"
#include "app/train_main.h"
#include "app/worker_main.h"
#include "common/allocator.h"
#include "common/cli.h"

int main(int argc, char** argv) {
  psrec::TuneAllocator();
#ifdef NDEBUG
  // Debian's abseil keeps its debug default of checking lock order on every Mutex acquisition (a
  // global graph, GraphCycles): about 2% of a server's CPU per batch (bench/RESULTS.md, "Where the
  // time goes"). Release builds skip it; Debug and sanitizer builds, which run the tests that
  // would catch an inversion, keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  const std::vector<psrec::Subcommand> subs = {
      psrec::TrainSubcommand(),       psrec::PsSubcommand(),       psrec::WorkerSubcommand(),
      psrec::CoordinatorSubcommand(), psrec::EvalSubcommand(),     psrec::PrepareSubcommand(),
      psrec::SynthSubcommand(),       psrec::RecommendSubcommand()};
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    psrec::PrintTopLevelHelp(subs);
    return argc < 2 ? 2 : 0;
  }
  for (const psrec::Subcommand& sub : subs) {
    if (std::strcmp(argv[1], sub.name) == 0) return psrec::RunSubcommand(sub, argc, argv);
  }
  std::fprintf(stderr, "psrec: unknown subcommand '%s'; see psrec --help\n", argv[1]);
  return 2;
}

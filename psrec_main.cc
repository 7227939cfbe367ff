// psrec: one binary, one subcommand per role.
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/cli.h"
#include "coordinator/coordinator_main.h"
#include "coordinator/eval_main.h"
#include "coordinator/synth_main.h"
#include "coordinator/train_main.h"
#include "ps/ps_main.h"
#include "worker/worker_main.h"

int main(int argc, char** argv) {
  const std::vector<psrec::Subcommand> subs = {
      psrec::TrainSubcommand(),       psrec::PsSubcommand(),   psrec::WorkerSubcommand(),
      psrec::CoordinatorSubcommand(), psrec::EvalSubcommand(), psrec::SynthSubcommand()};
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

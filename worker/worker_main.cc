#include "worker/worker_main.h"

#include <cstdio>

namespace psrec {
namespace {

int RunWorker(const std::set<std::string>&) {
  std::fprintf(stderr, "psrec worker: not implemented yet\n");
  return 1;
}

}  // namespace

Subcommand WorkerSubcommand() {
  return Subcommand{"worker", "(not implemented yet)", "", {__FILE__}, &RunWorker};
}

}  // namespace psrec

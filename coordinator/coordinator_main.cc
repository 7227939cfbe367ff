#include "coordinator/coordinator_main.h"

#include <cstdio>

namespace psrec {
namespace {

int RunCoordinator(const std::set<std::string>&) {
  std::fprintf(stderr, "psrec coordinator: not implemented yet\n");
  return 1;
}

}  // namespace

Subcommand CoordinatorSubcommand() {
  return Subcommand{"coordinator", "(not implemented yet)", "", {__FILE__}, &RunCoordinator};
}

}  // namespace psrec

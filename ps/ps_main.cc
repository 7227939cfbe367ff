#include "ps/ps_main.h"

#include <cstdio>

namespace psrec {
namespace {

int RunPs(const std::set<std::string>&) {
  std::fprintf(stderr, "psrec ps: not implemented yet\n");
  return 1;
}

}  // namespace

Subcommand PsSubcommand() {
  return Subcommand{"ps", "(not implemented yet)", "", {__FILE__}, &RunPs};
}

}  // namespace psrec

#include "bench/bench_main.h"

#include "absl/flags/parse.h"
#include "common/allocator.h"

int main(int argc, char** argv) {
  psrec::TuneAllocator();
  absl::ParseCommandLine(argc, argv);
  return psrec::BenchMain();
}

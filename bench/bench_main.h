// The main() of the benchmarks that need nothing but their flags: it parses the command line and
// returns what BenchMain returns. A benchmark links psrec_bench_main and defines BenchMain.
#ifndef PSREC_BENCH_BENCH_MAIN_H_
#define PSREC_BENCH_BENCH_MAIN_H_

namespace psrec {

// The benchmark, run after its flags are parsed; returns the process's exit code.
int BenchMain();

}  // namespace psrec

#endif  // PSREC_BENCH_BENCH_MAIN_H_

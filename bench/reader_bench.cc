// How fast the MovieLens reader turns a rating file into rows (common/movielens.h), one thread:
// the whole of ReadMovieLens (read and parse), and ParseRatings alone on text already in memory.
// MB/s counts the file's bytes, per second of wall time and per second of this thread's CPU time
// (the "per core" figure, which a busy machine disturbs less). Results go in bench/RESULTS.md.
//
//   build/bench/reader_bench --data=DIR [--repeats=3]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "bench/bench_main.h"
#include "common/movielens.h"

ABSL_FLAG(std::string, data, "", "A directory holding ratings.csv, ratings.dat or u.data.");
ABSL_FLAG(int, repeats, 3, "Runs of each measurement; the fastest is reported.");

namespace psrec {
namespace {

// Wall and thread CPU seconds of one measurement.
struct Timing {
  double wall = 1e30, cpu = 1e30;
};

class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(CpuSeconds()) {}
  // Keeps the fastest of the runs seen in `best`.
  void Stop(Timing* best) const {
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count();
    best->wall = std::min(best->wall, wall);
    best->cpu = std::min(best->cpu, CpuSeconds() - cpu_);
  }

 private:
  static double CpuSeconds() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

void Print(const char* what, const Timing& t, double mb, size_t ratings) {
  std::printf("%-30s wall %7.3f s %7.1f MB/s   cpu %7.3f s %7.1f MB/s %6.2fM ratings/s\n", what,
              t.wall, mb / t.wall, t.cpu, mb / t.cpu, static_cast<double>(ratings) / t.cpu / 1e6);
}

}  // namespace

int BenchMain() {
  const std::string dir = absl::GetFlag(FLAGS_data);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  if (dir.empty()) {
    std::fprintf(stderr, "reader_bench: --data=DIR is required\n");
    return 2;
  }
  Timing read_time, parse_time;
  Dataset data;
  for (int i = 0; i < repeats; ++i) {
    const Stopwatch watch;
    absl::StatusOr<Dataset> read = ReadMovieLens(dir);
    watch.Stop(&read_time);
    if (!read.ok()) {
      std::fprintf(stderr, "reader_bench: %s\n", std::string(read.status().message()).c_str());
      return 1;
    }
    data = *std::move(read);
  }
  std::ifstream in(data.path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  for (int i = 0; i < repeats; ++i) {
    const Stopwatch watch;
    absl::StatusOr<Dataset> parsed = ParseRatings(text, data.layout, data.path);
    watch.Stop(&parse_time);
    if (!parsed.ok() || parsed->ratings.size() != data.ratings.size()) {
      std::fprintf(stderr, "reader_bench: ParseRatings disagrees with ReadMovieLens\n");
      return 1;
    }
  }
  const double mb = static_cast<double>(text.size()) / 1e6;
  std::printf("%s: %.1f MB, %zu ratings, %zu users, %zu movies; best of %d\n", data.path.c_str(),
              mb, data.ratings.size(), data.user_ids.size(), data.item_ids.size(), repeats);
  Print("ReadMovieLens (read + parse)", read_time, mb, data.ratings.size());
  Print("ParseRatings (text in memory)", parse_time, mb, data.ratings.size());
  return 0;
}

}  // namespace psrec

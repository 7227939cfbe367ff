#include "app/synth_main.h"

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "app/users_flag.h"
#include "common/cli.h"
#include "synth/synth.h"

// --seed is the job's (coordinator/job_config.cc): one flag for every seed psrec takes.
ABSL_DECLARE_FLAG(uint64_t, seed);

ABSL_FLAG(std::string, out, "", "Directory to write into, created if missing. Required.");
ABSL_FLAG(int64_t, ratings, 1'000'000, "Number of ratings.");
ABSL_FLAG(int64_t, movies, 0,
          "Number of movies listed in movies.csv; the long tail leaves some unrated, and a user "
          "rates at most half of them. 0: 62,423 x sqrt(--ratings / 25M).");
ABSL_FLAG(std::string, layout, "",
          "csv (ratings.csv, with a header), dat (ratings.dat, '::') or tsv (u.data, tabs). "
          "Default: the --like release's, else csv.");
ABSL_FLAG(std::string, like, "",
          "A release whose published counts, layout, star grid and time span to copy: ml-100k, "
          "ml-1m, ml-10m, ml-20m, ml-25m or ml-32m. --ratings, --users, --movies and --layout "
          "given as well override it.");

namespace psrec {
namespace {

constexpr int kFailed = 1;
constexpr int kUsage = 2;

absl::StatusOr<Layout> LayoutFlag(const std::string& layout) {
  if (layout == "csv") return Layout::kCsv;
  if (layout == "dat") return Layout::kDat;
  if (layout == "tsv") return Layout::kUData;
  return absl::InvalidArgumentError(absl::StrCat("--layout=", layout, " is not csv, dat or tsv"));
}

// The options the flags ask for: --like's, with the counts and layout given beside it in their
// place. An error names the flag.
absl::StatusOr<SynthOptions> OptionsFromFlags(const std::set<std::string>& specified) {
  SynthOptions options;
  if (const std::string like = absl::GetFlag(FLAGS_like); !like.empty()) {
    absl::StatusOr<SynthOptions> preset = SynthPreset(like);
    if (!preset.ok()) return absl::InvalidArgumentError(preset.status().message());
    options = *preset;
  }
  auto wanted = [&](const char* name) { return options.like.empty() || specified.count(name); };
  if (wanted("ratings")) {
    const int64_t ratings = absl::GetFlag(FLAGS_ratings);
    if (absl::Status s = FlagAtLeast("ratings", ratings, 1); !s.ok()) return s;
    options.ratings = static_cast<uint64_t>(ratings);
  }
  if (wanted("users")) {
    absl::StatusOr<int64_t> users = UsersCountFlag();
    if (!users.ok()) return users.status();
    options.users = *users;
  }
  if (wanted("movies")) options.movies = absl::GetFlag(FLAGS_movies);
  if (const std::string layout = absl::GetFlag(FLAGS_layout); !layout.empty()) {
    absl::StatusOr<Layout> parsed = LayoutFlag(layout);
    if (!parsed.ok()) return parsed.status();
    options.layout = *parsed;
  }
  options.seed = absl::GetFlag(FLAGS_seed);
  options = WithDefaults(options);
  if (absl::Status s = ValidateSynthOptions(options); !s.ok()) return s;
  return options;
}

// Progress on stderr, at most every two seconds.
class Progress {
 public:
  Progress() : start_(Clock::now()), last_(start_) {}
  void operator()(uint64_t done, uint64_t total) {
    const Clock::time_point now = Clock::now();
    if (now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    const double rate = static_cast<double>(done) / Seconds();
    std::fprintf(stderr,
                 "synth: %llu / %llu ratings (%.0f%%), %.2fM ratings/s, about %.0f s left\n",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                 100.0 * done / total, rate / 1e6, (total - done) / rate);
  }
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_, last_;
};

int RunSynth(const std::set<std::string>& specified) {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "psrec synth: --out=DIR is required; see psrec synth --help\n");
    return kUsage;
  }
  absl::StatusOr<SynthOptions> options = OptionsFromFlags(specified);
  if (!options.ok()) {
    std::fprintf(stderr, "psrec synth: %s\n", std::string(options.status().message()).c_str());
    return kUsage;
  }
  Progress progress;
  absl::StatusOr<SynthSummary> done =
      WriteSynth(*options, out, [&](uint64_t n, uint64_t total) { progress(n, total); });
  if (!done.ok()) {
    std::fprintf(stderr, "psrec synth: %s\n", std::string(done.status().message()).c_str());
    return kFailed;
  }
  const double seconds = progress.Seconds();
  std::fprintf(stderr, "synth: wrote %s and movies.csv in %.1f s (%.2fM ratings/s)\n",
               done->ratings_path.c_str(), seconds, done->ratings / seconds / 1e6);
  std::printf(
      "out=%s ratings=%llu users=%lld movies=%lld movies_rated=%lld floor_mae=%.4f "
      "floor_rmse=%.4f\n",
      out.c_str(), static_cast<unsigned long long>(done->ratings),
      static_cast<long long>(done->users), static_cast<long long>(done->options.movies),
      static_cast<long long>(done->movies_rated), done->floor_mae, done->floor_rmse);
  return 0;
}

}  // namespace

Subcommand SynthSubcommand() {
  return Subcommand{
      "synth",
      "write a MovieLens-shaped rating set of any size, with its noise floor",
      "psrec synth --out=DIR [--like=ml-25m] [--ratings=N --users=U --movies=M] [--layout=csv]\n"
      "            [--seed=S]\n\n"
      "Writes DIR/ratings.csv (or ratings.dat, u.data), DIR/movies.csv and DIR/synth.json. The\n"
      "ratings come from a planted low-rank model with user and movie biases and Gaussian noise,\n"
      "on MovieLens's half-star grid (whole stars for ml-100k and ml-1m); every user has at least\n"
      "20, their counts and the movies' popularity are long-tailed, each (user, movie) pair "
      "occurs\n"
      "once, and each user's timestamps increase. synth.json holds the counts, the histogram and\n"
      "the noise floor: the MAE and RMSE of the best predictor that knows the planted model, the\n"
      "least error a trained model can expect. --seed keys every random draw: the same flags\n"
      "give the same bytes.\n"
      "Memory grows with users and movies, not ratings. Progress goes to stderr; stdout gets one\n"
      "line 'out=... ratings=... floor_mae=... floor_rmse=...'. Exit 1: an I/O error, or DIR\n"
      "holds a rating file the reader would take first; exit 2: bad flags.",
      {__FILE__, UsersFlagFile()},
      &RunSynth,
      {"seed"},
  };
}

}  // namespace psrec

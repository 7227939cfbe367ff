// A MovieLens-shaped rating generator (`psrec synth`): any number of ratings, up to a billion and
// beyond, written as a MovieLens release in one of the three layouts the reader knows, from a
// planted low-rank model whose noise floor is written beside the data.
//
// What it writes in DIR:
//   ratings.csv, ratings.dat or u.data   the ratings, users in id order, each user's in time order
//   movies.csv                           movieId,title,genres for every movie listed
//   synth.json                           the options, the model's constants, counts, the histogram
//                                        and the noise floor; written last, so its presence means
//                                        the set is complete
// Each file is written to NAME.tmp and renamed when whole: an interrupted run leaves NAME.tmp
// files behind, never a partial NAME.
//
// Shape: every user rates at least 20 movies, their counts long-tailed (20 plus a lognormal part);
// movie popularity is lognormal, so a few movies take a large share; each (user, movie) pair occurs
// once; a user's timestamps strictly increase, in sessions; movie ids are sparse and increasing;
// ratings are the planted score plus Gaussian noise, put on the star grid with whole stars more
// likely than half stars, as people rate.
//
// Determinism: every draw is a pure function of (seed, stream, index) through common/rng.h, so the
// same options give byte-identical files from the same binary, however the run is watched or
// interrupted. (A different libm could move a score across a rating boundary: exp, log and cos
// are the platform's.)
//
// Memory is O(users + movies), independent of the number of ratings: at its peak about 12 bytes
// per user and 70 per movie (bench/RESULTS.md).
#ifndef PSREC_SYNTH_SYNTH_H_
#define PSREC_SYNTH_SYNTH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/movielens.h"

namespace psrec {

struct SynthOptions {
  uint64_t ratings = 1'000'000;
  int64_t users = 0;   // 0: ratings / 154, about ml-25m's mean per user
  int64_t movies = 0;  // listed in movies.csv, rated or not. 0: 62,423 * sqrt(ratings / 25M)
  Layout layout = Layout::kCsv;
  uint64_t seed = 1;
  bool half_stars = true;  // false: whole stars 1..5 only, as in ml-100k and ml-1m
  // Every rating's timestamp lies in [first_timestamp, last_timestamp] (Unix seconds).
  int64_t first_timestamp = 789'609'600;   // 1995-01-09, the first day of MovieLens's ratings
  int64_t last_timestamp = 1'697'155'199;  // 2023-10-12, the last day of ml-32m's
  std::string like;                        // the preset these came from, if any
};

// The names SynthPreset accepts: ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m.
std::vector<std::string> SynthPresetNames();

// A release's published counts (ratings, users, movies; ../shared/data/README.md), its layout, its
// star grid and roughly its time span. NotFound for an unknown name.
absl::StatusOr<SynthOptions> SynthPreset(absl::string_view like);

// Fills users and movies left at 0 from the number of ratings.
SynthOptions WithDefaults(SynthOptions options);

// InvalidArgument naming the flag (--ratings, --users, --movies) when the options cannot be met:
// fewer than 20 ratings per user, more than a user can give (each rates at most half the movies
// listed), or sizes beyond the formats' 32-bit ids.
absl::Status ValidateSynthOptions(const SynthOptions& options);

// What a finished run wrote. The noise floor is measured over every rating written:
//   mae   the MAE of the best possible predictor that knows the planted model: the planted
//         (noiseless) score rounded onto the star grid by the same rule as the ratings, which is
//         the median of each rating's distribution;
//   rmse  the RMSE of the best possible predictor for squared error: each rating's expected
//         value given its planted score;
//   noiseless_mae, noiseless_rmse  the errors of the planted score itself, clamped to the grid's
//         range, unrounded.
// A trained model's test MAE (RMSE) cannot be expected to go below mae (rmse).
struct SynthSummary {
  SynthOptions options;  // with the defaults filled in
  std::string ratings_path;
  uint64_t ratings = 0;
  int64_t users = 0;
  int64_t movies_rated = 0;
  int64_t max_movie_id = 0;
  double rating_mean = 0;
  std::vector<uint64_t> histogram;  // per grid value, 0.5 (or 1) up to 5
  double floor_mae = 0, floor_rmse = 0, noiseless_mae = 0, noiseless_rmse = 0;
};

// Called between users with the ratings written so far and the total.
using SynthProgress = std::function<void(uint64_t done, uint64_t total)>;

// Generates the set into `dir` (created if missing). Fails with the path and the system's reason
// on I/O errors, and with FailedPrecondition if `dir` holds a rating file that the reader would
// take before the one asked for. Nothing is left under a final name unless it is whole.
absl::StatusOr<SynthSummary> WriteSynth(const SynthOptions& options, const std::string& dir,
                                        const SynthProgress& progress = nullptr);

}  // namespace psrec

#endif  // PSREC_SYNTH_SYNTH_H_

// The planted model behind `psrec synth` (common/synth.h): what each movie and user is, how a
// user's movies are drawn, and how a score becomes a star rating. Every draw is keyed by (seed,
// stream, index). Internal to the generator; exposed for its tests. Not thread-safe; every const
// method may be called from any thread.
#ifndef PSREC_SYNTH_SYNTH_MODEL_H_
#define PSREC_SYNTH_SYNTH_MODEL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/rng.h"

namespace psrec {
namespace synth {

// The model's constants, chosen so that a generated set looks like ml-latest-small's measured
// shape (rating mean 3.50, 4 the mode, about 30% half stars; median 71 ratings per user; the top
// 10% of movies holding 60% of the ratings). synth.json records them.
struct Shape {
  static constexpr int kRank = 8;
  static constexpr int kMinPerUser = 20;
  double global_mean = 3.37;
  double user_bias_sd = 0.30;
  double item_bias_sd = 0.25;
  // Biases lean left, as MovieLens's do (a few harsh users, a few bad films): each bias also
  // subtracts skew * (z^2 - 1) for a further standard normal z, which keeps its mean at 0.
  double user_bias_skew = 0.35;
  double item_bias_skew = 0.30;
  double popularity_bias = 0.12;  // added to an item's bias per sd of its log-popularity
  double factor_sd = 0.40;        // of each entry of a user's and a movie's factors
  double noise_sd = 0.60;
  double popularity_sigma = 1.8;   // sd of log-popularity
  double user_count_sigma = 1.45;  // log-sd of a user's ratings beyond the first 20
};

// The streams that key every draw: HashCombine(HashCombine(seed, stream), index).
enum Stream : uint64_t {
  kMovieStream = 1,
  kUserCountStream = 2,
  kUserStream = 3,
  kTimeStream = 4,
  kMovieIdStream = 5,
  kTitleStream = 6,
};
inline uint64_t Key(uint64_t seed, Stream stream, uint64_t index) {
  return HashCombine(HashCombine(seed, stream), index);
}

// Standard normal draws (Box-Muller, in pairs) from a sequential Rng.
class Normal {
 public:
  double Next(Rng* rng);

 private:
  bool has_spare_ = false;
  double spare_ = 0;
};

// A uniform double in (0, 1), never 0: safe to take the log of.
inline double OpenUnit(Rng* rng) {
  return (static_cast<double>(rng->Next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// The star grid and the rule that puts a noisy score on it. With half stars, a score goes to the
// nearest whole star when within kWholeStarReach of it and to the half star between otherwise, so
// whole stars are more common, as in MovieLens; scores beyond the ends go to the end values.
class StarScale {
 public:
  static constexpr double kWholeStarReach = 0.34;

  explicit StarScale(bool half_stars);
  int size() const { return static_cast<int>(values_.size()); }
  float value(int bin) const { return values_[bin]; }
  float min() const { return values_.front(); }
  float max() const { return values_.back(); }
  int Bin(double score) const;
  // The boundaries between bins: bin b holds scores in [threshold(b-1), threshold(b)).
  const std::vector<double>& thresholds() const { return thresholds_; }

 private:
  std::vector<float> values_;
  std::vector<double> thresholds_;
};

// E[value of Bin(s + noise)] for noise ~ N(0, noise_sd), tabulated over s and interpolated: the
// prediction with the least expected squared error for a pair whose planted score is s.
class ExpectedRating {
 public:
  ExpectedRating(const StarScale& scale, double noise_sd);
  double operator()(double score) const;

 private:
  static constexpr double kLow = -4, kHigh = 11, kStepsPerUnit = 512;
  std::vector<double> table_;
};

// Every movie's popularity, bias and factors, and a sampler of movies by popularity (Walker's
// alias method in integers: one 64-bit draw per sample).
class Movies {
 public:
  Movies(uint64_t seed, uint32_t count, const Shape& shape);
  uint32_t size() const { return static_cast<uint32_t>(bias_.size()); }
  // A movie index with probability proportional to its popularity.
  uint32_t Sample(Rng* rng) const;
  float bias(uint32_t movie) const { return bias_[movie]; }
  // Starts loading a movie's bias and factors into cache: a user's movies are known before their
  // ratings are written, and these loads, random over the catalogue, are what the writing waits on.
  void Prefetch(uint32_t movie) const {
    __builtin_prefetch(&bias_[movie]);
    __builtin_prefetch(factors(movie));
  }
  const float* factors(uint32_t movie) const { return &factors_[size_t{movie} * Shape::kRank]; }

 private:
  std::vector<uint32_t> threshold_;  // keep the drawn column when the low 32 bits fall below
  std::vector<uint32_t> alias_;
  std::vector<float> bias_;
  std::vector<float> factors_;  // kRank per movie
};

struct User {
  float bias = 0;
  std::array<float, Shape::kRank> factors{};
};

// The user's bias and factors, drawn first from `rng` (the user's stream).
User DrawUser(const Shape& shape, Normal* normal, Rng* rng);

// Ratings per user: kMinPerUser plus a lognormal share of the rest, each at most `cap`, summing to
// `total` exactly. Needs kMinPerUser * users <= total <= cap * users.
std::vector<uint32_t> UserCounts(uint64_t seed, uint32_t users, uint64_t total, uint32_t cap,
                                 const Shape& shape);

// Movie ids: increasing from 1, with gaps that widen along the catalogue, as MovieLens's do.
std::vector<uint32_t> MovieIds(uint64_t seed, uint32_t count);

}  // namespace synth
}  // namespace psrec

#endif  // PSREC_SYNTH_SYNTH_MODEL_H_

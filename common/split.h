// The three train/test splits: whole-data (SplitDataset, the reference), and the parts that let a
// process compute them on the shares it holds (common/share_set.h) and get exactly the same sets:
// user_time is per user, random per rating, and seed_time needs only one global number, found
// exactly by PercentileSearch from counts that each holder of ratings contributes.
#ifndef PSREC_COMMON_SPLIT_H_
#define PSREC_COMMON_SPLIT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/movielens.h"
#include "proto/config.pb.h"

namespace psrec {

struct SplitRows {
  std::vector<uint32_t> train;
  std::vector<uint32_t> test;
};

// q in [0, 100]; numpy.percentile's default ("linear") interpolation. `values` need not be sorted.
// Requires a non-empty span.
double Percentile(absl::Span<const int64_t> values, double q);

// Where numpy's linear percentile q of n values lies: between the order statistics of 0-based ranks
// `below` and `above`, at `gamma` of the way. Requires n > 0 and q in [0, 100].
struct PercentileRanks {
  uint64_t below = 0, above = 0;
  double gamma = 0;
};
PercentileRanks RanksOf(uint64_t n, double q);
// The value between order statistics a (rank below) and b (rank above), as numpy computes it.
double Interpolate(double a, double b, double gamma);

// RANDOM's rule for one rating: test when a hash of (seed, user id, movie id) falls below
// test_fraction, so each rating decides alone, wherever it is held.
bool RandomSplitIsTest(uint64_t seed, int64_t user_id, int64_t item_id, double test_fraction);

// SEED_TIME: train = timestamp < Percentile(all timestamps, 100 * (1 - test_fraction)); test = the
// rest. USER_TIME: for each user, ratings sorted by timestamp (ties keep file order); the first
//            floor((1 - test_fraction) * n) train, the rest test.
// RANDOM:    RandomSplitIsTest, rating by rating: about test_fraction of them, not exactly.
// Fails on an empty dataset, an unspecified split, or test_fraction outside (0, 1).
absl::StatusOr<SplitRows> SplitDataset(const Dataset& data, Split split, double test_fraction,
                                       uint64_t seed);

// OK when test_fraction is in (0, 1) and the split is one of the three; else INVALID_ARGUMENT.
absl::Status CheckSplitArguments(Split split, double test_fraction);

// floor((1 - fraction) * n) training ratings of a user with n, rounded as the decimal the user
// wrote means (0.2 * 5 is 1, not 1.0000000000000002).
uint64_t UserTrainCount(double test_fraction, uint64_t n);

// Counts of timestamps in `count` buckets of 2^shift values each, the first starting at `lo`:
// bucket i holds [lo + i * 2^shift, lo + (i + 1) * 2^shift).
struct TimeBuckets {
  int64_t lo = 0;
  uint32_t shift = 0;
  uint32_t count = 0;
};

// Adds the timestamps of `times` that fall in each of `ranges` to `counts`, which holds the
// ranges' buckets one range after another (sum of ranges[k].count entries).
void CountIntoBuckets(absl::Span<const int64_t> times, absl::Span<const TimeBuckets> ranges,
                      absl::Span<uint64_t> counts);

// Finds numpy's linear percentile q of n timestamps held in many places, exactly, with memory that
// does not grow with n: each round asks for bucket counts over the ranges of Query(), narrows each
// order statistic it needs to one bucket, and is done once the buckets are single values. With
// 65,536 buckets a range of 2^32 seconds takes two rounds, any int64 range at most four.
class PercentileSearch {
 public:
  static constexpr uint32_t kBuckets = 65536;

  // n > 0 timestamps, all within [min, max]; q in [0, 100].
  PercentileSearch(uint64_t n, double q, int64_t min, int64_t max);

  bool done() const;
  // The ranges whose bucket counts the next round needs. REQUIRES: !done().
  std::vector<TimeBuckets> Query() const;
  // The totals of every holder's CountIntoBuckets over Query(). INVALID_ARGUMENT when they do not
  // add up to the ratings the search was told of (a holder counted other data).
  absl::Status Add(absl::Span<const uint64_t> counts);
  // REQUIRES: done().
  double value() const;

 private:
  struct Target {
    uint64_t rank;  // within the range
    int64_t lo;     // the range: [lo, lo + last]
    uint64_t last;
    bool found = false;
  };
  static TimeBuckets Range(const Target& t);

  uint64_t n_;
  double gamma_;
  std::vector<Target> targets_;  // below, and above when it differs
};

}  // namespace psrec

#endif  // PSREC_COMMON_SPLIT_H_

// The data of a job, as every role sees it: the order each epoch visits the training rows in, the
// test metrics as exact sums, the mean training rating, and the whole job's data held in one
// process (the in-process trainer and `psrec eval`). Every process that holds the same shares with
// the same config computes the same rows, orders and sums, so none of it needs to travel.
#ifndef PSREC_COMMON_JOB_DATA_H_
#define PSREC_COMMON_JOB_DATA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/rating_table.h"
#include "common/share_set.h"
#include "proto/config.pb.h"

namespace psrec {

// The order in which epoch `epoch` (0-based) visits the training rows: a shuffle seeded by
// (seed, epoch), so any process can recompute it.
std::vector<uint32_t> EpochOrder(absl::Span<const uint32_t> train, uint64_t seed, uint32_t epoch);

struct TestMetrics {
  double mae = 0;
  double rmse = 0;
};

// Absolute and squared errors summed exactly, in fixed point: a prediction clipped to [0.5, 5] is a
// float whose difference from a half-star rating is a whole number of 2^-24, so |error| * 2^24 and
// its square are integers. Sums from any number of processes, added in any order, are the same
// bits, and so are the metrics.
class ErrorSums {
 public:
  // A prediction that is not finite is counted apart, and makes the metrics NaN.
  void Add(float prediction, float rating);
  void Merge(const ErrorSums& other);
  TestMetrics Metrics() const;

  // The wire form: count, |error| in units of 2^-24, error^2 in units of 2^-48 (high and low 64
  // bits), and the predictions that were not finite.
  uint64_t count() const { return count_; }
  uint64_t abs_units() const { return abs_; }
  uint64_t sq_units_hi() const { return static_cast<uint64_t>(sq_ >> 64); }
  uint64_t sq_units_lo() const { return static_cast<uint64_t>(sq_); }
  uint64_t non_finite() const { return non_finite_; }
  static ErrorSums FromWire(uint64_t count, uint64_t abs_units, uint64_t sq_hi, uint64_t sq_lo,
                            uint64_t non_finite);

 private:
  uint64_t count_ = 0;
  uint64_t abs_ = 0;
  unsigned __int128 sq_ = 0;
  uint64_t non_finite_ = 0;
};

// The errors of `pred` against the ratings of `rows` of `table`.
ErrorSums ScoreRows(const RatingTable& table, absl::Span<const uint32_t> rows,
                    absl::Span<const float> pred);

// Training ratings and their sum, over shares.
struct SplitTotals {
  uint64_t train = 0, test = 0;
  uint64_t train_half_stars = 0;
  void Add(const ShareSummary& s) {
    train += s.train;
    test += s.test;
    train_half_stars += s.train_half_stars;
  }
  // The mean training rating, as a float (the config's rating_offset).
  float MeanTrainRating() const;
};

// The search for SEED_TIME's threshold, the (1 - test_fraction) percentile of every timestamp of
// `manifest`'s ratings. REQUIRES: num_ratings > 0.
PercentileSearch SeedTimeSearch(const SharesManifest& manifest, double test_fraction);
// How many counts a round of the search over `query` returns.
size_t BucketCount(absl::Span<const TimeBuckets> query);

// INVALID_ARGUMENT naming `what` (the data) when the split leaves no training or no test ratings.
absl::Status CheckSplitTotals(const SplitTotals& totals, Split split, const std::string& what);

// The whole job's data in this process: the prepared shares in `shares_dir` (common/prepare.h),
// every one of them held and split as `config` says, and config->rating_offset set to the mean
// training rating. For SEED_TIME the threshold is found with PercentileSearch over the shares, as
// a distributed job finds it. Errors: ShareSet's, and CheckSplitTotals'.
absl::StatusOr<std::unique_ptr<ShareSet>> HoldAllShares(const std::string& shares_dir,
                                                        JobConfig* config);

}  // namespace psrec

#endif  // PSREC_COMMON_JOB_DATA_H_

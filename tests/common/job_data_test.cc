#include "common/job_data.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

TEST(EpochOrderTest, IsAPermutationThatDependsOnSeedAndEpoch) {
  std::vector<uint32_t> train = {3, 5, 8, 13, 21, 34, 55, 89};
  auto a = EpochOrder(train, 1, 0);
  EXPECT_EQ(a, EpochOrder(train, 1, 0));
  EXPECT_NE(a, EpochOrder(train, 1, 1));
  EXPECT_NE(a, EpochOrder(train, 2, 0));
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, train);
}

TEST(ErrorSumsTest, MaeAndRmse) {
  ErrorSums sums;
  sums.Add(3.0f, 4.0f);
  sums.Add(2.0f, 2.0f);
  sums.Add(3.0f, 5.0f);
  const TestMetrics m = sums.Metrics();
  EXPECT_DOUBLE_EQ(m.mae, 1.0);
  EXPECT_DOUBLE_EQ(m.rmse, std::sqrt(5.0 / 3.0));
}

// The point of exact sums: any split of the errors into parts, added in any order, gives the same
// bits; a running double sum does not.
TEST(ErrorSumsTest, AnyPartitionAndOrderGivesTheSameBits) {
  Rng rng(3);
  std::vector<std::pair<float, float>> errors;
  for (int i = 0; i < 20000; ++i) {
    const float pred = std::clamp(0.5f + 4.5f * rng.Unit() + 1e-3f * rng.Unit(), 0.5f, 5.0f);
    errors.emplace_back(pred, 0.5f * static_cast<float>(1 + rng.Below(10)));
  }
  ErrorSums whole;
  for (const auto& [p, r] : errors) whole.Add(p, r);
  for (int parts : {2, 3, 7}) {
    std::vector<ErrorSums> part(parts);
    for (size_t i = 0; i < errors.size(); ++i)
      part[rng.Below(parts)].Add(errors[i].first, errors[i].second);
    ErrorSums merged;
    for (int k = parts - 1; k >= 0; --k) merged.Merge(part[k]);
    EXPECT_EQ(merged.Metrics().mae, whole.Metrics().mae) << parts;
    EXPECT_EQ(merged.Metrics().rmse, whole.Metrics().rmse) << parts;
    // And through the wire form.
    const ErrorSums wire =
        ErrorSums::FromWire(merged.count(), merged.abs_units(), merged.sq_units_hi(),
                            merged.sq_units_lo(), merged.non_finite());
    EXPECT_EQ(wire.Metrics().rmse, whole.Metrics().rmse);
  }
  // Against a plain double sum: the same to rounding.
  double abs = 0, sq = 0;
  for (const auto& [p, r] : errors) {
    abs += std::fabs(static_cast<double>(p) - r);
    sq += (static_cast<double>(p) - r) * (static_cast<double>(p) - r);
  }
  EXPECT_NEAR(whole.Metrics().mae, abs / errors.size(), 1e-12);
  EXPECT_NEAR(whole.Metrics().rmse, std::sqrt(sq / errors.size()), 1e-12);
}

TEST(ErrorSumsTest, ANonFinitePredictionMakesTheMetricsNan) {
  ErrorSums sums;
  sums.Add(3.0f, 4.0f);
  sums.Add(NAN, 4.0f);
  EXPECT_TRUE(std::isnan(sums.Metrics().mae));
  EXPECT_TRUE(std::isnan(ErrorSums().Metrics().rmse));  // nothing scored
}

TEST(SplitTotalsTest, MeanTrainRatingIsTheSumOfTheRatingsOverTheirCount) {
  SplitTotals totals;
  totals.Add(ShareSummary{0, 2, 1, 7});  // 3.5 stars in two ratings
  totals.Add(ShareSummary{1, 1, 0, 10});
  EXPECT_EQ(totals.MeanTrainRating(), static_cast<float>(8.5 / 3));
  EXPECT_TRUE(CheckSplitTotals(totals, USER_TIME, "d").ok());
  totals.test = 0;
  const absl::Status empty = CheckSplitTotals(totals, USER_TIME, "data/ratings.csv");
  EXPECT_EQ(empty.message(),
            "data/ratings.csv: the user_time split leaves 3 training and 0 test ratings; both "
            "must be non-empty");
}

}  // namespace
}  // namespace psrec

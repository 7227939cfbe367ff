#include "common/job_data.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

TEST(ScoreTest, MaeAndRmse) {
  Dataset data;
  data.ratings = {{0, 0, 4.0f, 0}, {0, 1, 2.0f, 0}, {0, 2, 5.0f, 0}};
  const std::vector<uint32_t> rows = {0, 1, 2};
  const std::vector<float> pred = {3.0f, 2.0f, 3.0f};
  const TestMetrics m = Score(data, rows, pred);
  EXPECT_DOUBLE_EQ(m.mae, 1.0);
  EXPECT_DOUBLE_EQ(m.rmse, std::sqrt(5.0 / 3.0));
}

}  // namespace
}  // namespace psrec

#include "common/negative_sampler.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace psrec {
namespace {

std::vector<uint32_t> Draw(uint64_t seed, uint64_t step, uint64_t example, uint32_t items,
                           size_t n) {
  std::vector<uint32_t> out(n);
  SampleNegatives(seed, step, example, items, absl::MakeSpan(out));
  return out;
}

TEST(NegativeSamplerTest, IsAPureFunctionOfSeedStepAndExample) {
  EXPECT_EQ(Draw(1, 7, 3, 1000, 8), Draw(1, 7, 3, 1000, 8));
  EXPECT_NE(Draw(1, 7, 3, 1000, 8), Draw(2, 7, 3, 1000, 8));
  EXPECT_NE(Draw(1, 7, 3, 1000, 8), Draw(1, 8, 3, 1000, 8));
  EXPECT_NE(Draw(1, 7, 3, 1000, 8), Draw(1, 7, 4, 1000, 8));
  // More negatives extend the list: the first draws stay.
  const std::vector<uint32_t> two = Draw(1, 7, 3, 1000, 2);
  const std::vector<uint32_t> eight = Draw(1, 7, 3, 1000, 8);
  EXPECT_EQ(two, std::vector<uint32_t>(eight.begin(), eight.begin() + 2));
}

TEST(NegativeSamplerTest, DiffersFromTheDropoutStream) {
  // Dropout draws from Rng(HashCombine(HashCombine(seed, step), example)): the negatives must not
  // be the same bits, or a mask and a negative would move together.
  constexpr uint32_t kItems = 1u << 20;
  Rng dropout(HashCombine(HashCombine(1, 7), 3));
  EXPECT_NE(Draw(1, 7, 3, kItems, 1)[0], static_cast<uint32_t>(dropout.Below(kItems)));
}

TEST(NegativeSamplerTest, CoversTheCatalogueUniformly) {
  constexpr uint32_t kItems = 10;
  constexpr int kExamples = 20000;
  std::vector<int> counts(kItems, 0);
  for (int e = 0; e < kExamples; ++e) {
    for (const uint32_t item : Draw(5, 0, e, kItems, 5)) {
      ASSERT_LT(item, kItems);
      ++counts[item];
    }
  }
  // 10,000 expected per item; a standard deviation is about 95.
  for (uint32_t i = 0; i < kItems; ++i) EXPECT_NEAR(counts[i], 10000, 500) << "item " << i;
}

TEST(NegativeSamplerTest, OneItemCatalogue) {
  EXPECT_EQ(Draw(1, 2, 3, 1, 4), std::vector<uint32_t>(4, 0));
}

}  // namespace
}  // namespace psrec

// The trainer under the ranking loss: negatives are pulled and pushed through the same store as
// the positives, drawn as common/negative_sampler.h says, and the same seed trains the same rows.
#include "worker/trainer.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "common/model.h"
#include "common/negative_sampler.h"
#include "common/optimizer_config.h"
#include "gtest/gtest.h"
#include "ps/local_store.h"

namespace psrec {
namespace {

constexpr uint32_t kUsers = 3;
constexpr uint32_t kItems = 40;
constexpr uint32_t kRatedItems = 5;  // every user rates items 0 .. 4, and no other

Dataset SmallCatalogue() {
  Dataset data;
  for (uint32_t u = 0; u < kUsers; ++u) data.user_ids.push_back(10 + u);
  for (uint32_t i = 0; i < kItems; ++i) data.item_ids.push_back(100 + i);
  for (uint32_t u = 0; u < kUsers; ++u) {
    for (uint32_t i = 0; i < kRatedItems; ++i) data.ratings.push_back({u, i, 4.0f, 0});
  }
  return data;
}

JobConfig BprConfig(uint64_t seed) {
  JobConfig config;
  config.set_model(BIAS);
  config.set_loss(BPR);
  config.set_negatives(3);
  config.set_dim(4);
  config.set_dropout(0);
  config.set_init_scale(0.1f);
  config.set_batch_size(kUsers * kRatedItems);  // one batch: step 0
  config.set_seed(seed);
  config.mutable_optimizer()->set_kind(SGD);
  config.mutable_optimizer()->set_lr(0.5f);
  EXPECT_TRUE(ResolveOptimizerConfig(config.mutable_optimizer()).ok());
  FillTableSpecs(&config);
  return config;
}

// Trains one batch over every rating and returns every item's bias afterwards.
std::vector<float> ItemBiasesAfterOneBatch(const JobConfig& config) {
  const Dataset data = SmallCatalogue();
  absl::StatusOr<std::unique_ptr<LocalStore>> store =
      LocalStore::Create(config.tables(), config.optimizer(), config.seed());
  EXPECT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(config, &data, store->get());
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  std::vector<uint32_t> rows(data.ratings.size());
  std::iota(rows.begin(), rows.end(), 0);
  absl::StatusOr<TrainStats> stats = (*trainer)->Train(rows, /*first_step=*/0);
  EXPECT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->examples, rows.size()) << "negatives are not examples";
  EXPECT_GT(stats->mean_loss(), 0);
  std::vector<uint64_t> keys(data.item_ids.begin(), data.item_ids.end());
  std::vector<float> biases(kItems);
  const PullBlock block{kItemBiasTable, keys, absl::MakeSpan(biases)};
  EXPECT_TRUE((*store)->Pull(absl::MakeConstSpan(&block, 1)).ok());
  return biases;
}

// The unrated items that SampleNegatives draws for the batch.
std::set<uint32_t> SampledUnrated(const JobConfig& config) {
  std::set<uint32_t> out;
  std::vector<uint32_t> draws(config.negatives());
  for (uint32_t e = 0; e < kUsers * kRatedItems; ++e) {
    SampleNegatives(config.seed(), /*step=*/0, e, kItems, absl::MakeSpan(draws));
    for (const uint32_t item : draws) {
      if (item >= kRatedItems) out.insert(item);
    }
  }
  return out;
}

TEST(TrainerBprTest, PushesDownExactlyTheSampledNegatives) {
  const JobConfig config = BprConfig(1);
  const std::vector<float> biases = ItemBiasesAfterOneBatch(config);
  const std::set<uint32_t> sampled = SampledUnrated(config);
  ASSERT_FALSE(sampled.empty());
  ASSERT_LT(sampled.size(), kItems - kRatedItems) << "the test needs an item never drawn";
  // The item bias enters the score through a dense weight of either sign, so positives move one
  // way and negatives the other, whichever that is.
  ASSERT_NE(biases[0], 0.0f);
  for (uint32_t i = 0; i < kItems; ++i) {
    if (i < kRatedItems) {
      EXPECT_GT(biases[i] * biases[0], 0.0f) << "positive item " << i;
    } else if (sampled.count(i) > 0) {
      EXPECT_LT(biases[i] * biases[0], 0.0f) << "sampled item " << i;
    } else {
      EXPECT_EQ(biases[i], 0.0f) << "item " << i << " was never drawn";
    }
  }
}

TEST(TrainerBprTest, TheSeedDecidesTheNegatives) {
  const std::vector<float> a = ItemBiasesAfterOneBatch(BprConfig(1));
  EXPECT_EQ(a, ItemBiasesAfterOneBatch(BprConfig(1)));  // bitwise
  ASSERT_NE(SampledUnrated(BprConfig(1)), SampledUnrated(BprConfig(2)));
  EXPECT_NE(a, ItemBiasesAfterOneBatch(BprConfig(2)));
}

TEST(TrainerBprTest, RatingLossesDrawNoNegatives) {
  JobConfig config = BprConfig(1);
  config.set_loss(MSE);
  config.set_rating_offset(3.0f);
  const std::vector<float> biases = ItemBiasesAfterOneBatch(config);
  for (uint32_t i = kRatedItems; i < kItems; ++i) EXPECT_EQ(biases[i], 0.0f) << "item " << i;
}

}  // namespace
}  // namespace psrec

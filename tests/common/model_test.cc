#include "common/model.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "common/sharding.h"
#include "gtest/gtest.h"
#include "tests/common/gradient_check.h"

namespace psrec {
namespace {

// A small batch with repeated users and items, and parameters filled with random values, so that
// every code path (slot sharing, relu on both sides of zero) is exercised.
struct Fixture {
  JobConfig config;
  std::vector<uint32_t> user_slot = {0, 1, 0, 2, 1};
  std::vector<uint32_t> item_slot = {0, 0, 1, 2, 1};
  std::vector<float> rating = {4.0f, 2.5f, 5.0f, 0.5f, 3.0f};
  std::vector<float> user_emb, item_emb, user_bias, item_bias, dense;

  Fixture(ModelKind kind, Loss loss, float dropout) {
    config.set_model(kind);
    config.set_loss(loss);
    config.set_dim(4);
    config.set_hidden(3);
    config.set_dropout(dropout);
    config.set_rating_offset(3.0f);
    Rng rng(7);
    user_emb = testing_util::RandomValues(rng, 3 * 4, 1.0f);
    item_emb = testing_util::RandomValues(rng, 3 * 4, 1.0f);
    user_bias = testing_util::RandomValues(rng, 3, 0.5f);
    item_bias = testing_util::RandomValues(rng, 3, 0.5f);
    dense = testing_util::RandomValues(rng, Model::Create(config)->dense_rows().floats(), 0.8f);
    if (loss == BPR) {
      // Two negatives per example (ExampleBatch's layout), one of them the positive item itself
      // (example 4), and two examples rated below the positive threshold, which must not count.
      config.set_positive_min_rating(3.0f);
      user_slot.insert(user_slot.end(), {0, 1, 0, 2, 1, 0, 1, 0, 2, 1});
      item_slot.insert(item_slot.end(), {2, 1, 2, 0, 1, 1, 2, 0, 1, 2});
    }
  }
  ExampleBatch Batch() const { return ExampleBatch{user_slot, item_slot, rating, 3, 3}; }
  ParamView Params() const {
    return ParamView{user_emb.data(), item_emb.data(), user_bias.data(), item_bias.data(),
                     dense.data()};
  }
};

// Compares every analytic gradient with a central difference of the mean loss.
void CheckGradients(ModelKind kind, Loss loss, float dropout) {
  Fixture f(kind, loss, dropout);
  absl::StatusOr<Model> model = Model::Create(f.config);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> g_ue(f.user_emb.size()), g_ie(f.item_emb.size()), g_ub(3), g_ib(3),
      g_d(f.dense.size());
  const GradView grads{g_ue.data(), g_ie.data(), g_ub.data(), g_ib.data(), g_d.data()};
  constexpr uint64_t kDropoutSeed = 11;
  model->TrainStep(f.Batch(), f.Params(), kDropoutSeed, grads);

  std::vector<testing_util::CheckedParam> params = {{"user_emb", &f.user_emb, &g_ue},
                                                    {"item_emb", &f.item_emb, &g_ie},
                                                    {"dense", &f.dense, &g_d}};
  if (kind != DOT) {
    params.push_back({"user_bias", &f.user_bias, &g_ub});
    params.push_back({"item_bias", &f.item_bias, &g_ib});
  } else {
    // DOT ignores the bias tables entirely: their gradient stays as it was (zero here).
    for (float g : g_ub) EXPECT_EQ(g, 0.0f);
  }
  std::vector<float> s_ue(f.user_emb.size()), s_ie(f.item_emb.size()), s_ub(3), s_ib(3),
      s_d(f.dense.size());
  const GradView scratch{s_ue.data(), s_ie.data(), s_ub.data(), s_ib.data(), s_d.data()};
  const int checked = testing_util::ExpectGradientsMatch(
      params, [&] { return model->TrainStep(f.Batch(), f.Params(), kDropoutSeed, scratch); },
      absl::StrCat("model ", ModelKind_Name(kind), " loss ", Loss_Name(loss)));
  EXPECT_GT(checked, 20);
}

class GradientTest : public ::testing::TestWithParam<std::tuple<ModelKind, Loss>> {};

TEST_P(GradientTest, MatchesFiniteDifferences) {
  const auto [kind, loss] = GetParam();
  CheckGradients(kind, loss, /*dropout=*/0.0f);
}

TEST_P(GradientTest, MatchesFiniteDifferencesWithDropout) {
  const auto [kind, loss] = GetParam();
  CheckGradients(kind, loss, /*dropout=*/0.3f);
}

INSTANTIATE_TEST_SUITE_P(AllModelsAndLosses, GradientTest,
                         ::testing::Combine(::testing::Values(DOT, BIAS, MLP),
                                            ::testing::Values(MAE, MSE, HUBER, BPR)));

TEST(ModelTest, PredictClipsToRatingRange) {
  Fixture f(BIAS, MAE, 0);
  f.config.set_rating_offset(100.0f);
  absl::StatusOr<Model> model = Model::Create(f.config);
  ASSERT_TRUE(model.ok());
  std::vector<float> out(5);
  model->Predict(f.Batch(), f.Params(), absl::MakeSpan(out));
  for (float p : out) EXPECT_EQ(p, 5.0f);
  f.config.set_rating_offset(-100.0f);
  model = Model::Create(f.config);
  model->Predict(f.Batch(), f.Params(), absl::MakeSpan(out));
  for (float p : out) EXPECT_EQ(p, 0.5f);
}

TEST(ModelTest, LossValuesAndGradients) {
  EXPECT_FLOAT_EQ(LossValue(MAE, 3.0f, 4.5f), 1.5f);
  EXPECT_FLOAT_EQ(LossGrad(MAE, 3.0f, 4.5f), -1.0f);
  EXPECT_FLOAT_EQ(LossGrad(MAE, 4.5f, 4.5f), 0.0f);
  EXPECT_FLOAT_EQ(LossValue(MSE, 3.0f, 4.5f), 2.25f);
  EXPECT_FLOAT_EQ(LossGrad(MSE, 3.0f, 4.5f), -3.0f);
  EXPECT_FLOAT_EQ(LossValue(HUBER, 3.0f, 3.5f), 0.125f);
  EXPECT_FLOAT_EQ(LossGrad(HUBER, 3.0f, 3.5f), -0.5f);
  EXPECT_FLOAT_EQ(LossValue(HUBER, 1.0f, 4.0f), 2.5f);
  EXPECT_FLOAT_EQ(LossGrad(HUBER, 1.0f, 4.0f), -1.0f);
}

TEST(ModelTest, BprLossIsSoftplusOfTheNegativeMargin) {
  EXPECT_FLOAT_EQ(LossValue(BPR, 1.0f, 1.0f), std::log(2.0f));
  EXPECT_FLOAT_EQ(LossGrad(BPR, 1.0f, 1.0f), -0.5f);
  EXPECT_FLOAT_EQ(LossValue(BPR, 2.0f, 0.0f), std::log1p(std::exp(-2.0f)));
  EXPECT_FLOAT_EQ(LossGrad(BPR, 2.0f, 0.0f), -1.0f / (1.0f + std::exp(2.0f)));
  // No overflow far from zero.
  EXPECT_FLOAT_EQ(LossValue(BPR, 0.0f, 200.0f), 200.0f);
  EXPECT_FLOAT_EQ(LossGrad(BPR, 0.0f, 200.0f), -1.0f);
  EXPECT_EQ(LossValue(BPR, 200.0f, 0.0f), 0.0f);
  EXPECT_EQ(LossGrad(BPR, 200.0f, 0.0f), -0.0f);
}

TEST(ModelTest, BprWithoutPositivesHasNoLossAndNoGradient) {
  for (const ModelKind kind : {DOT, BIAS, MLP}) {
    Fixture f(kind, BPR, 0.3f);
    f.config.set_positive_min_rating(5.5f);  // above every rating: no positive
    absl::StatusOr<Model> model = Model::Create(f.config);
    ASSERT_TRUE(model.ok()) << model.status();
    std::vector<float> g_ue(f.user_emb.size(), 1), g_ie(f.item_emb.size(), 1), g_ub(3, 1),
        g_ib(3, 1), g_d(f.dense.size(), 1);
    const GradView grads{g_ue.data(), g_ie.data(), g_ub.data(), g_ib.data(), g_d.data()};
    EXPECT_EQ(model->TrainStep(f.Batch(), f.Params(), 1, grads), 0.0f);
    for (const auto* g : {&g_ue, &g_ie, &g_d}) {
      for (const float x : *g) EXPECT_EQ(x, 0.0f) << ModelKind_Name(kind);
    }
  }
}

TEST(ModelTest, BprMovesTheHeadBiasNot) {
  // The dense head's bias adds to both scores of a pair, so its gradient cancels.
  Fixture f(BIAS, BPR, 0);
  absl::StatusOr<Model> model = Model::Create(f.config);
  ASSERT_TRUE(model.ok());
  std::vector<float> g_ue(f.user_emb.size()), g_ie(f.item_emb.size()), g_ub(3), g_ib(3),
      g_d(f.dense.size());
  const GradView grads{g_ue.data(), g_ie.data(), g_ub.data(), g_ib.data(), g_d.data()};
  EXPECT_GT(model->TrainStep(f.Batch(), f.Params(), 1, grads), 0.0f);
  EXPECT_NEAR(g_d.back(), 0.0f, 1e-6f);
  // A user's bias adds to both scores too.
  for (const float g : g_ub) EXPECT_NEAR(g, 0.0f, 1e-6f);
}

TEST(ModelTest, CreateRejectsBadConfigs) {
  JobConfig config;
  config.set_model(BIAS);
  config.set_loss(MAE);
  config.set_dim(0);
  EXPECT_FALSE(Model::Create(config).ok());
  config.set_dim(4);
  EXPECT_TRUE(Model::Create(config).ok());
  config.set_model(MLP);
  EXPECT_FALSE(Model::Create(config).ok()) << "mlp without hidden units";
  config.set_hidden(2);
  config.set_dropout(1.0f);
  EXPECT_FALSE(Model::Create(config).ok());
  config.set_dropout(0);
  config.set_loss(LOSS_UNSPECIFIED);
  EXPECT_FALSE(Model::Create(config).ok());
}

TEST(ModelTest, TableSpecsMatchTheModel) {
  JobConfig config;
  config.set_model(MLP);
  config.set_dim(8);
  config.set_hidden(5);
  FillTableSpecs(&config);
  ASSERT_EQ(config.tables_size(), 5);
  EXPECT_EQ(config.tables(kUserEmbeddingTable).width(), 8u);
  EXPECT_EQ(config.tables(kItemBiasTable).width(), 1u);
  config.set_loss(MAE);
  EXPECT_EQ(config.tables(kDenseTable).width(), Model::Create(config)->dense_width());
  EXPECT_EQ(Model::Create(config)->dense_width(), 5u * 10 + 2 * 5 + 1);
}

// A dense part of at most kDenseRowFloats floats is the one row kDenseKey, as it always was (so
// every figure and checkpoint of the small models holds); a larger one is rows of equal width whose
// keys are distinct and start with kDenseKey, with less than 4 floats of padding per row.
TEST(ModelTest, SplitDenseKeepsSmallRowsAndCutsLargeOnesEvenly) {
  for (const uint32_t width : {2u, 33u, 341u, kDenseRowFloats}) {
    const DenseRows rows = SplitDense(width);
    EXPECT_EQ(rows.width, width);
    EXPECT_EQ(rows.keys, std::vector<uint64_t>{kDenseKey});
  }
  for (const uint32_t width : {kDenseRowFloats + 1, 17409u, 1000000u}) {
    const DenseRows rows = SplitDense(width);
    const size_t n = (width + kDenseRowFloats - 1) / kDenseRowFloats;
    ASSERT_EQ(rows.keys.size(), n) << width;
    EXPECT_LE(rows.width, kDenseRowFloats);
    EXPECT_EQ(rows.width % 4, 0u);
    EXPECT_GE(rows.floats(), width);
    EXPECT_LT(rows.floats() - width, 4 * n) << width;
    EXPECT_EQ(rows.keys[0], kDenseKey);
    EXPECT_EQ(absl::flat_hash_set<uint64_t>(rows.keys.begin(), rows.keys.end()).size(), n);
  }
  EXPECT_EQ(SplitDense(17409).width, 500u);  // --hidden=512 at dim 30: 35 rows
}

// The weights (not the padding) each shard holds, over the mean: 1 is a perfect spread.
double DenseMaxOverMean(const DenseRows& rows, uint32_t width, uint32_t shards) {
  std::vector<size_t> floats(shards, 0);
  for (size_t j = 0; j < rows.keys.size(); ++j) {
    const size_t begin = j * rows.width;
    floats[ShardOf(kDenseTable, rows.keys[j], shards)] +=
        std::min<size_t>(rows.width, width - std::min<size_t>(begin, width));
  }
  return static_cast<double>(*std::max_element(floats.begin(), floats.end())) * shards / width;
}

// The rows go round-robin over any shard count dividing kDenseSpread: at --hidden=512 (35 rows) the
// row counts of any two shards of 2, 3, 4 or 8 differ by one at most, and no shard of 2 or 4 holds
// more than 1.04 times its share of the weights. Hashing the keys 0..34 instead would put 6, 14, 5
// and 10 rows on 4 shards (1.6 times the mean), 11 and 24 on 2.
TEST(ModelTest, SplitDenseSpreadsTheRowsOverTheShards) {
  for (const uint32_t hidden : {16u, 64u, 512u, 1024u}) {
    const uint32_t width = hidden * 32 + 2 * hidden + 1;  // mlp at dim 30
    const DenseRows rows = SplitDense(width);
    for (const uint32_t shards : {1u, 2u, 3u, 4u, 8u}) {
      std::vector<size_t> held(shards, 0);
      for (const uint64_t key : rows.keys) ++held[ShardOf(kDenseTable, key, shards)];
      const auto [least, most] = std::minmax_element(held.begin(), held.end());
      EXPECT_LE(*most - *least, 1u) << "hidden " << hidden << ", " << shards << " shards";
    }
  }
  const DenseRows rows = SplitDense(17409);
  for (const uint32_t shards : {1u, 2u, 4u}) {
    EXPECT_LE(DenseMaxOverMean(rows, 17409, shards), 1.04) << shards << " shards";
  }
}

// TrainStep's dense gradients cover the padding too, with zeros, so that a push of every row moves
// no padding by its gradient.
TEST(ModelTest, TrainStepZeroesTheDensePadding) {
  Fixture f(MLP, MAE, 0.0f);
  f.config.set_hidden(100);  // at dim 4: 100 * 6 + 201 = 801 weights, 2 rows of 404
  absl::StatusOr<Model> model = Model::Create(f.config);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->dense_rows().floats(), model->dense_width() + 7u);
  f.dense.assign(model->dense_rows().floats(), 0.1f);
  std::vector<float> g_ue(f.user_emb.size()), g_ie(f.item_emb.size()), g_ub(3), g_ib(3),
      g_d(f.dense.size(), 7.0f);
  model->TrainStep(f.Batch(), f.Params(), 1,
                   {g_ue.data(), g_ie.data(), g_ub.data(), g_ib.data(), g_d.data()});
  EXPECT_EQ(g_d.back(), 0.0f);
  EXPECT_NE(g_d[model->dense_width() - 1], 7.0f);  // the head's bias, the last weight
}

}  // namespace
}  // namespace psrec

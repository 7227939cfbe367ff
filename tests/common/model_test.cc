#include "common/model.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
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
    dense = testing_util::RandomValues(rng, Model::Create(config)->dense_width(), 0.8f);
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

}  // namespace
}  // namespace psrec

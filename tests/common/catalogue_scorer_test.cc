// The batched catalogue score of every model must be Model::Predict's prediction: bit for bit for
// the same batch, and to float rounding for the same pairs batched otherwise.
#include "common/catalogue_scorer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/model.h"
#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kDim = 7;
constexpr uint32_t kItems = 1003;  // not a multiple of any kernel's block

JobConfig Config(ModelKind kind, float offset) {
  JobConfig config;
  config.set_model(kind);
  config.set_loss(MAE);
  config.set_dim(kDim);
  config.set_hidden(5);
  config.set_dropout(0.5f);  // Predict uses no dropout; neither may the scorer
  config.set_rating_offset(offset);
  return config;
}

std::vector<float> Random(size_t n, Rng& rng, float scale) {
  std::vector<float> v(n);
  for (float& x : v) x = (rng.Unit() * 2 - 1) * scale;
  return v;
}

struct Rows {
  std::vector<float> users;      // kUsers x kDim
  std::vector<float> user_bias;  // kUsers
  CatalogueRows catalogue;
};

constexpr uint32_t kUsers = 3;

Rows MakeRows(const Model& model, uint64_t seed) {
  Rng rng(seed);
  Rows rows;
  rows.users = Random(size_t{kUsers} * kDim, rng, 1.5f);
  rows.user_bias = Random(kUsers, rng, 0.5f);
  rows.catalogue.item_emb = Random(size_t{kItems} * kDim, rng, 1.5f);
  rows.catalogue.item_bias = Random(kItems, rng, 0.5f);
  rows.catalogue.dense = Random(model.dense_rows().floats(), rng, 0.8f);
  return rows;
}

// Model::Predict for user `u` against items[e] for each e.
std::vector<float> Predict(Model& model, const Rows& rows, uint32_t u,
                           const std::vector<uint32_t>& items) {
  std::vector<uint32_t> user_slot(items.size(), u);
  ExampleBatch batch{user_slot, items, {}, kUsers, kItems};
  ParamView params{rows.users.data(), rows.catalogue.item_emb.data(), rows.user_bias.data(),
                   rows.catalogue.item_bias.data(), rows.catalogue.dense.data()};
  std::vector<float> out(items.size());
  model.Predict(batch, params, absl::MakeSpan(out));
  return out;
}

class CatalogueScorerTest : public ::testing::TestWithParam<ModelKind> {};

TEST_P(CatalogueScorerTest, ScoresArePredictsPredictions) {
  for (const float offset : {3.5f, 6.0f}) {  // 6: every prediction clips at 5; scores do not
    const JobConfig config = Config(GetParam(), offset);
    absl::StatusOr<Model> model = Model::Create(config);
    ASSERT_TRUE(model.ok()) << model.status();
    const Rows rows = MakeRows(*model, 7 + GetParam());
    absl::StatusOr<CatalogueScorer> scorer = CatalogueScorer::Create(config, rows.catalogue);
    ASSERT_TRUE(scorer.ok()) << scorer.status();
    ASSERT_EQ(scorer->size(), kItems);
    std::vector<uint32_t> all(kItems), scattered;
    for (uint32_t i = 0; i < kItems; ++i) all[i] = i;
    for (uint32_t i = 0; i < kItems; i += 37) scattered.push_back((i * 101) % kItems);
    std::vector<float> scores(kItems);
    for (uint32_t u = 0; u < kUsers; ++u) {
      const absl::Span<const float> user = absl::MakeConstSpan(rows.users).subspan(u * kDim, kDim);
      ASSERT_TRUE(scorer->Score(user, rows.user_bias[u], absl::MakeSpan(scores)).ok());
      const std::vector<float> same_batch = Predict(*model, rows, u, all);
      for (uint32_t i = 0; i < kItems; ++i) {
        ASSERT_EQ(ClipRating(scores[i]), same_batch[i]) << "user " << u << " item " << i;
      }
      const std::vector<float> other_batch = Predict(*model, rows, u, scattered);
      for (size_t e = 0; e < scattered.size(); ++e) {
        EXPECT_NEAR(ClipRating(scores[scattered[e]]), other_batch[e], 1e-5f);
      }
      if (offset > 5) {
        // Predict clips these to 5, but the scores stay apart, so a ranking can order them.
        std::vector<float> above;
        for (const float x : scores) {
          if (x > 5.0f) above.push_back(x);
        }
        ASSERT_GE(above.size(), 2u);
        EXPECT_LT(*std::min_element(above.begin(), above.end()),
                  *std::max_element(above.begin(), above.end()));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CatalogueScorerTest, ::testing::Values(DOT, BIAS, MLP),
                         [](const auto& info) { return ModelKind_Name(info.param); });

TEST(CatalogueScorerErrorsTest, SizesAreChecked) {
  const JobConfig config = Config(BIAS, 3.5f);
  CatalogueRows rows;
  rows.item_emb.assign(2 * kDim, 0.1f);
  rows.item_bias.assign(3, 0.0f);
  rows.dense.assign(kDim + 3, 0.1f);
  EXPECT_THAT(std::string(CatalogueScorer::Create(config, rows).status().message()),
              HasSubstr("do not fit"));
  rows.item_bias.assign(2, 0.0f);
  absl::StatusOr<CatalogueScorer> scorer = CatalogueScorer::Create(config, rows);
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  std::vector<float> user(kDim, 1.0f), scores(2);
  EXPECT_TRUE(scorer->Score(user, 0, absl::MakeSpan(scores)).ok());
  std::vector<float> short_scores(1);
  EXPECT_FALSE(scorer->Score(user, 0, absl::MakeSpan(short_scores)).ok());
  EXPECT_FALSE(scorer->Score(absl::MakeConstSpan(user).first(3), 0, absl::MakeSpan(scores)).ok());
  JobConfig no_model = config;
  no_model.set_model(MODEL_UNSPECIFIED);
  EXPECT_FALSE(CatalogueScorer::Create(no_model, rows).ok());
}

}  // namespace
}  // namespace psrec

// The recommender in this process over planted rows (tests/app/recommend_test_util.h): it leaves
// out training items, reports Model::Predict's ratings, and falls back to popular movies.
#include "app/recommender.h"

#include <filesystem>
#include <vector>

#include "common/genres.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/app/recommend_test_util.h"
#include "tests/test_util.h"
#include "worker/trainer.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace testing_util;  // NOLINT(google-build-using-namespace): the tests' own helpers

std::vector<int64_t> Ids(const Recommendation& rec) {
  std::vector<int64_t> ids;
  for (const Recommendation::Entry& e : rec.entries) ids.push_back(e.movie_id);
  return ids;
}

class RecommenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path dir = FreshDir("recommender");
    WritePlantedRatings(dir);
    WritePlantedMoviesCsv(dir);
    planted_ = MakePlantedJob(dir);
    absl::StatusOr<MovieCatalog> movies = ReadMovies(dir.string());
    ASSERT_TRUE(movies.ok()) << movies.status();
    movies_ = *std::move(movies);
  }

  std::unique_ptr<Recommender> Make(int k, MovieCatalog movies) {
    auto r = Recommender::Create(planted_.config, planted_.job.data, planted_.job.split,
                                 planted_.store.get(), std::move(movies), k);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }

  PlantedJob planted_;
  MovieCatalog movies_;
};

TEST_F(RecommenderTest, ExcludesTrainingItemsAndReportsPredictsRatings) {
  std::unique_ptr<Recommender> r = Make(3, movies_);
  ASSERT_NE(r, nullptr);
  absl::StatusOr<Recommendation> rec = r->Recommend(1);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->fallback, "");
  // 19 and 18 score highest but user 1 rated them in training.
  EXPECT_THAT(Ids(*rec), ElementsAre(17, 16, 15));
  ASSERT_NE(rec->entries[0].movie, nullptr);
  EXPECT_EQ(rec->entries[0].movie->title, "American President, The (1995)");
  // The predicted rating of each pair is Model::Predict's, given the same rows.
  absl::StatusOr<Model> model = Model::Create(planted_.config);
  ASSERT_TRUE(model.ok());
  const uint32_t dim = planted_.config.dim();
  std::vector<uint64_t> user_key = {1}, item_keys;
  for (const auto& e : rec->entries) item_keys.push_back(static_cast<uint64_t>(e.movie_id));
  std::vector<float> user_emb(dim), user_bias(1), item_emb(3 * dim), item_bias(3),
      dense(model->dense_rows().floats());
  const PullBlock blocks[] = {{kUserEmbeddingTable, user_key, absl::MakeSpan(user_emb)},
                              {kUserBiasTable, user_key, absl::MakeSpan(user_bias)},
                              {kItemEmbeddingTable, item_keys, absl::MakeSpan(item_emb)},
                              {kItemBiasTable, item_keys, absl::MakeSpan(item_bias)},
                              {kDenseTable, model->dense_rows().keys, absl::MakeSpan(dense)}};
  ASSERT_TRUE(planted_.store->Pull(blocks).ok());
  const std::vector<uint32_t> user_slot = {0, 0, 0}, item_slot = {0, 1, 2};
  std::vector<float> predicted(3);
  model->Predict(
      {user_slot, item_slot, {}, 1, 3},
      {user_emb.data(), item_emb.data(), user_bias.data(), item_bias.data(), dense.data()},
      absl::MakeSpan(predicted));
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(rec->entries[e].predicted, predicted[e], 1e-6f) << "entry " << e;
    EXPECT_EQ(rec->entries[e].predicted, ClipRating(rec->entries[e].score));
  }
}

TEST_F(RecommenderTest, EveryUserRankingLeavesOutTheirTrainingItems) {
  std::unique_ptr<Recommender> r = Make(10, movies_);
  ASSERT_NE(r, nullptr);
  const RankingData ranking = MakeRankingData(planted_.job.data, planted_.job.split);
  for (uint32_t u = 0; u < planted_.job.data.user_ids.size(); ++u) {
    const absl::Span<const uint32_t> train = ranking.train.of(u);
    if (train.empty()) continue;
    absl::StatusOr<Recommendation> rec = r->Recommend(planted_.job.data.user_ids[u]);
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->entries.size(), r->catalogue_size() - train.size())
        << "k=10 covers the whole catalogue less the user's training items";
    for (const auto& e : rec->entries) {
      EXPECT_FALSE(std::binary_search(train.begin(), train.end(), e.item))
          << "user " << planted_.job.data.user_ids[u] << " rated movie " << e.movie_id;
    }
  }
}

TEST_F(RecommenderTest, UsersWithoutTrainingRatingsGetPopularMovies) {
  std::unique_ptr<Recommender> r = Make(3, movies_);
  ASSERT_NE(r, nullptr);
  absl::StatusOr<Recommendation> unknown = r->Recommend(999);
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_THAT(unknown->fallback, HasSubstr("user 999 is not in the ratings file"));
  EXPECT_THAT(Ids(*unknown), ElementsAre(19, 10, 11));
  absl::StatusOr<Recommendation> cold = r->Recommend(3);
  ASSERT_TRUE(cold.ok()) << cold.status();
  EXPECT_THAT(cold->fallback, HasSubstr("user 3 has no training rating"));
  EXPECT_THAT(Ids(*cold), ElementsAre(19, 10, 11));
}

TEST_F(RecommenderTest, WithoutMoviesTheEntriesHaveNoTitles) {
  std::unique_ptr<Recommender> r = Make(2, MovieCatalog{});
  ASSERT_NE(r, nullptr);
  absl::StatusOr<Recommendation> rec = r->Recommend(2);
  ASSERT_TRUE(rec.ok()) << rec.status();
  // User 2 trained on 19 17 10 13: the best left are 18 and 16.
  EXPECT_THAT(Ids(*rec), ElementsAre(18, 16));
  EXPECT_EQ(rec->entries[0].movie, nullptr);
  EXPECT_FALSE(Recommender::Create(planted_.config, planted_.job.data, planted_.job.split,
                                   planted_.store.get(), MovieCatalog{}, 0)
                   .ok());
}

// The genre model scores the catalogue with each movie's rows widened by its genres' rows, as the
// trainer does: every score, clipped, is the trainer's prediction for that pair, bit for bit.
TEST(GenreRecommenderTest, ScoresAreTheTrainersPredictionsBitForBit) {
  const fs::path dir = FreshDir("genre_recommender");
  WritePlantedRatings(dir);
  WritePlantedMoviesCsv(dir);
  PlantedJob planted = MakePlantedJob(dir);
  planted.config.set_model(GENRE);
  FillTableSpecs(&planted.config);
  auto store = LocalStore::Create(planted.config.tables(), planted.config.optimizer(),
                                  planted.config.seed());
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<MovieCatalog> movies = ReadMovies(dir.string());
  ASSERT_TRUE(movies.ok()) << movies.status();
  const ItemGenres genres(*movies);
  ASSERT_GT(genres.num_genres(), 2u);
  const uint32_t dim = planted.config.dim();
  for (uint32_t g = 0; g < genres.num_genres(); ++g) {  // distinct, nonzero genre rows
    std::vector<float> emb(dim, 0.1f * static_cast<float>(g + 1));
    const float bias = 0.3f * static_cast<float>(g) - 0.4f;
    for (const auto& [table, values] :
         {std::pair{kGenreEmbeddingTable, absl::MakeConstSpan(emb)},
          std::pair{kGenreBiasTable, absl::MakeConstSpan(&bias, 1)}}) {
      const std::vector<float> state((*store)->table(table)->state_floats_per_row(), 0.0f);
      ASSERT_TRUE((*store)->InsertRow(table, genres.key(g), 1, values, state).ok());
    }
  }
  auto r = Recommender::Create(planted.config, planted.job.data, planted.job.split, store->get(),
                               *movies, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  auto trainer = Trainer::Create(planted.config, &planted.job.data, store->get());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const Dataset& data = planted.job.data;
  std::vector<uint32_t> rows(data.ratings.size());
  for (uint32_t k = 0; k < rows.size(); ++k) rows[k] = k;
  std::vector<float> predicted(rows.size());
  ASSERT_TRUE((*trainer)->Predict(rows, absl::MakeSpan(predicted)).ok());
  std::vector<float> bias_only(rows.size());  // the same rows without genres differ
  int differ = 0;
  for (uint32_t k = 0; k < rows.size(); ++k) {
    const Rating& rating = data.ratings[k];
    absl::StatusOr<absl::Span<const float>> scores = (*r)->Score(data.user_ids[rating.user]);
    ASSERT_TRUE(scores.ok()) << scores.status();
    EXPECT_EQ(ClipRating((*scores)[rating.item]), predicted[k]) << "rating row " << k;
  }
  planted.config.set_model(BIAS);
  auto bias_trainer = Trainer::Create(planted.config, &planted.job.data, store->get());
  ASSERT_TRUE(bias_trainer.ok()) << bias_trainer.status();
  ASSERT_TRUE((*bias_trainer)->Predict(rows, absl::MakeSpan(bias_only)).ok());
  for (uint32_t k = 0; k < rows.size(); ++k) differ += bias_only[k] != predicted[k];
  EXPECT_GT(differ, 0) << "the genre rows change the predictions";
}

TEST(GenreRecommenderTest, NeedsTheMoviesFile) {
  const fs::path dir = FreshDir("genre_recommender_no_movies");
  WritePlantedRatings(dir);
  PlantedJob planted = MakePlantedJob(dir);
  planted.config.set_model(GENRE);
  auto r = Recommender::Create(planted.config, planted.job.data, planted.job.split,
                               planted.store.get(), MovieCatalog{}, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("movies file"));
}

}  // namespace
}  // namespace psrec

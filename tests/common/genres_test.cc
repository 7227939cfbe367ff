#include "common/genres.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/model.h"
#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/gradient_check.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Movie 1 lists two genres, 2 one of them again and a new one, 3 none, 4 a genre twice.
constexpr char kMovies[] =
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Comedy\n"
    "2,Heat (1995),Comedy|Crime\n"
    "3,Amélie (2001),(no genres listed)\n"
    "4,Twice (1999),Drama|Drama\n";

ItemGenres ParseGenres(const char* text) {
  absl::StatusOr<MovieCatalog> movies = ParseMovies(text, MoviesLayout::kCsv, "movies.csv");
  EXPECT_TRUE(movies.ok()) << movies.status();
  return ItemGenres(*movies);
}

TEST(GenresTest, KeysAreStableHashesOfNames) {
  EXPECT_EQ(GenreKey("Comedy"), GenreKey(std::string("Comedy")));
  EXPECT_NE(GenreKey("Comedy"), GenreKey("Drama"));
  EXPECT_NE(GenreKey(""), GenreKey("Action"));
}

TEST(GenresTest, ItemGenresFollowTheFile) {
  const ItemGenres genres = ParseGenres(kMovies);
  EXPECT_EQ(genres.path(), "movies.csv");
  ASSERT_EQ(genres.num_genres(), 4u);
  EXPECT_EQ(genres.name(0), "Adventure");
  EXPECT_EQ(genres.name(3), "Drama");
  EXPECT_EQ(genres.key(1), GenreKey("Comedy"));
  EXPECT_THAT(genres.Of(1), ElementsAre(0, 1));
  EXPECT_THAT(genres.Of(2), ElementsAre(1, 2));
  EXPECT_THAT(genres.Of(3), IsEmpty()) << "(no genres listed) is no genre";
  EXPECT_THAT(genres.Of(4), ElementsAre(3)) << "a genre listed twice counts once";
  EXPECT_THAT(genres.Of(99), IsEmpty()) << "a movie missing from the file has no genre";
}

TEST(GenresTest, LinksListEachGenreOnceInOrderOfUse) {
  const ItemGenres genres = ParseGenres(kMovies);
  GenreLinks links;
  const std::vector<uint64_t> items = {2, 3, 99, 1};
  links.Link(genres, items);
  EXPECT_THAT(links.keys(),
              ElementsAre(GenreKey("Comedy"), GenreKey("Crime"), GenreKey("Adventure")));
  ASSERT_EQ(links.num_items(), 4u);
  EXPECT_THAT(links.slots(0), ElementsAre(0, 1));
  EXPECT_THAT(links.slots(1), IsEmpty());
  EXPECT_THAT(links.slots(2), IsEmpty());
  EXPECT_THAT(links.slots(3), ElementsAre(2, 0));
  links.Link(genres, std::vector<uint64_t>{4});  // buffers reused, nothing left over
  EXPECT_THAT(links.keys(), ElementsAre(GenreKey("Drama")));
  EXPECT_THAT(links.slots(0), ElementsAre(0));
}

TEST(GenresTest, MixAddsTheMeanOfTheGenreRows) {
  const ItemGenres genres = ParseGenres(kMovies);
  GenreLinks links;
  links.Link(genres, std::vector<uint64_t>{1, 3});  // genres Adventure, Comedy; none
  const std::vector<float> item_emb = {1, 2, 3, 4}, item_bias = {0.5f, -0.5f};
  const std::vector<float> genre_emb = {10, 20, 30, 40}, genre_bias = {1, 2};
  std::vector<float> emb(4), bias(2);
  MixGenres(2, links, item_emb.data(), item_bias.data(), genre_emb.data(), genre_bias.data(),
            emb.data(), bias.data());
  EXPECT_THAT(emb, ElementsAre(1 + 20, 2 + 30, 3, 4));
  EXPECT_THAT(bias, ElementsAre(0.5f + 1.5f, -0.5f));
  std::vector<float> g_genre_emb(4), g_genre_bias(2);
  const std::vector<float> g_emb = {2, 4, 100, 100}, g_bias = {6, 100};
  GenreGrads(2, links, g_emb.data(), g_bias.data(), g_genre_emb.data(), g_genre_bias.data());
  EXPECT_THAT(g_genre_emb, ElementsAre(1, 2, 1, 2));
  EXPECT_THAT(g_genre_bias, ElementsAre(3, 3));
}

TEST(GenresTest, AMissingMoviesFileIsNamed) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "genres_test_no_movies";
  std::filesystem::create_directories(dir);
  absl::StatusOr<ItemGenres> genres = ReadItemGenres(dir.string());
  ASSERT_TRUE(absl::IsNotFound(genres.status())) << genres.status();
  EXPECT_THAT(genres.status().message(), HasSubstr("genre model"));
  EXPECT_THAT(genres.status().message(), HasSubstr("movies.csv"));
  std::ofstream(dir / "movies.csv") << "movieId,title,genres\n1,Fine (1990),Drama\n2,Bad line\n";
  genres = ReadItemGenres(dir.string());
  ASSERT_FALSE(genres.ok());
  EXPECT_THAT(genres.status().message(), HasSubstr("movies.csv:3"));
  std::filesystem::remove_all(dir);
}

// The genre model end to end as the trainer runs it: widen, TrainStep as BIAS, genre gradients.
// Every analytic gradient is checked against a central difference of the mean loss.
struct GenreFixture {
  JobConfig config;
  ItemGenres genres = ParseGenres(kMovies);
  GenreLinks links;
  std::vector<uint64_t> items = {1, 2, 3};  // slots 0, 1, 2; movie 3 has no genre
  std::vector<uint32_t> user_slot = {0, 1, 0, 1, 1};
  std::vector<uint32_t> item_slot = {0, 0, 1, 2, 1};
  // Far from every prediction (3 +- about 1), so that no residual sits near MAE's or Huber's kink.
  std::vector<float> rating = {5.0f, 5.0f, 0.5f, 0.5f, 0.5f};
  std::vector<float> user_emb, item_emb, user_bias, item_bias, genre_emb, genre_bias, dense;
  std::vector<float> mixed_emb, mixed_bias;

  GenreFixture(Loss loss, float dropout) {
    config.set_model(GENRE);
    config.set_loss(loss);
    config.set_dim(3);
    config.set_dropout(dropout);
    config.set_rating_offset(3.0f);
    links.Link(genres, items);
    Rng rng(17);
    user_emb = testing_util::RandomValues(rng, 2 * 3, 1.0f);
    item_emb = testing_util::RandomValues(rng, 3 * 3, 1.0f);
    user_bias = testing_util::RandomValues(rng, 2, 0.5f);
    item_bias = testing_util::RandomValues(rng, 3, 0.5f);
    genre_emb = testing_util::RandomValues(rng, links.keys().size() * 3, 1.0f);
    genre_bias = testing_util::RandomValues(rng, links.keys().size(), 0.5f);
    dense = testing_util::RandomValues(rng, Model::Create(config)->dense_rows().floats(), 0.5f);
    mixed_emb.resize(item_emb.size());
    mixed_bias.resize(item_bias.size());
  }

  // The mean loss; fills the gradients when `grads` is set.
  float Step(Model& model, const GradView* grads, std::vector<float>* g_genre_emb,
             std::vector<float>* g_genre_bias) {
    MixGenres(3, links, item_emb.data(), item_bias.data(), genre_emb.data(), genre_bias.data(),
              mixed_emb.data(), mixed_bias.data());
    const ExampleBatch batch{user_slot, item_slot, rating, 2, 3};
    const ParamView params{user_emb.data(), mixed_emb.data(), user_bias.data(), mixed_bias.data(),
                           dense.data()};
    std::vector<float> s_ue(user_emb.size()), s_ie(item_emb.size()), s_ub(2), s_ib(3),
        s_d(dense.size());
    const GradView scratch{s_ue.data(), s_ie.data(), s_ub.data(), s_ib.data(), s_d.data()};
    const float loss = model.TrainStep(batch, params, /*dropout_seed=*/3, grads ? *grads : scratch);
    if (grads != nullptr) {
      GenreGrads(3, links, grads->item_emb, grads->item_bias, g_genre_emb->data(),
                 g_genre_bias->data());
    }
    return loss;
  }
};

void CheckGenreGradients(Loss loss, float dropout) {
  GenreFixture f(loss, dropout);
  absl::StatusOr<Model> model = Model::Create(f.config);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> g_ue(f.user_emb.size()), g_ie(f.item_emb.size()), g_ub(2), g_ib(3),
      g_d(f.dense.size()), g_ge(f.genre_emb.size()), g_gb(f.genre_bias.size());
  const GradView grads{g_ue.data(), g_ie.data(), g_ub.data(), g_ib.data(), g_d.data()};
  f.Step(*model, &grads, &g_ge, &g_gb);
  const testing_util::CheckedParam params[] = {
      {"user_emb", &f.user_emb, &g_ue},    {"item_emb", &f.item_emb, &g_ie},
      {"user_bias", &f.user_bias, &g_ub},  {"item_bias", &f.item_bias, &g_ib},
      {"dense", &f.dense, &g_d},           {"genre_emb", &f.genre_emb, &g_ge},
      {"genre_bias", &f.genre_bias, &g_gb}};
  const int checked = testing_util::ExpectGradientsMatch(
      params, [&] { return f.Step(*model, nullptr, nullptr, nullptr); },
      absl::StrCat("loss ", Loss_Name(loss), " dropout ", dropout));
  EXPECT_GT(checked, 30);
  // The genres of the batch get a gradient; a genre of movie 1 only (Adventure) through it alone.
  EXPECT_NE(g_gb[0], 0.0f);
}

class GenreGradientTest : public ::testing::TestWithParam<Loss> {};

TEST_P(GenreGradientTest, MatchesFiniteDifferences) { CheckGenreGradients(GetParam(), 0.0f); }

TEST_P(GenreGradientTest, MatchesFiniteDifferencesWithDropout) {
  CheckGenreGradients(GetParam(), 0.3f);
}

INSTANTIATE_TEST_SUITE_P(AllLosses, GenreGradientTest, ::testing::Values(MAE, MSE, HUBER));

TEST(GenresTest, TableSpecsAddTheGenreTables) {
  JobConfig config;
  config.set_model(GENRE);
  config.set_dim(7);
  config.set_l2(0.5f);
  FillTableSpecs(&config);
  ASSERT_EQ(config.tables_size(), 7);
  EXPECT_EQ(config.tables(kGenreEmbeddingTable).name(), "genre_embedding");
  EXPECT_EQ(config.tables(kGenreEmbeddingTable).width(), 7u);
  EXPECT_EQ(config.tables(kGenreEmbeddingTable).init(), ZEROS);
  EXPECT_EQ(config.tables(kGenreBiasTable).width(), 1u);
  EXPECT_EQ(config.tables(kGenreBiasTable).l2(), 0.5f);
  config.set_model(BIAS);
  FillTableSpecs(&config);
  EXPECT_EQ(config.tables_size(), 5) << "the other models keep their five tables";
}

}  // namespace
}  // namespace psrec

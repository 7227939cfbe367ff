// Grouping a split by user, and the popularity baseline: by hand on a few ratings, and against the
// data README's ranking reference on ml-latest-small.
#include "common/ranking_data.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/job_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;

// Users 0..2 and items 0..3 (movie ids 10, 20, 30, 40), rows as given.
Dataset MakeData(const std::vector<Rating>& ratings) {
  Dataset data;
  data.ratings = ratings;
  data.user_ids = {1, 2, 3};
  data.item_ids = {10, 20, 30, 40};
  return data;
}

TEST(GroupItemsByUserTest, SortsDropsRepeatsAndFilters) {
  const Dataset data = MakeData(
      {{0, 3, 4.0f, 1}, {0, 1, 2.0f, 2}, {2, 0, 5.0f, 3}, {0, 3, 4.5f, 4}, {2, 2, 3.5f, 5}});
  const UserItems all = GroupItemsByUser(data, {0, 1, 2, 3, 4});
  ASSERT_EQ(all.num_users(), 3u);
  EXPECT_THAT(all.of(0), ElementsAre(1, 3));
  EXPECT_TRUE(all.of(1).empty());
  EXPECT_THAT(all.of(2), ElementsAre(0, 2));
  const UserItems liked = GroupItemsByUser(data, {0, 1, 2, 3, 4}, 4.0f);
  EXPECT_THAT(liked.of(0), ElementsAre(3));
  EXPECT_THAT(liked.of(2), ElementsAre(0));
  const UserItems some = GroupItemsByUser(data, {1, 4});
  EXPECT_THAT(some.of(0), ElementsAre(1));
  EXPECT_THAT(some.of(2), ElementsAre(2));
}

TEST(PopularityTest, RecommendsTheMostRatedUnseenMovies) {
  // Training counts: item 0 x2, item 1 x2, item 2 x1, item 3 x0. Ties go to the smaller movie id,
  // so the popular order is 0, 1, 2, 3.
  const Dataset data = MakeData({{0, 0, 3.0f, 1},
                                 {1, 0, 3.0f, 2},
                                 {1, 1, 3.0f, 3},
                                 {2, 1, 3.0f, 4},
                                 {2, 2, 3.0f, 5},
                                 // test rows
                                 {0, 1, 4.0f, 6},    // user 0: top 2 of {1, 2, 3} = {1, 2}: hit
                                 {1, 3, 5.0f, 7},    // user 1: top 2 of {2, 3} = {2, 3}: rank 2
                                 {2, 3, 3.5f, 8}});  // user 2: not relevant, not counted
  SplitRows split;
  split.train = {0, 1, 2, 3, 4};
  split.test = {5, 6, 7};
  const RankingData ranking = MakeRankingData(data, split);
  EXPECT_THAT(ranking.train_counts, ElementsAre(2, 2, 1, 0));
  EXPECT_THAT(ranking.first_rated, ElementsAre(0, 1, 2, 3));
  absl::StatusOr<RankingSums> sums = EvaluatePopularity(ranking, 2);
  ASSERT_TRUE(sums.ok()) << sums.status();
  EXPECT_EQ(sums->users, 2);
  EXPECT_EQ(sums->hits, 2);
  EXPECT_NEAR(sums->recall(), 1.0, 1e-10);
  EXPECT_NEAR(sums->ndcg(), (1.0 + 1 / std::log2(3.0)) / 2, 1e-10);
  EXPECT_DOUBLE_EQ(sums->coverage(), 3.0 / 4.0);
  EXPECT_FALSE(EvaluatePopularity(ranking, 0).ok());
}

TEST(PopularityTest, TiesGoToTheFirstRatedByUserThenTime) {
  // Items 1 and 3 are both rated twice in training. User id 1 (index 0) rates item 3 before item 1,
  // so item 3 wins the tie although its movie id (40) is larger; unrated items follow by movie id.
  const Dataset data = MakeData({{1, 1, 3.0f, 1},
                                 {0, 1, 3.0f, 9},
                                 {0, 3, 3.0f, 5},
                                 {2, 3, 3.0f, 2},
                                 {2, 0, 5.0f, 3}});  // test
  SplitRows split;
  split.train = {0, 1, 2, 3};
  split.test = {4};
  const RankingData ranking = MakeRankingData(data, split);
  // First rated in order: item 3 (user id 1, time 5), item 1 (time 9); then 0 and 2 by id.
  EXPECT_THAT(ranking.first_rated, ElementsAre(2, 1, 3, 0));
  absl::StatusOr<RankingSums> sums = EvaluatePopularity(ranking, 1);
  ASSERT_TRUE(sums.ok()) << sums.status();
  // User index 2 rated item 3 in training, so its top 1 is item 1, not the relevant item 0.
  EXPECT_EQ(sums->users, 1);
  EXPECT_EQ(sums->hits, 0);
  EXPECT_EQ(sums->recommended, std::vector<uint64_t>{0b0010});
}

// The data README's ranking reference: on ml-latest-small, user_time, the 10 most-rated training
// movies give Recall@10 0.0484 and NDCG@10 0.0749 over the 592 users with a relevant test rating.
TEST(PopularityRealTest, ReproducesTheReadmeReference) {
  const char* env = std::getenv("MOVIELENS_DIR");
  const std::string dir = env != nullptr && *env != '\0'
                              ? std::string(env)
                              : std::string(PSREC_SOURCE_DIR) + "/../shared/data/ml-latest-small";
  if (!std::filesystem::exists(dir + "/ratings.csv")) {
    GTEST_SKIP() << "no " << dir << "/ratings.csv: set $MOVIELENS_DIR to ml-latest-small";
  }
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
  ASSERT_TRUE(config.ok()) << config.status();
  config->set_data_dir(dir);
  config->set_split(USER_TIME);
  absl::StatusOr<WholeData> job = ReadWholeData(&*config);
  ASSERT_TRUE(job.ok()) << job.status();
  if (job->data.ratings.size() != 100836) {
    GTEST_SKIP() << dir << " holds " << job->data.ratings.size()
                 << " ratings, not the 100,836 of the ml-latest-small the reference used";
  }
  const RankingData ranking = MakeRankingData(job->data, job->split);
  absl::StatusOr<RankingSums> sums = EvaluatePopularity(ranking, 10);
  ASSERT_TRUE(sums.ok()) << sums.status();
  EXPECT_EQ(sums->users, 592);
  EXPECT_NEAR(sums->recall(), 0.0484, 0.00005);
  EXPECT_NEAR(sums->ndcg(), 0.0749, 0.00005);
  // The same counts with ties to the smaller movie id: the tie order alone moves both by 2-3%.
  absl::StatusOr<RankingEvaluator> by_id = RankingEvaluator::Create(ranking.item_ids, 10);
  ASSERT_TRUE(by_id.ok());
  for (uint32_t u = 0; u < ranking.relevant.num_users(); ++u) {
    ASSERT_TRUE(
        by_id->AddUser(ranking.train_counts, ranking.train.of(u), ranking.relevant.of(u)).ok());
  }
  EXPECT_EQ(by_id->sums().users, 592);
  EXPECT_NEAR(by_id->sums().recall(), 0.0498, 0.00005);
  EXPECT_NEAR(by_id->sums().ndcg(), 0.0756, 0.00005);
  RecordProperty("recall_at_10", std::to_string(sums->recall()));
  RecordProperty("ndcg_at_10", std::to_string(sums->ndcg()));
  RecordProperty("coverage_at_10", std::to_string(sums->coverage()));
  std::printf(
      "popularity on %s, user_time: users=%lld recall@10=%.6f ndcg@10=%.6f coverage@10=%.6f\n",
      dir.c_str(), static_cast<long long>(sums->users), sums->recall(), sums->ndcg(),
      sums->coverage());
}

}  // namespace
}  // namespace psrec

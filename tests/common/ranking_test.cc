// Recall@K, NDCG@K and coverage on cases small enough to compute by hand, and the exactness of
// merging sums across evaluators.
#include "common/ranking.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Per-user values are summed in units of 2^-36, so a mean is within 2^-37 of the exact one.
constexpr double kUnitTolerance = 1e-10;

RankingEvaluator Make(std::vector<int64_t> ids, int k) {
  absl::StatusOr<RankingEvaluator> eval = RankingEvaluator::Create(std::move(ids), k);
  EXPECT_TRUE(eval.ok()) << eval.status();
  return *std::move(eval);
}

std::vector<uint32_t> Top(RankingEvaluator& eval, const std::vector<float>& scores,
                          const std::vector<uint32_t>& exclude = {}) {
  absl::StatusOr<absl::Span<const uint32_t>> top = eval.TopK(scores, exclude);
  EXPECT_TRUE(top.ok()) << top.status();
  return top.ok() ? std::vector<uint32_t>(top->begin(), top->end()) : std::vector<uint32_t>{};
}

TEST(RankingTest, OneHitAtRankTwoOfTwoRelevant) {
  RankingEvaluator eval = Make({1, 2, 3, 4, 5}, 3);
  // Top 3: indices 0, 1, 2. Relevant: 1 (rank 2) and 4 (not in the top 3).
  absl::StatusOr<bool> added = eval.AddUser({0.9f, 0.8f, 0.7f, 0.6f, 0.5f}, {}, {1, 4});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(*added);
  const RankingSums& s = eval.sums();
  EXPECT_EQ(s.users, 1);
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.relevant, 2);
  EXPECT_NEAR(s.recall(), 0.5, kUnitTolerance);
  // DCG = 1/log2(3); ideal (min(3, 2) = 2 hits) = 1/log2(2) + 1/log2(3).
  const double dcg = 1 / std::log2(3.0);
  EXPECT_NEAR(s.ndcg(), dcg / (1 + dcg), kUnitTolerance);
  EXPECT_NEAR(s.ndcg(), 0.38685280723454163, kUnitTolerance);
  EXPECT_DOUBLE_EQ(s.coverage(), 3.0 / 5.0);
}

TEST(RankingTest, TiesGoToTheSmallerMovieId) {
  RankingEvaluator eval = Make({40, 10, 30, 20}, 4);
  EXPECT_THAT(Top(eval, {1, 1, 1, 1}), ElementsAre(1, 3, 2, 0));
  // Higher scores first, ties among them by id: ids 3 and 5 score 2, ids 1 and 2 score 1.
  RankingEvaluator mixed = Make({5, 1, 3, 2}, 4);
  EXPECT_THAT(Top(mixed, {2, 1, 2, 1}), ElementsAre(2, 0, 1, 3));
  // A tie at the cut: of three items scoring 1, the two smallest ids make the top 2.
  RankingEvaluator cut = Make({7, 8, 6}, 2);
  EXPECT_THAT(Top(cut, {1, 1, 1}), ElementsAre(2, 0));
}

TEST(RankingTest, TiedHitMovesWithTheIdOrder) {
  // Both items score the same; the relevant one (id 9) ranks second because id 4 is smaller.
  RankingEvaluator eval = Make({9, 4}, 1);
  ASSERT_TRUE(eval.AddUser({0.5f, 0.5f}, {}, {0}).ok());
  EXPECT_EQ(eval.sums().hits, 0);
  EXPECT_EQ(eval.sums().recall(), 0);
  EXPECT_EQ(eval.sums().ndcg(), 0);
}

TEST(RankingTest, NanRanksLast) {
  RankingEvaluator eval = Make({1, 2, 3}, 3);
  EXPECT_THAT(Top(eval, {NAN, -INFINITY, 0}), ElementsAre(2, 0, 1));
}

TEST(RankingTest, UserWithoutRelevantItemIsNotCounted) {
  RankingEvaluator eval = Make({1, 2, 3}, 2);
  absl::StatusOr<bool> added = eval.AddUser({3, 2, 1}, {}, {});
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);
  // A relevant item the user also rated in training cannot be recommended, so it does not count.
  added = eval.AddUser({3, 2, 1}, {0}, {0});
  ASSERT_TRUE(added.ok());
  EXPECT_FALSE(*added);
  const RankingSums& s = eval.sums();
  EXPECT_EQ(s.users, 0);
  EXPECT_EQ(s.recall(), 0);
  EXPECT_EQ(s.ndcg(), 0);
  EXPECT_EQ(s.coverage(), 0) << "an uncounted user's list is not part of the coverage";
}

TEST(RankingTest, KLargerThanTheCatalogue) {
  RankingEvaluator eval = Make({1, 2, 3}, 10);
  // Index 0 is a training item; the other two are all there is to rank.
  EXPECT_THAT(Top(eval, {9, 1, 5}, {0}), ElementsAre(2, 1));
  ASSERT_TRUE(eval.AddUser({9, 1, 5}, {0}, {1}).ok());
  const RankingSums& s = eval.sums();
  EXPECT_EQ(s.hits, 1);
  EXPECT_NEAR(s.recall(), 1.0, kUnitTolerance);
  // The one relevant item is at rank 2; the ideal puts it at rank 1: NDCG = 1/log2(3).
  EXPECT_NEAR(s.ndcg(), 1 / std::log2(3.0), kUnitTolerance);
  EXPECT_DOUBLE_EQ(s.coverage(), 2.0 / 3.0);
}

TEST(RankingTest, TrainingItemsAreExcludedAndRepeatsIgnored) {
  RankingEvaluator eval = Make({1, 2, 3, 4}, 2);
  EXPECT_THAT(Top(eval, {4, 3, 2, 1}, {0, 0, 1}), ElementsAre(2, 3));
  // The marks are cleared: the next call sees every item again.
  EXPECT_THAT(Top(eval, {4, 3, 2, 1}), ElementsAre(0, 1));
  // Relevant {2, 2, 0}: 0 is a training item, 2 repeats, so R = 1 and index 2 is a hit at rank 1.
  ASSERT_TRUE(eval.AddUser({4, 3, 2, 1}, {0, 1}, {2, 2, 0}).ok());
  EXPECT_EQ(eval.sums().relevant, 1);
  EXPECT_NEAR(eval.sums().recall(), 1.0, kUnitTolerance);
  EXPECT_NEAR(eval.sums().ndcg(), 1.0, kUnitTolerance);
}

TEST(RankingTest, MeansOverUsersAndCoverageOfTheUnion) {
  RankingEvaluator eval = Make({1, 2, 3, 4, 5}, 2);
  ASSERT_TRUE(eval.AddUser({5, 4, 3, 2, 1}, {}, {0}).ok());     // top {0, 1}: hit at rank 1
  ASSERT_TRUE(eval.AddUser({1, 5, 4, 3, 2}, {}, {4, 3}).ok());  // top {1, 2}: no hit
  const RankingSums& s = eval.sums();
  EXPECT_EQ(s.users, 2);
  EXPECT_NEAR(s.recall(), (1.0 + 0.0) / 2, kUnitTolerance);
  EXPECT_NEAR(s.ndcg(), (1.0 + 0.0) / 2, kUnitTolerance);
  EXPECT_DOUBLE_EQ(s.coverage(), 3.0 / 5.0);
}

TEST(RankingTest, MergedSumsEqualOneEvaluatorsBitForBit) {
  const std::vector<int64_t> ids = {11, 7, 3, 19, 5, 2, 13, 17};
  struct User {
    std::vector<float> scores;
    std::vector<uint32_t> train, relevant;
  };
  std::vector<User> users;
  for (uint32_t u = 0; u < 30; ++u) {
    User user;
    for (uint32_t i = 0; i < ids.size(); ++i) {
      user.scores.push_back(static_cast<float>((u * 7 + i * 3) % 5));
    }
    user.train = {u % 8};
    user.relevant = {(u + 3) % 8, (u * 5) % 8};
    users.push_back(user);
  }
  RankingEvaluator all = Make(ids, 3), odd = Make(ids, 3), even = Make(ids, 3);
  for (uint32_t u = 0; u < users.size(); ++u) {
    ASSERT_TRUE(all.AddUser(users[u].scores, users[u].train, users[u].relevant).ok());
    RankingEvaluator& part = u % 2 ? odd : even;
    ASSERT_TRUE(part.AddUser(users[u].scores, users[u].train, users[u].relevant).ok());
  }
  RankingSums merged;
  ASSERT_TRUE(merged.Merge(odd.sums()).ok());
  ASSERT_TRUE(merged.Merge(even.sums()).ok());
  const RankingSums& want = all.sums();
  EXPECT_EQ(merged.users, want.users);
  EXPECT_EQ(merged.hits, want.hits);
  EXPECT_EQ(merged.relevant, want.relevant);
  EXPECT_EQ(merged.recall_units, want.recall_units);
  EXPECT_EQ(merged.ndcg_units, want.ndcg_units);
  EXPECT_EQ(merged.recommended, want.recommended);
  EXPECT_EQ(merged.recall(), want.recall());
  EXPECT_EQ(merged.ndcg(), want.ndcg());
  EXPECT_EQ(merged.coverage(), want.coverage());
}

TEST(RankingTest, Errors) {
  EXPECT_FALSE(RankingEvaluator::Create({1, 2}, 0).ok());
  RankingEvaluator eval = Make({1, 2, 3}, 2);
  EXPECT_THAT(std::string(eval.TopK({1, 2}, {}).status().message()), HasSubstr("2 scores"));
  EXPECT_THAT(std::string(eval.TopK({1, 2, 3}, {3}).status().message()),
              HasSubstr("excluded item index 3"));
  absl::StatusOr<bool> added = eval.AddUser({1, 2, 3}, {}, {7});
  EXPECT_THAT(std::string(added.status().message()), HasSubstr("relevant item index 7"));
  EXPECT_EQ(eval.sums().users, 0);
  RankingSums three = eval.sums();
  RankingSums four;
  four.catalogue_size = 4;
  EXPECT_FALSE(three.Merge(four).ok());
  EXPECT_TRUE(three.Merge(RankingSums{}).ok()) << "an empty sum merges with anything";
}

}  // namespace
}  // namespace psrec

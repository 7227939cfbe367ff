// Ranking over held shares: the popularity baseline and the model's ranking that a process
// holding shares computes equal the whole-data reference (common/ranking_data.h and the way
// bench/recommend_bench.cc ranks), and holders of disjoint shares add up to one holder of all.
#include "common/held_ranking.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/catalogue_scorer.h"
#include "common/job_config.h"
#include "common/job_data.h"
#include "common/model.h"
#include "common/param_store.h"
#include "common/prepare.h"
#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using testing_util::FreshDir;

// A job's config over `data` with `split`; shares prepared into data/shares (`num_shares`).
JobConfig PrepareJob(const fs::path& data, Split split, uint32_t num_shares) {
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
  EXPECT_TRUE(config.ok()) << config.status();
  config->set_data_dir(data.string());
  config->set_split(split);
  config->set_dim(6);
  PrepareOptions options;
  options.num_shares = num_shares;
  EXPECT_TRUE(PrepareShares(data.string(), (data / "shares").string(), options).ok());
  return *config;
}

// Rows that are a fixed function of (table, key, column), uniform in [-1, 1): a trained model
// without the training.
class FakeStore : public ParamStore {
 public:
  absl::Status Pull(absl::Span<const PullBlock> blocks) override {
    for (const PullBlock& b : blocks) {
      const size_t width = b.keys.empty() ? 0 : b.values.size() / b.keys.size();
      for (size_t k = 0; k < b.keys.size(); ++k) {
        for (size_t c = 0; c < width; ++c) {
          b.values[k * width + c] =
              2 * UnitFloat(HashCombine(HashCombine(b.table, b.keys[k]), c)) - 1;
        }
      }
    }
    return absl::OkStatus();
  }
  absl::Status Push(absl::Span<const PushBlock>) override { return absl::OkStatus(); }
};

void ExpectSameMetrics(const RankingSums& got, const RankingSums& want, const std::string& what) {
  EXPECT_EQ(got.users, want.users) << what;
  EXPECT_EQ(got.hits, want.hits) << what;
  EXPECT_EQ(got.relevant, want.relevant) << what;
  EXPECT_EQ(got.recall_units, want.recall_units) << what;
  EXPECT_EQ(got.ndcg_units, want.ndcg_units) << what;
  EXPECT_EQ(got.coverage(), want.coverage()) << what;
}

// Popularity over every held share equals EvaluatePopularity over the whole file, its tie order
// included, for every split.
TEST(HeldRankingTest, PopularityOfSharesEqualsTheWholeDataReference) {
  const fs::path data = FreshDir("held_popularity");
  testing_util::WriteSyntheticRatings(data, 60, 25, 90, 3.5f);
  for (const Split split : {USER_TIME, RANDOM, SEED_TIME}) {
    JobConfig config = PrepareJob(data, split, 5);
    absl::StatusOr<std::unique_ptr<ShareSet>> shares =
        HoldAllShares((data / "shares").string(), &config);
    ASSERT_TRUE(shares.ok()) << shares.status();
    ItemTrainStats stats((*shares)->table().num_items());
    ASSERT_TRUE((*shares)->AddItemTrainStats((*shares)->held(), &stats).ok());
    absl::StatusOr<RankingSums> got = RankHeldSharesByPopularity(**shares, stats);
    ASSERT_TRUE(got.ok()) << got.status();

    absl::StatusOr<WholeData> whole = ReadWholeData(&config);
    ASSERT_TRUE(whole.ok()) << whole.status();
    absl::StatusOr<RankingSums> want =
        EvaluatePopularity(MakeRankingData(whole->data, whole->split), kRankingK);
    ASSERT_TRUE(want.ok());
    ASSERT_GT(want->users, 0);
    ExpectSameMetrics(*got, *want, Split_Name(split));
  }
}

// Holders of disjoint shares, their item statistics merged through the wire form as the
// coordinator merges them, add up to one holder of every share, bit for bit; so does the model's
// ranking over one store.
TEST(HeldRankingTest, DisjointHoldersAddUpToOneHolderOfAll) {
  const fs::path data = FreshDir("held_merge");
  testing_util::WriteSyntheticRatings(data, 50, 20, 70, 3.5f);
  JobConfig config = PrepareJob(data, SEED_TIME, 6);
  const std::string dir = (data / "shares").string();
  absl::StatusOr<std::unique_ptr<ShareSet>> all = HoldAllShares(dir, &config);
  ASSERT_TRUE(all.ok()) << all.status();
  FakeStore store;

  const std::vector<std::vector<uint32_t>> parts = {{0, 3, 4}, {1, 2, 5}};
  std::vector<std::unique_ptr<ShareSet>> holders;
  for (size_t k = 0; k < parts.size(); ++k) {
    absl::StatusOr<std::unique_ptr<ShareSet>> h = ShareSet::Open(dir);
    ASSERT_TRUE(h.ok()) << h.status();
    holders.push_back(*std::move(h));
  }
  // SEED_TIME's threshold, found from the holders' counts as a distributed job finds it.
  PercentileSearch search = SeedTimeSearch(holders[0]->manifest(), config.test_fraction());
  while (!search.done()) {
    std::vector<uint64_t> counts(BucketCount(search.Query()));
    for (size_t k = 0; k < parts.size(); ++k) {
      ASSERT_TRUE(holders[k]->CountTimes(parts[k], search.Query(), absl::MakeSpan(counts)).ok());
    }
    ASSERT_TRUE(search.Add(counts).ok());
  }
  ItemTrainStats merged((*all)->table().num_items());
  const SplitSpec spec = SplitSpec::Of(config, search.value());
  for (size_t k = 0; k < parts.size(); ++k) {
    ASSERT_TRUE(holders[k]->Hold(parts[k], spec).ok());
    ItemTrainStats own(holders[k]->table().num_items());
    ASSERT_TRUE(holders[k]->AddItemTrainStats(parts[k], &own).ok());
    google::protobuf::RepeatedPtrField<ItemTrain> wire;
    ItemStatsToWire(own, &wire);
    ASSERT_TRUE(MergeItemStats(wire, &merged).ok());
  }
  ItemTrainStats whole((*all)->table().num_items());
  ASSERT_TRUE((*all)->AddItemTrainStats((*all)->held(), &whole).ok());
  EXPECT_EQ(merged.count, whole.count);

  for (const bool model : {false, true}) {
    RankingSums sum;
    for (const std::unique_ptr<ShareSet>& h : holders) {
      absl::StatusOr<RankingSums> part =
          model ? RankHeldShares(config, *h, &store) : RankHeldSharesByPopularity(*h, merged);
      ASSERT_TRUE(part.ok()) << part.status();
      RankingTotals wire;
      RankingToWire(*part, &wire);
      absl::StatusOr<RankingSums> back = RankingFromWire(wire);
      ASSERT_TRUE(back.ok());
      ASSERT_TRUE(sum.Merge(*back).ok());
    }
    absl::StatusOr<RankingSums> one =
        model ? RankHeldShares(config, **all, &store) : RankHeldSharesByPopularity(**all, whole);
    ASSERT_TRUE(one.ok());
    ASSERT_GT(one->users, 0);
    ExpectSameMetrics(sum, *one, model ? "model" : "popularity");
    EXPECT_EQ(sum.recommended, one->recommended);
  }
}

// The model's ranking over held shares is the one a scorer of the whole file gives (the way
// bench/recommend_bench.cc --ranking ranks a checkpoint).
TEST(HeldRankingTest, ModelRankingEqualsTheWholeDataScorer) {
  const fs::path data = FreshDir("held_model");
  testing_util::WriteSyntheticRatings(data, 40, 20, 60, 3.5f);
  for (const ModelKind kind : {DOT, BIAS, MLP}) {
    JobConfig config = PrepareJob(data, USER_TIME, 3);
    config.set_model(kind);
    FillTableSpecs(&config);
    absl::StatusOr<std::unique_ptr<ShareSet>> shares =
        HoldAllShares((data / "shares").string(), &config);
    ASSERT_TRUE(shares.ok()) << shares.status();
    FakeStore store;
    absl::StatusOr<RankingSums> got = RankHeldShares(config, **shares, &store);
    ASSERT_TRUE(got.ok()) << got.status();

    absl::StatusOr<WholeData> whole = ReadWholeData(&config);
    ASSERT_TRUE(whole.ok());
    const RankingData ranking = MakeRankingData(whole->data, whole->split);
    absl::StatusOr<Model> model = Model::Create(config);
    ASSERT_TRUE(model.ok());
    const size_t items = ranking.item_ids.size(), dim = config.dim();
    std::vector<uint64_t> keys(ranking.item_ids.begin(), ranking.item_ids.end());
    CatalogueRows rows;
    rows.item_emb.resize(items * dim);
    rows.item_bias.resize(items);
    rows.dense.resize(model->dense_rows().floats());
    const PullBlock blocks[] = {
        {kItemEmbeddingTable, keys, absl::MakeSpan(rows.item_emb)},
        {kItemBiasTable, keys, absl::MakeSpan(rows.item_bias)},
        {kDenseTable, model->dense_rows().keys, absl::MakeSpan(rows.dense)}};
    ASSERT_TRUE(store.Pull(blocks).ok());
    absl::StatusOr<CatalogueScorer> scorer = CatalogueScorer::Create(config, std::move(rows));
    ASSERT_TRUE(scorer.ok());
    absl::StatusOr<RankingEvaluator> eval = RankingEvaluator::Create(ranking.item_ids, kRankingK);
    ASSERT_TRUE(eval.ok());
    std::vector<float> user(dim + 1), scores(items);
    for (uint32_t u = 0; u < ranking.relevant.num_users(); ++u) {
      if (ranking.relevant.of(u).empty()) continue;
      const uint64_t key[] = {static_cast<uint64_t>(whole->data.user_ids[u])};
      const PullBlock user_blocks[] = {{kUserEmbeddingTable, key, absl::MakeSpan(user).first(dim)},
                                       {kUserBiasTable, key, absl::MakeSpan(user).subspan(dim, 1)}};
      ASSERT_TRUE(store.Pull(user_blocks).ok());
      ASSERT_TRUE(
          scorer->Score(absl::MakeSpan(user).first(dim), user[dim], absl::MakeSpan(scores)).ok());
      ASSERT_TRUE(eval->AddUser(scores, ranking.train.of(u), ranking.relevant.of(u)).ok());
    }
    ASSERT_GT(eval->sums().users, 0);
    ExpectSameMetrics(*got, eval->sums(), ModelKind_Name(kind));
  }
}

// By hand: user 1 trained on movie 10 and liked 20 and 30 in test; user 2 has no rating of 4 or
// more in test; user 3 has no training rating (cold) and liked 10. Popularity (10 rated twice in
// training, 20 once, 30 and 40 never, so 30 before 40 by movie id) at K = 10 ranks every item.
TEST(HeldRankingTest, HandComputedPopularityWithAColdUserAndOneWithoutRelevantItems) {
  const fs::path data = FreshDir("held_hand");
  {
    std::ofstream out(data / "ratings.csv");
    out << "userId,movieId,rating,timestamp\n"
        << "1,10,3.0,100\n1,20,5.0,900\n1,30,4.0,901\n"
        << "2,10,4.0,101\n2,20,2.0,102\n2,40,3.5,903\n"
        << "3,10,5.0,904\n";
  }
  JobConfig config = PrepareJob(data, SEED_TIME, 2);
  config.set_test_fraction(0.5);
  absl::StatusOr<std::unique_ptr<ShareSet>> shares =
      HoldAllShares((data / "shares").string(), &config);
  ASSERT_TRUE(shares.ok()) << shares.status();
  const HeldUsers held =
      GroupHeldUsers((*shares)->table(), (*shares)->train_rows(), (*shares)->test_rows());
  ASSERT_EQ(held.users.size(), 2u);  // users 1 and 3; user 2 has no relevant test rating
  EXPECT_EQ((*shares)->table().user_id(held.users[0]), 1);
  EXPECT_EQ((*shares)->table().user_id(held.users[1]), 3);
  EXPECT_EQ(held.train.of(1).size(), 0u);  // cold
  ItemTrainStats stats((*shares)->table().num_items());
  ASSERT_TRUE((*shares)->AddItemTrainStats((*shares)->held(), &stats).ok());
  absl::StatusOr<RankingSums> sums = RankHeldPopularity((*shares)->table(), held, stats, 2);
  ASSERT_TRUE(sums.ok()) << sums.status();
  // User 1 (10 excluded): 20, 30 -> both relevant: recall 1, NDCG 1. User 3: 10, 20 -> 10 is
  // relevant at rank 1: recall 1, NDCG 1. Recommended: 10, 20, 30 of 4 items.
  EXPECT_EQ(sums->users, 2);
  EXPECT_EQ(sums->hits, 3);
  EXPECT_DOUBLE_EQ(sums->recall(), 1.0);
  EXPECT_DOUBLE_EQ(sums->ndcg(), 1.0);
  EXPECT_DOUBLE_EQ(sums->coverage(), 0.75);
  // At K = 1, user 1 gets 20 (a hit of 2 relevant) and user 3 gets 10 (a hit).
  sums = RankHeldPopularity((*shares)->table(), held, stats, 1);
  ASSERT_TRUE(sums.ok());
  EXPECT_DOUBLE_EQ(sums->recall(), (0.5 + 1.0) / 2);
  EXPECT_DOUBLE_EQ(sums->ndcg(), 1.0);
  EXPECT_DOUBLE_EQ(sums->coverage(), 0.5);
}

TEST(HeldRankingTest, RanksAfterEpochFollowsTheFlag) {
  JobConfig config;
  config.set_epochs(5);
  // 0: every epoch on a small catalogue, the last alone on a large one.
  EXPECT_TRUE(RanksAfterEpoch(config, 1, 600, 9000));
  EXPECT_FALSE(RanksAfterEpoch(config, 1, 162000, 59000));
  EXPECT_TRUE(RanksAfterEpoch(config, 5, 162000, 59000));
  config.set_ranking_every(2);
  EXPECT_FALSE(RanksAfterEpoch(config, 1, 10, 10));
  EXPECT_TRUE(RanksAfterEpoch(config, 2, 10, 10));
  EXPECT_FALSE(RanksAfterEpoch(config, 3, 10, 10));
  EXPECT_TRUE(RanksAfterEpoch(config, 5, 10, 10));  // the last, always
  config.set_ranking_every(-1);
  EXPECT_FALSE(RanksAfterEpoch(config, 5, 10, 10));
  EXPECT_FALSE(RanksAtAll(config));
}

TEST(HeldRankingTest, WireErrors) {
  RankingTotals wire;
  wire.set_catalogue_size(65);
  wire.add_recommended(1);  // 65 items need two words
  EXPECT_EQ(RankingFromWire(wire).status().code(), absl::StatusCode::kInvalidArgument);
  wire.add_recommended(0);
  EXPECT_TRUE(RankingFromWire(wire).ok());
  google::protobuf::RepeatedPtrField<ItemTrain> items;
  items.Add()->set_item(4);
  ItemTrainStats stats(4);
  EXPECT_EQ(MergeItemStats(items, &stats).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(stats.count, ElementsAre(0, 0, 0, 0));  // nothing merged
}

// The data README's reference through shares, as a run computes it: user_time on ml-latest-small,
// Recall@10 0.0484 and NDCG@10 0.0749 over 592 users.
TEST(HeldRankingRealTest, PopularityOfSharesReproducesTheReadmeReference) {
  const char* env = std::getenv("MOVIELENS_DIR");
  const std::string dir = env != nullptr && *env != '\0'
                              ? std::string(env)
                              : std::string(PSREC_SOURCE_DIR) + "/../shared/data/ml-latest-small";
  if (!fs::exists(dir + "/ratings.csv")) {
    GTEST_SKIP() << "no " << dir << "/ratings.csv: set $MOVIELENS_DIR to ml-latest-small";
  }
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
  ASSERT_TRUE(config.ok());
  config->set_data_dir(dir);
  config->set_split(USER_TIME);
  const fs::path shares = FreshDir("held_real_shares");
  ASSERT_TRUE(PrepareShares(dir, shares.string(), PrepareOptions()).ok());
  absl::StatusOr<std::unique_ptr<ShareSet>> held = HoldAllShares(shares.string(), &*config);
  ASSERT_TRUE(held.ok()) << held.status();
  if ((*held)->manifest().num_ratings() != 100836) {
    GTEST_SKIP() << dir << " is not the ml-latest-small the reference used";
  }
  ItemTrainStats stats((*held)->table().num_items());
  ASSERT_TRUE((*held)->AddItemTrainStats((*held)->held(), &stats).ok());
  absl::StatusOr<RankingSums> sums = RankHeldSharesByPopularity(**held, stats);
  ASSERT_TRUE(sums.ok()) << sums.status();
  EXPECT_EQ(sums->users, 592);
  EXPECT_NEAR(sums->recall(), 0.0484, 0.00005);
  EXPECT_NEAR(sums->ndcg(), 0.0749, 0.00005);
}

}  // namespace
}  // namespace psrec

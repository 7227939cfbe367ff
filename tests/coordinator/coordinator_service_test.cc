#include "coordinator/coordinator_service.h"

#include <string>
#include <vector>

#include "common/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;

TEST(PlanEpochTest, OneWorkerNumbersStepsAsTheInProcessTrainer) {
  // 1000 rows in batches of 64: 16 batches an epoch, the last one short.
  for (uint32_t epoch : {0u, 1u, 7u}) {
    const std::vector<Partition> plan = PlanEpoch(1000, 1, 64, epoch);
    ASSERT_EQ(plan.size(), 1u);
    EXPECT_EQ(plan[0].begin, 0u);
    EXPECT_EQ(plan[0].end, 1000u);
    EXPECT_EQ(plan[0].first_step, epoch * 16u);
    EXPECT_EQ(plan[0].first_clock, epoch * 16u);
    EXPECT_EQ(plan[0].num_clocks, 16u);
  }
}

TEST(PlanEpochTest, PartitionsCoverEveryRowOnceWithDistinctSteps) {
  const std::vector<Partition> plan = PlanEpoch(1001, 3, 100, 2);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].begin, 0u);
  EXPECT_EQ(plan[0].end, plan[1].begin);
  EXPECT_EQ(plan[1].end, plan[2].begin);
  EXPECT_EQ(plan[2].end, 1001u);
  // 333, 334 and 334 rows: 4 batches each, 12 an epoch; steps run on across partitions.
  std::vector<uint64_t> first_steps;
  for (const Partition& p : plan) {
    first_steps.push_back(p.first_step);
    EXPECT_EQ(p.first_clock, 2u * 4);  // clocks are shared by the workers of an epoch
    EXPECT_EQ(p.num_clocks, 4u);
  }
  EXPECT_THAT(first_steps, ElementsAre(24, 28, 32));
}

TEST(PlanEpochTest, ShortPartitionsStillCountEveryClock) {
  // 5 rows over 3 workers in batches of 2: 1, 2 and 2 rows -> 1 batch each.
  const std::vector<Partition> plan = PlanEpoch(5, 3, 2, 0);
  for (const Partition& p : plan) EXPECT_EQ(p.num_clocks, 1u);
  // 3 rows over 2 workers in batches of 1: 1 and 2 batches; both push 2 clocks.
  const std::vector<Partition> uneven = PlanEpoch(3, 2, 1, 0);
  EXPECT_EQ(uneven[0].end - uneven[0].begin, 1u);
  EXPECT_EQ(uneven[1].end - uneven[1].begin, 2u);
  EXPECT_EQ(uneven[0].num_clocks, 2u);
  EXPECT_EQ(uneven[1].num_clocks, 2u);
}

JobConfig Config() {
  JobConfig config;
  config.set_model(BIAS);
  config.set_dim(30);
  config.set_num_shards(2);
  config.set_num_workers(2);
  config.set_consistency(SYNC);
  config.set_data_dir("/a");
  config.set_rating_offset(3.5f);
  FillTableSpecs(&config);
  return config;
}

TEST(RegistrationDifferencesTest, NamesEveryDifferingField) {
  const JobConfig mine = Config();
  EXPECT_TRUE(RegistrationDifferences(mine, mine).empty());
  JobConfig theirs = mine;
  theirs.set_dim(32);
  FillTableSpecs(&theirs);
  theirs.set_consistency(ASYNC);
  EXPECT_THAT(RegistrationDifferences(mine, theirs),
              ElementsAre("dim: 30 vs 32", "tables: differ", "consistency: SYNC vs ASYNC"));
}

TEST(RegistrationDifferencesTest, IgnoresWhatTheCoordinatorFillsIn) {
  const JobConfig mine = Config();
  JobConfig theirs = mine;
  theirs.set_data_dir("/elsewhere");
  theirs.clear_rating_offset();
  theirs.clear_num_shards();  // a worker started by hand learns the shards from the coordinator
  EXPECT_TRUE(RegistrationDifferences(mine, theirs).empty());
  theirs.set_num_shards(3);
  EXPECT_THAT(RegistrationDifferences(mine, theirs), ElementsAre("num_shards: 2 vs 3"));
}

}  // namespace
}  // namespace psrec

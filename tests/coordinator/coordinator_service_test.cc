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

// The service's handlers called directly, as gRPC's threads would: epoch 0 must not start before
// every worker has asked for work (that is, has loaded its data), or a SYNC clock would wait on one
// still reading.
TEST(CoordinatorServiceTest, WaitsForEveryWorkerToLoadItsDataAndFailsNamingHowMany) {
  JobConfig config = Config();
  config.set_epochs(1);
  config.set_batch_size(4);
  JobData job;
  job.split.train = {0, 1, 2, 3, 4, 5};
  CoordinatorService service(config, {"ps0", "ps1"}, &job);
  grpc::ServerContext context;
  for (int w = 0; w < 2; ++w) {
    RegisterRequest request;
    *request.mutable_config() = config;
    RegisterResponse response;
    ASSERT_TRUE(service.Register(&context, &request, &response).ok());
    EXPECT_EQ(response.worker_id(), static_cast<uint32_t>(w));
  }
  GetWorkRequest ask;
  ask.set_worker_id(0);
  WorkAssignment work;
  ASSERT_TRUE(service.GetWork(&context, &ask, &work).ok());  // worker 0 is ready, worker 1 is not
  EXPECT_EQ(work.kind(), WorkAssignment::WAIT);
  bool evaluated = false;
  auto evaluate = [&](uint64_t) -> absl::StatusOr<TestMetrics> {
    evaluated = true;
    return TestMetrics{};
  };
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob(evaluate, absl::Milliseconds(300), absl::Seconds(5), "");
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().message(),
            "only 2 of 2 workers registered (1 with their data loaded) within 300ms");
  EXPECT_FALSE(evaluated);
  // A failed job tells the workers so.
  ASSERT_TRUE(service.GetWork(&context, &ask, &work).ok());
  EXPECT_EQ(work.kind(), WorkAssignment::ABORTED);
}

TEST(CoordinatorServiceTest, RefusesAWorkerWithADifferentConfig) {
  const JobConfig config = Config();
  JobData job;
  CoordinatorService service(config, {"ps0", "ps1"}, &job);
  grpc::ServerContext context;
  RegisterRequest request;
  *request.mutable_config() = config;
  request.mutable_config()->set_l2(0.5f);
  request.set_name("w7");
  RegisterResponse response;
  const grpc::Status status = service.Register(&context, &request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("worker w7"), std::string::npos) << status.error_message();
  EXPECT_NE(status.error_message().find("l2: 0 vs 0.5"), std::string::npos)
      << status.error_message();
}

}  // namespace
}  // namespace psrec

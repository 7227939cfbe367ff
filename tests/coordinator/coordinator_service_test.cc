#include "coordinator/coordinator_service.h"

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
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

// Records what the coordinator asks of the servers; the servers never fail.
class FakeShards final : public ShardControl {
 public:
  struct Restored {
    uint64_t generation;
    std::string checkpoint;
    bool keep_rows;
    std::vector<uint32_t> workers;
  };
  absl::Status Restore(uint64_t generation, const std::string& checkpoint, bool keep_rows, uint64_t,
                       const std::vector<uint32_t>& workers) override {
    absl::MutexLock lock(&mu);
    restored.push_back({generation, checkpoint, keep_rows, workers});
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<CheckpointFile>> Checkpoint(const std::string&, uint64_t) override {
    return absl::UnimplementedError("no checkpoints here");
  }
  absl::StatusOr<std::string> Check() override { return std::string(); }

  absl::Mutex mu;
  std::vector<Restored> restored ABSL_GUARDED_BY(mu);
};

uint32_t RegisterWorker(CoordinatorService& service, const JobConfig& config,
                        const std::string& name = "") {
  grpc::ServerContext context;
  RegisterRequest request;
  *request.mutable_config() = config;
  request.set_name(name);
  RegisterResponse response;
  const grpc::Status status = service.Register(&context, &request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.job_done());
  return response.worker_id();
}

// A worker that trains (instantly) whatever it is handed, heartbeating, until DONE or `stop`.
// `before_report`, if set, runs before each Report.
void RunFakeWorker(CoordinatorService& service, uint32_t id, const std::atomic<bool>& stop,
                   std::vector<WorkAssignment>* trained,
                   const std::function<void(const WorkAssignment&)>& before_report = nullptr) {
  grpc::ServerContext context;
  GetWorkRequest ask;
  ask.set_worker_id(id);
  while (!stop) {
    HeartbeatRequest beat;
    beat.set_worker_id(id);
    HeartbeatResponse alive;
    ASSERT_TRUE(service.Heartbeat(&context, &beat, &alive).ok());
    WorkAssignment work;
    ASSERT_TRUE(service.GetWork(&context, &ask, &work).ok());
    if (work.kind() == WorkAssignment::DONE) return;
    if (work.kind() != WorkAssignment::TRAIN) continue;
    trained->push_back(work);
    if (before_report) before_report(work);
    ReportRequest report;
    report.set_worker_id(id);
    report.set_epoch(work.epoch());
    report.set_generation(work.generation());
    report.set_examples(work.end() - work.begin());
    ReportResponse done;
    ASSERT_TRUE(service.Report(&context, &report, &done).ok());
    // The answer was lost and the worker asks again: counted once.
    ASSERT_TRUE(service.Report(&context, &report, &done).ok());
  }
}

TEST(CoordinatorServiceTest, ALostWorkersEpochIsRedoneByTheOthersInANewGeneration) {
  JobConfig config = Config();
  config.set_epochs(2);
  config.set_batch_size(4);
  JobData job;
  job.split.train = {0, 1, 2, 3, 4, 5, 6, 7};
  RecoveryOptions recovery;
  recovery.worker_lease = absl::Seconds(1);  // long enough for a busy machine to keep it
  FakeShards shards;
  CoordinatorService service(config, {"ps0", "ps1"}, &job, recovery, &shards);
  grpc::ServerContext context;
  for (int w = 0; w < 2; ++w) {
    RegisterRequest request;
    *request.mutable_config() = config;
    RegisterResponse response;
    ASSERT_TRUE(service.Register(&context, &request, &response).ok());
  }
  // Worker 1 takes its part of epoch 0 and is never heard from again.
  std::thread doomed([&] {
    GetWorkRequest ask;
    ask.set_worker_id(1);
    WorkAssignment work;
    while (work.kind() != WorkAssignment::TRAIN) {
      ASSERT_TRUE(service.GetWork(&context, &ask, &work).ok());
    }
  });
  std::atomic<bool> stop{false};
  std::vector<WorkAssignment> trained;
  std::thread survivor([&] { RunFakeWorker(service, 0, stop, &trained); });
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob([](uint64_t) -> absl::StatusOr<TestMetrics> { return TestMetrics{}; },
                     absl::Seconds(5), absl::Seconds(20), "");
  stop = true;
  doomed.join();
  survivor.join();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  for (const EpochRecord& r : *records) EXPECT_EQ(r.examples, 8u) << "epoch " << r.epoch;
  EXPECT_EQ(service.rollbacks(), 1u);
  {
    absl::MutexLock lock(&shards.mu);
    ASSERT_EQ(shards.restored.size(), 2u);
    EXPECT_EQ(shards.restored[0].generation, 1u);
    EXPECT_THAT(shards.restored[0].workers, ElementsAre(0, 1));
    // No checkpoint directory: the rollback starts over from fresh rows, without worker 1.
    EXPECT_EQ(shards.restored[1].generation, 2u);
    EXPECT_EQ(shards.restored[1].checkpoint, "");
    EXPECT_FALSE(shards.restored[1].keep_rows);
    EXPECT_THAT(shards.restored[1].workers, ElementsAre(0));
  }
  // After the rollback worker 0 trains every row of each epoch, in generation 2.
  ASSERT_GE(trained.size(), 2u);
  for (size_t i = trained.size() - 2; i < trained.size(); ++i) {
    EXPECT_EQ(trained[i].generation(), 2u);
    EXPECT_EQ(trained[i].begin(), 0u);
    EXPECT_EQ(trained[i].end(), 8u);
  }
}

TEST(CoordinatorServiceTest, AReportOfAnotherGenerationIsRefusedWithAborted) {
  JobConfig config = Config();
  config.set_num_workers(1);
  JobData job;
  CoordinatorService service(config, {"ps0"}, &job);
  grpc::ServerContext context;
  RegisterRequest request;
  *request.mutable_config() = config;
  RegisterResponse response;
  ASSERT_TRUE(service.Register(&context, &request, &response).ok());
  ReportRequest report;
  report.set_generation(7);
  ReportResponse done;
  EXPECT_EQ(service.Report(&context, &report, &done).error_code(), grpc::StatusCode::ABORTED);
  ClockRequest clock;
  clock.set_generation(7);
  ClockResponse min_clock;
  EXPECT_EQ(service.Clock(&context, &clock, &min_clock).error_code(), grpc::StatusCode::ABORTED);
}

TestMetrics NoMetrics(uint64_t) { return TestMetrics{}; }

// A worker that comes once the job is over is told so, and may exit 0, rather than being left to
// find the coordinator gone.
TEST(CoordinatorServiceTest, ARegisterAfterTheJobEndedIsToldTheJobIsDone) {
  JobConfig config = Config();
  config.set_num_workers(1);
  config.set_epochs(1);
  config.set_batch_size(4);
  JobData job;
  job.split.train = {0, 1, 2, 3};
  CoordinatorService service(config, {"ps0", "ps1"}, &job);
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  std::atomic<bool> stop{false};
  std::vector<WorkAssignment> trained;
  std::thread worker([&] { RunFakeWorker(service, 0, stop, &trained); });
  ASSERT_TRUE(service.RunJob(NoMetrics, absl::Seconds(5), absl::Seconds(20), "").ok());
  worker.join();
  grpc::ServerContext context;
  RegisterRequest late;
  *late.mutable_config() = config;
  RegisterResponse response;
  ASSERT_TRUE(service.Register(&context, &late, &response).ok());
  EXPECT_TRUE(response.job_done());
  EXPECT_EQ(response.ps_addresses_size(), 0);
}

// A Register that finds every place held by a live worker waits rather than failing. Here the
// place never frees, so it is answered when the job ends; the answer is the same whichever of the
// two comes first.
TEST(CoordinatorServiceTest, ARegisterWaitingForAPlaceIsToldWhenTheJobEnds) {
  JobConfig config = Config();
  config.set_num_workers(1);
  config.set_epochs(2);
  config.set_batch_size(4);
  JobData job;
  job.split.train = {0, 1, 2, 3, 4};
  CoordinatorService service(config, {"ps0", "ps1"}, &job);
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  RegisterResponse waiting_answer;
  grpc::Status waiting_status;
  std::thread waiting([&] {
    grpc::ServerContext context;
    RegisterRequest request;
    *request.mutable_config() = config;
    request.set_name("spare");
    waiting_status = service.Register(&context, &request, &waiting_answer);
  });
  std::atomic<bool> stop{false};
  std::vector<WorkAssignment> trained;
  std::thread worker([&] { RunFakeWorker(service, 0, stop, &trained); });
  ASSERT_TRUE(service.RunJob(NoMetrics, absl::Seconds(5), absl::Seconds(20), "").ok());
  worker.join();
  waiting.join();
  ASSERT_TRUE(waiting_status.ok()) << waiting_status.error_message();
  EXPECT_TRUE(waiting_answer.job_done());
  EXPECT_EQ(trained.size(), 2u);
}

// With --min_workers=2 the job does not go on with the survivor alone: the rollback waits for a
// replacement, which takes the lost worker's place once its lease runs out (it asked before,
// and waited), and both train the redone epoch.
TEST(CoordinatorServiceTest, BelowMinWorkersTheRollbackWaitsForAReplacement) {
  JobConfig config = Config();
  config.set_epochs(2);
  config.set_batch_size(4);
  JobData job;
  job.split.train = {0, 1, 2, 3, 4, 5, 6, 7};
  RecoveryOptions recovery;
  recovery.worker_lease = absl::Seconds(1);  // long enough for a busy machine to keep it
  recovery.min_workers = 2;
  FakeShards shards;
  CoordinatorService service(config, {"ps0", "ps1"}, &job, recovery, &shards);
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  ASSERT_EQ(RegisterWorker(service, config), 1u);
  std::atomic<bool> took_work{false};
  std::thread doomed([&] {  // takes its part of epoch 0 and is never heard from again
    grpc::ServerContext context;
    GetWorkRequest ask;
    ask.set_worker_id(1);
    WorkAssignment work;
    while (work.kind() != WorkAssignment::TRAIN) {
      ASSERT_TRUE(service.GetWork(&context, &ask, &work).ok());
    }
    took_work = true;
  });
  std::atomic<bool> stop{false};
  std::vector<WorkAssignment> survivor_trained, replacement_trained;
  std::thread survivor([&] { RunFakeWorker(service, 0, stop, &survivor_trained); });
  std::thread replacement([&] {
    while (!took_work) absl::SleepFor(absl::Milliseconds(1));
    const uint32_t id = RegisterWorker(service, config, "replacement");  // waits for the place
    EXPECT_EQ(id, 1u);
    RunFakeWorker(service, id, stop, &replacement_trained);
  });
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob(NoMetrics, absl::Seconds(5), absl::Seconds(20), "");
  stop = true;
  doomed.join();
  survivor.join();
  replacement.join();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ(service.rollbacks(), 1u);
  absl::MutexLock lock(&shards.mu);
  ASSERT_EQ(shards.restored.size(), 2u);
  EXPECT_EQ(shards.restored[1].generation, 2u);
  EXPECT_FALSE(shards.restored[1].keep_rows);
  EXPECT_THAT(shards.restored[1].workers, ElementsAre(0, 1));
  // Both epochs of generation 2 are split between the two.
  ASSERT_EQ(replacement_trained.size(), 2u);
  for (const WorkAssignment& w : replacement_trained) {
    EXPECT_EQ(w.generation(), 2u);
    EXPECT_EQ(w.begin(), 4u);
  }
}

// With the default --min_workers=1 the survivor carries on alone after the rollback; a
// replacement that registers later joins at the next epoch boundary, rows kept. The survivor
// holds its report of the rolled-back epoch until the replacement has asked for work, so that
// there is a boundary left for it to join at.
TEST(CoordinatorServiceTest, AReplacementJoinsBetweenEpochsWithTheRowsKept) {
  JobConfig config = Config();
  config.set_epochs(3);
  config.set_batch_size(4);
  JobData job;
  job.split.train = {0, 1, 2, 3, 4, 5, 6, 7};
  RecoveryOptions recovery;
  recovery.worker_lease = absl::Seconds(1);  // long enough for a busy machine to keep it
  FakeShards shards;
  CoordinatorService service(config, {"ps0", "ps1"}, &job, recovery, &shards);
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  ASSERT_EQ(RegisterWorker(service, config), 1u);
  std::thread doomed([&] {
    grpc::ServerContext context;
    GetWorkRequest ask;
    ask.set_worker_id(1);
    WorkAssignment work;
    while (work.kind() != WorkAssignment::TRAIN) {
      ASSERT_TRUE(service.GetWork(&context, &ask, &work).ok());
    }
  });
  absl::Notification replacement_asked;
  std::atomic<bool> stop{false};
  std::vector<WorkAssignment> survivor_trained, replacement_trained;
  std::thread replacement;
  std::thread survivor([&] {
    RunFakeWorker(service, 0, stop, &survivor_trained, [&](const WorkAssignment& work) {
      if (work.generation() != 2 || replacement.joinable()) return;
      replacement = std::thread([&] {
        const uint32_t id = RegisterWorker(service, config, "replacement");
        grpc::ServerContext context;
        GetWorkRequest ask;  // asks once (and is then ready), then works as any other
        ask.set_worker_id(id);
        WorkAssignment first;
        ASSERT_TRUE(service.GetWork(&context, &ask, &first).ok());
        replacement_asked.Notify();
        if (first.kind() == WorkAssignment::TRAIN) replacement_trained.push_back(first);
        RunFakeWorker(service, id, stop, &replacement_trained);
      });
      while (!replacement_asked.WaitForNotificationWithTimeout(absl::Milliseconds(50))) {
        grpc::ServerContext context;  // keeps its lease while it holds its report
        HeartbeatRequest beat;
        beat.set_worker_id(0);
        HeartbeatResponse alive;
        ASSERT_TRUE(service.Heartbeat(&context, &beat, &alive).ok());
      }
    });
  });
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob(NoMetrics, absl::Seconds(5), absl::Seconds(20), "");
  stop = true;
  doomed.join();
  survivor.join();
  if (replacement.joinable()) replacement.join();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(service.rollbacks(), 1u);
  absl::MutexLock lock(&shards.mu);
  ASSERT_EQ(shards.restored.size(), 3u);
  EXPECT_THAT(shards.restored[1].workers, ElementsAre(0));
  EXPECT_EQ(shards.restored[2].generation, 3u);
  EXPECT_TRUE(shards.restored[2].keep_rows);
  EXPECT_THAT(shards.restored[2].workers, ElementsAre(0, 1));
  ASSERT_FALSE(replacement_trained.empty());
  EXPECT_EQ(replacement_trained.back().generation(), 3u);
}

}  // namespace
}  // namespace psrec

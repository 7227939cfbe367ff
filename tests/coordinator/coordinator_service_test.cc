// The service's handlers called directly, as gRPC's threads would, while RunJob runs the job; the
// parameter servers are FakeShards.
#include "coordinator/coordinator_service.h"

#include <atomic>
#include <functional>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/coordinator_test_util.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::testing::ElementsAreArray;

// Each of the calls below is one RPC of worker `id`.
WorkAssignment GetWork(CoordinatorService& service, uint32_t id) {
  grpc::ServerContext context;
  GetWorkRequest ask;
  ask.set_worker_id(id);
  WorkAssignment work;
  const grpc::Status status = service.GetWork(&context, &ask, &work);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return work;
}

grpc::Status Heartbeat(CoordinatorService& service, uint32_t id) {
  grpc::ServerContext context;
  HeartbeatRequest beat;
  beat.set_worker_id(id);
  HeartbeatResponse alive;
  return service.Heartbeat(&context, &beat, &alive);
}

grpc::Status Report(CoordinatorService& service, uint32_t id, const WorkAssignment& work) {
  grpc::ServerContext context;
  const ReportRequest report = FakeReport(id, work);
  ReportResponse done;
  return service.Report(&context, &report, &done);
}

// The Clock call before batch `batch` of `work`.
grpc::Status Clock(CoordinatorService& service, uint32_t id, const WorkAssignment& work,
                   uint64_t batch) {
  grpc::ServerContext context;
  ClockRequest request;
  request.set_worker_id(id);
  request.set_clock(work.first_clock() + batch);
  request.set_generation(work.generation());
  ClockResponse response;
  return service.Clock(&context, &request, &response);
}

grpc::Status Register(CoordinatorService& service, const JobConfig& config, const std::string& name,
                      RegisterResponse* response) {
  grpc::ServerContext context;
  RegisterRequest request;
  *request.mutable_config() = config;
  request.set_name(name);
  return service.Register(&context, &request, response);
}

// A Register that must be admitted; the id it is given.
uint32_t RegisterWorker(CoordinatorService& service, const JobConfig& config,
                        const std::string& name = "") {
  RegisterResponse response;
  const grpc::Status status = Register(service, config, name, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.job_done());
  return response.worker_id();
}

// Asks until it is handed an epoch to train, doing every other task it is handed meanwhile.
WorkAssignment AwaitTrain(CoordinatorService& service, uint32_t id) {
  while (true) {
    const WorkAssignment work = GetWork(service, id);
    if (work.kind() == WorkAssignment::TRAIN) return work;
    if (work.kind() == WorkAssignment::SPLIT || work.kind() == WorkAssignment::EVALUATE ||
        work.kind() == WorkAssignment::COUNT_TIMES) {
      EXPECT_TRUE(Report(service, id, work).ok());
    }
  }
}

// A worker that takes its part of the running epoch and is never heard from again; `took` (if
// set) is notified once it has.
std::thread Vanishing(CoordinatorService& service, uint32_t id,
                      absl::Notification* took = nullptr) {
  return std::thread([&service, id, took] {
    AwaitTrain(service, id);
    if (took != nullptr) took->Notify();
  });
}

// A worker that does (instantly) whatever it is handed, heartbeating, until DONE or `stop`. It
// keeps the epochs it trained in `trained`. `before_report`, if set, runs before each Report of a
// trained epoch.
void RunFakeWorker(CoordinatorService& service, uint32_t id, const std::atomic<bool>& stop,
                   std::vector<WorkAssignment>* trained,
                   const std::function<void(const WorkAssignment&)>& before_report = nullptr) {
  while (!stop) {
    ASSERT_TRUE(Heartbeat(service, id).ok());
    const WorkAssignment work = GetWork(service, id);
    if (work.kind() == WorkAssignment::DONE) return;
    if (work.kind() == WorkAssignment::WAIT) continue;
    if (work.kind() == WorkAssignment::TRAIN) {
      trained->push_back(work);
      if (before_report) before_report(work);
    }
    ASSERT_TRUE(Report(service, id, work).ok());
    // The answer was lost and the worker asks again: counted once.
    ASSERT_TRUE(Report(service, id, work).ok());
  }
}

// A job with recovery against FakeShards, and leases of a second: long enough for a busy machine
// to keep a live worker.
struct RecoveringJob {
  // `rows` training ratings, in shares of kRowsPerShare.
  RecoveringJob(const JobConfig& job_config, uint32_t rows, uint32_t min_workers = 1)
      : config(job_config),
        service(config, {"ps0", "ps1"}, Shares(rows / kRowsPerShare), Options(min_workers),
                &shards) {}

  static RecoveryOptions Options(uint32_t min_workers) {
    RecoveryOptions options;
    options.worker_lease = absl::Seconds(1);
    options.min_workers = min_workers;
    return options;
  }
  absl::StatusOr<std::vector<EpochRecord>> Run() {
    return service.RunJob(absl::Seconds(5), absl::Seconds(20), "");
  }
  // Runs the job, then sets `stop` for the test's fake workers and joins each of `workers` started.
  absl::StatusOr<std::vector<EpochRecord>> RunAndJoin(std::initializer_list<std::thread*> workers) {
    absl::StatusOr<std::vector<EpochRecord>> records = Run();
    stop = true;
    for (std::thread* worker : workers) {
      if (worker->joinable()) worker->join();
    }
    return records;
  }
  std::vector<FakeShards::Restored> Restored() {
    absl::MutexLock lock(&shards.mu);
    return shards.restored;
  }

  const JobConfig config;
  FakeShards shards;
  CoordinatorService service;
  std::atomic<bool> stop{false};  // the fake workers' (RunFakeWorker); RunAndJoin sets it
};

// A replacement for a lost worker: once `lost_took_work` is notified, it registers (waiting for a
// place), expects to be worker `expected_id`, and then works as any other until DONE or j.stop.
std::thread Replacement(RecoveringJob& j, absl::Notification* lost_took_work, uint32_t expected_id,
                        std::vector<WorkAssignment>* trained) {
  return std::thread([&j, lost_took_work, expected_id, trained] {
    lost_took_work->WaitForNotification();
    const uint32_t id = RegisterWorker(j.service, j.config, "replacement");
    EXPECT_EQ(id, expected_id);
    RunFakeWorker(j.service, id, j.stop, trained);
  });
}

// Runs the job of `service`, whose one worker (id 0, registered) is a fake worker that keeps the
// epochs it trained in `trained`. RunJob's status.
absl::Status RunWithOneFakeWorker(CoordinatorService& service,
                                  std::vector<WorkAssignment>* trained) {
  const std::atomic<bool> stop{false};
  std::thread worker([&] { RunFakeWorker(service, 0, stop, trained); });
  const absl::Status status = service.RunJob(absl::Seconds(5), absl::Seconds(20), "").status();
  worker.join();
  return status;
}

// TestConfig() for `workers` workers and `epochs` epochs, in batches of 4 ratings (one share's).
JobConfig TrainingConfig(uint32_t workers, uint32_t epochs) {
  JobConfig config = TestConfig();
  config.set_num_workers(workers);
  config.set_epochs(epochs);
  config.set_batch_size(4);
  return config;
}

// Epoch 0 must not start before every worker has asked for work (that is, has loaded its data),
// or a SYNC clock would wait on one still reading.
TEST(CoordinatorServiceTest, WaitsForEveryWorkerToLoadItsDataAndFailsNamingHowMany) {
  const JobConfig config = TrainingConfig(/*workers=*/2, /*epochs=*/1);
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2));
  EXPECT_EQ(RegisterWorker(service, config), 0u);
  EXPECT_EQ(RegisterWorker(service, config), 1u);
  // Worker 0 is ready, worker 1 is not.
  EXPECT_EQ(GetWork(service, 0).kind(), WorkAssignment::WAIT);
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob(absl::Milliseconds(300), absl::Seconds(5), "");
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().message(),
            "only 2 of 2 workers registered (1 with their data loaded) within 300ms");
  // Nothing was handed out.
  EXPECT_EQ(GetWork(service, 0).kind(), WorkAssignment::ABORTED);
}

TEST(CoordinatorServiceTest, RefusesAWorkerWithADifferentConfig) {
  const JobConfig config = TestConfig();
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2));
  JobConfig other = config;
  other.set_l2(0.5f);
  RegisterResponse response;
  const grpc::Status status = Register(service, other, "w7", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("worker w7"));
  EXPECT_THAT(status.error_message(), HasSubstr("l2: 0 vs 0.5"));
}

TEST(CoordinatorServiceTest, AnUnknownWorkerIdIsRefused) {
  const JobConfig config = TestConfig();
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2));
  const grpc::Status status = Heartbeat(service, 3);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "worker id 3 is not registered");
  EXPECT_EQ(Report(service, 3, WorkAssignment()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(CoordinatorServiceTest, ALostWorkersEpochIsRedoneByTheOthersInANewGeneration) {
  const JobConfig config = TrainingConfig(/*workers=*/2, /*epochs=*/2);
  RecoveringJob j(config, 8);
  ASSERT_EQ(RegisterWorker(j.service, config), 0u);
  ASSERT_EQ(RegisterWorker(j.service, config), 1u);
  std::thread doomed = Vanishing(j.service, 1);
  std::vector<WorkAssignment> trained;
  std::thread survivor([&] { RunFakeWorker(j.service, 0, j.stop, &trained); });
  absl::StatusOr<std::vector<EpochRecord>> records = j.RunAndJoin({&doomed, &survivor});
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  for (const EpochRecord& r : *records) EXPECT_EQ(r.examples, 8u) << "epoch " << r.epoch;
  EXPECT_EQ(j.service.rollbacks(), 1u);
  const std::vector<FakeShards::Restored> restored = j.Restored();
  ASSERT_EQ(restored.size(), 2u);
  EXPECT_EQ(restored[0].generation, 1u);
  EXPECT_THAT(restored[0].workers, ElementsAre(0, 1));
  // No checkpoint directory: the rollback starts over from fresh rows, without worker 1.
  EXPECT_EQ(restored[1].generation, 2u);
  EXPECT_EQ(restored[1].checkpoint, "");
  EXPECT_FALSE(restored[1].keep_rows);
  EXPECT_THAT(restored[1].workers, ElementsAre(0));
  // After the rollback worker 0 holds every share, its own and the lost worker's, and trains
  // them in each epoch, in generation 2.
  ASSERT_GE(trained.size(), 2u);
  for (size_t i = trained.size() - 2; i < trained.size(); ++i) {
    EXPECT_EQ(trained[i].generation(), 2u);
    EXPECT_THAT(trained[i].shares(), ElementsAre(0, 1));
  }
}

TEST(CoordinatorServiceTest, AReportOfAnotherGenerationIsRefusedWithAborted) {
  JobConfig config = TestConfig();
  config.set_num_workers(1);
  CoordinatorService service(config, {"ps0"}, Shares(1));
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  WorkAssignment stale;
  stale.set_generation(7);
  EXPECT_EQ(Report(service, 0, stale).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Clock(service, 0, stale, 0).error_code(), grpc::StatusCode::ABORTED);
}

// A worker that comes once the job is over is told so, and may exit 0, rather than being left to
// find the coordinator gone.
TEST(CoordinatorServiceTest, ARegisterAfterTheJobEndedIsToldTheJobIsDone) {
  const JobConfig config = TrainingConfig(/*workers=*/1, /*epochs=*/1);
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(1));
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  std::vector<WorkAssignment> trained;
  ASSERT_TRUE(RunWithOneFakeWorker(service, &trained).ok());
  RegisterResponse response;
  ASSERT_TRUE(Register(service, config, "late", &response).ok());
  EXPECT_TRUE(response.job_done());
  EXPECT_EQ(response.ps_addresses_size(), 0);
}

// A Register that finds every place held by a live worker waits rather than failing. Here the
// place never frees, so it is answered when the job ends; the answer is the same whichever of the
// two comes first.
TEST(CoordinatorServiceTest, ARegisterWaitingForAPlaceIsToldWhenTheJobEnds) {
  const JobConfig config = TrainingConfig(/*workers=*/1, /*epochs=*/2);
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2));
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  RegisterResponse waiting_answer;
  grpc::Status waiting_status;
  std::thread waiting(
      [&] { waiting_status = Register(service, config, "spare", &waiting_answer); });
  std::vector<WorkAssignment> trained;
  ASSERT_TRUE(RunWithOneFakeWorker(service, &trained).ok());
  waiting.join();
  ASSERT_TRUE(waiting_status.ok()) << waiting_status.error_message();
  EXPECT_TRUE(waiting_answer.job_done());
  EXPECT_EQ(trained.size(), 2u);
}

// Every place is held by a live worker, so the replacement's Register waits. The lease of the one
// worker runs out under the running epoch: the place goes to the waiting Register, under the same
// id, and the replacement redoes the epoch in a new generation.
TEST(CoordinatorServiceTest, AWaitingRegisterTakesThePlaceOfAWorkerWhoseLeaseRanOut) {
  const JobConfig config = TrainingConfig(/*workers=*/1, /*epochs=*/1);
  RecoveringJob j(config, 8);
  ASSERT_EQ(RegisterWorker(j.service, config), 0u);
  absl::Notification took_work;
  std::thread doomed = Vanishing(j.service, 0, &took_work);
  std::vector<WorkAssignment> trained;
  std::thread replacement = Replacement(j, &took_work, 0, &trained);
  absl::StatusOr<std::vector<EpochRecord>> records = j.RunAndJoin({&doomed, &replacement});
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].examples, 8u);
  EXPECT_EQ(j.service.rollbacks(), 1u);
  const std::vector<FakeShards::Restored> restored = j.Restored();
  ASSERT_EQ(restored.size(), 2u);
  EXPECT_EQ(restored[1].generation, 2u);
  EXPECT_THAT(restored[1].workers, ElementsAre(0));
  ASSERT_EQ(trained.size(), 1u);
  EXPECT_EQ(trained[0].generation(), 2u);
  EXPECT_THAT(trained[0].shares(), ElementsAre(0, 1));
}

// With --min_workers=2 the job does not go on with the survivor alone: the rollback waits for a
// replacement, which takes the lost worker's place once its lease runs out (it asked before,
// and waited), and both train the redone epoch.
TEST(CoordinatorServiceTest, BelowMinWorkersTheRollbackWaitsForAReplacement) {
  const JobConfig config = TrainingConfig(/*workers=*/2, /*epochs=*/2);
  RecoveringJob j(config, 8, /*min_workers=*/2);
  ASSERT_EQ(RegisterWorker(j.service, config), 0u);
  ASSERT_EQ(RegisterWorker(j.service, config), 1u);
  absl::Notification took_work;
  std::thread doomed = Vanishing(j.service, 1, &took_work);
  std::vector<WorkAssignment> survivor_trained, replacement_trained;
  std::thread survivor([&] { RunFakeWorker(j.service, 0, j.stop, &survivor_trained); });
  std::thread replacement = Replacement(j, &took_work, 1, &replacement_trained);
  absl::StatusOr<std::vector<EpochRecord>> records =
      j.RunAndJoin({&doomed, &survivor, &replacement});
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ(j.service.rollbacks(), 1u);
  const std::vector<FakeShards::Restored> restored = j.Restored();
  ASSERT_EQ(restored.size(), 2u);
  EXPECT_EQ(restored[1].generation, 2u);
  EXPECT_FALSE(restored[1].keep_rows);
  EXPECT_THAT(restored[1].workers, ElementsAre(0, 1));
  // Both epochs of generation 2 are split between the two: the replacement holds the lost
  // worker's share.
  ASSERT_EQ(replacement_trained.size(), 2u);
  for (const WorkAssignment& w : replacement_trained) {
    EXPECT_EQ(w.generation(), 2u);
    EXPECT_THAT(w.shares(), ElementsAre(1));
  }
}

// With the default --min_workers=1 the survivor carries on alone after the rollback; a
// replacement that registers later joins at the next epoch boundary, rows kept. The survivor
// holds its report of the rolled-back epoch until the replacement has asked for work, so that
// there is a boundary left for it to join at.
TEST(CoordinatorServiceTest, AReplacementJoinsBetweenEpochsWithTheRowsKept) {
  const JobConfig config = TrainingConfig(/*workers=*/2, /*epochs=*/3);
  RecoveringJob j(config, 8);
  CoordinatorService& service = j.service;
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  ASSERT_EQ(RegisterWorker(service, config), 1u);
  std::thread doomed = Vanishing(service, 1);
  absl::Notification replacement_asked;
  std::vector<WorkAssignment> survivor_trained, replacement_trained;
  std::thread replacement;
  std::thread survivor([&] {
    RunFakeWorker(service, 0, j.stop, &survivor_trained, [&](const WorkAssignment& work) {
      if (work.generation() != 2 || replacement.joinable()) return;
      replacement = std::thread([&] {
        const uint32_t id = RegisterWorker(service, config, "replacement");
        // Asks once (and is then ready), then works as any other.
        const WorkAssignment first = GetWork(service, id);
        replacement_asked.Notify();
        if (first.kind() == WorkAssignment::TRAIN) replacement_trained.push_back(first);
        if (first.kind() != WorkAssignment::WAIT) {
          EXPECT_TRUE(Report(service, id, first).ok());
        }
        RunFakeWorker(service, id, j.stop, &replacement_trained);
      });
      // Keeps its lease while it holds its report.
      while (!replacement_asked.WaitForNotificationWithTimeout(absl::Milliseconds(50))) {
        ASSERT_TRUE(Heartbeat(service, 0).ok());
      }
    });
  });
  absl::StatusOr<std::vector<EpochRecord>> records =
      j.RunAndJoin({&doomed, &survivor, &replacement});
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(service.rollbacks(), 1u);
  const std::vector<FakeShards::Restored> restored = j.Restored();
  ASSERT_EQ(restored.size(), 3u);
  EXPECT_THAT(restored[1].workers, ElementsAre(0));
  EXPECT_EQ(restored[2].generation, 3u);
  EXPECT_TRUE(restored[2].keep_rows);
  EXPECT_THAT(restored[2].workers, ElementsAre(0, 1));
  ASSERT_FALSE(replacement_trained.empty());
  EXPECT_EQ(replacement_trained.back().generation(), 3u);
}

// A worker held at the SSP clock by a slow neighbour sends nothing while it waits, as a worker
// whose heartbeats are late would; the coordinator knows it is alive, and keeps it however long
// the wait. Here worker 1 waits at its second clock for three leases while worker 0 (which
// heartbeats) holds its first.
TEST(CoordinatorServiceTest, AWorkerWaitingAtTheClockLongerThanItsLeaseIsNotLost) {
  JobConfig config = TestConfig();
  config.set_consistency(SSP);
  config.set_staleness(0);
  config.set_epochs(1);
  config.set_batch_size(2);
  RecoveringJob j(config, 8);  // 2 batches a worker
  CoordinatorService& service = j.service;
  ASSERT_EQ(RegisterWorker(service, config), 0u);
  ASSERT_EQ(RegisterWorker(service, config), 1u);
  absl::Notification both_trained;
  grpc::Status waited;
  std::thread waiting([&] {
    const WorkAssignment work = AwaitTrain(service, 1);
    both_trained.WaitForNotification();
    waited = Clock(service, 1, work, 1);  // until worker 0 reaches clock 1
    EXPECT_TRUE(Report(service, 1, work).ok());
    std::vector<WorkAssignment> more;
    RunFakeWorker(service, 1, std::atomic<bool>{false}, &more);  // evaluation, then DONE
  });
  std::thread slow([&] {
    const WorkAssignment work = AwaitTrain(service, 0);
    both_trained.Notify();
    // The heartbeats keep worker 0; the time is the test's condition, not a wait for an event.
    const absl::Time until = absl::Now() + 3 * RecoveringJob::Options(1).worker_lease;
    while (absl::Now() < until) {
      ASSERT_TRUE(Heartbeat(service, 0).ok());
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_TRUE(Clock(service, 0, work, 1).ok());
    EXPECT_TRUE(Report(service, 0, work).ok());
    std::vector<WorkAssignment> more;
    RunFakeWorker(service, 0, std::atomic<bool>{false}, &more);
  });
  absl::StatusOr<std::vector<EpochRecord>> records = j.Run();
  waiting.join();
  slow.join();
  EXPECT_TRUE(waited.ok()) << waited.error_message();
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(service.rollbacks(), 0u);
  EXPECT_EQ(j.Restored().size(), 1u);
}

}  // namespace
}  // namespace psrec

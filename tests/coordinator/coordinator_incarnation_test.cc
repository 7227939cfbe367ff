// A coordinator's incarnation (coordinator/coordinator_service.h): a worker registered with another
// one is told, whatever it calls, to register again; and a new incarnation's generations start
// above the old one's. The handlers are called directly, as gRPC's threads would.
#include <string>

#include "coordinator/coordinator_service.h"
#include "coordinator/coordinator_state.h"
#include "coordinator/schedule.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/coordinator_test_util.h"

namespace psrec {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kIncarnation = 1796200174836;
constexpr uint64_t kOld = kIncarnation - 9000;

RecoveryOptions WithIncarnation(uint64_t incarnation) {
  RecoveryOptions options;
  options.incarnation = incarnation;
  return options;
}

TEST(CoordinatorIncarnationTest, RegisterAnswersTheIncarnationAndItIsChecked) {
  const JobConfig config = TestConfig();
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2), WithIncarnation(kIncarnation));
  grpc::ServerContext context;
  RegisterRequest request;
  *request.mutable_config() = config;
  RegisterResponse response;
  ASSERT_TRUE(service.Register(&context, &request, &response).ok());
  EXPECT_EQ(response.incarnation(), kIncarnation);

  HeartbeatRequest beat;
  beat.set_worker_id(response.worker_id());
  HeartbeatResponse alive;
  beat.set_incarnation(kIncarnation);
  EXPECT_TRUE(service.Heartbeat(&context, &beat, &alive).ok());
  beat.set_incarnation(0);  // not checked
  EXPECT_TRUE(service.Heartbeat(&context, &beat, &alive).ok());
}

TEST(CoordinatorIncarnationTest, EveryCallOfAnotherIncarnationsWorkerIsNotFound) {
  const JobConfig config = TestConfig();
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2), WithIncarnation(kIncarnation));
  grpc::ServerContext context;
  auto expect_register_again = [](const grpc::Status& status, const std::string& rpc) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << rpc;
    EXPECT_THAT(status.error_message(),
                HasSubstr(rpc + " from worker 1 of coordinator incarnation"));
    EXPECT_THAT(status.error_message(), HasSubstr("register again"));
  };
  GetWorkRequest ask;
  ask.set_worker_id(1);
  ask.set_incarnation(kOld);
  WorkAssignment work;
  expect_register_again(service.GetWork(&context, &ask, &work), "GetWork");
  ReportRequest report;
  report.set_worker_id(1);
  report.set_incarnation(kOld);
  ReportResponse reported;
  expect_register_again(service.Report(&context, &report, &reported), "Report");
  HeartbeatRequest beat;
  beat.set_worker_id(1);
  beat.set_incarnation(kOld);
  HeartbeatResponse alive;
  expect_register_again(service.Heartbeat(&context, &beat, &alive), "Heartbeat");
  ClockRequest clock;
  clock.set_worker_id(1);
  clock.set_incarnation(kOld);
  ClockResponse allowed;
  expect_register_again(service.Clock(&context, &clock, &allowed), "Clock");
  LeaveRequest leave;
  leave.set_worker_id(1);
  leave.set_incarnation(kOld);
  LeaveResponse left;
  expect_register_again(service.Leave(&context, &leave, &left), "Leave");
}

// A server that holds the old incarnation's generation would take the new one's Restore of the same
// number for a retry it has done, and keep its rows.
TEST(CoordinatorIncarnationTest, GenerationsStartAboveThePreviousIncarnations) {
  Schedule old_one(0, kOld * kGenerationsPerIncarnation);
  Schedule new_one(0, kIncarnation * kGenerationsPerIncarnation);
  uint64_t last_old = 0;
  for (int i = 0; i < 1000; ++i) last_old = old_one.NewGeneration({0});
  const uint64_t first_new = new_one.NewGeneration({0});
  EXPECT_GT(first_new, last_old);
  EXPECT_EQ(first_new, kIncarnation * kGenerationsPerIncarnation + 1);
  // Without an incarnation (tests), generations count from 1.
  EXPECT_EQ(Schedule(0).NewGeneration({0}), 1u);
}

}  // namespace
}  // namespace psrec

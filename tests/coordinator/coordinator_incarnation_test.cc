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

// Calls `rpc` as worker 1 of the old incarnation and expects to be told to register again.
template <typename Request, typename Response>
void ExpectRegisterAgain(CoordinatorService& service,
                         grpc::Status (CoordinatorService::*rpc)(grpc::ServerContext*,
                                                                 const Request*, Response*),
                         const std::string& name) {
  grpc::ServerContext context;
  Request request;
  request.set_worker_id(1);
  request.set_incarnation(kOld);
  Response response;
  const grpc::Status status = (service.*rpc)(&context, &request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << name;
  EXPECT_THAT(status.error_message(),
              HasSubstr(name + " from worker 1 of coordinator incarnation"));
  EXPECT_THAT(status.error_message(), HasSubstr("register again"));
}

TEST(CoordinatorIncarnationTest, EveryCallOfAnotherIncarnationsWorkerIsNotFound) {
  const JobConfig config = TestConfig();
  CoordinatorService service(config, {"ps0", "ps1"}, Shares(2), WithIncarnation(kIncarnation));
  ExpectRegisterAgain(service, &CoordinatorService::GetWork, "GetWork");
  ExpectRegisterAgain(service, &CoordinatorService::Report, "Report");
  ExpectRegisterAgain(service, &CoordinatorService::Heartbeat, "Heartbeat");
  ExpectRegisterAgain(service, &CoordinatorService::Clock, "Clock");
  ExpectRegisterAgain(service, &CoordinatorService::Leave, "Leave");
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

// HealthServer (common/health.cc) through a real gRPC health client on loopback: liveness,
// readiness and its end at Stopping, and NOT_FOUND for other names.
#include "common/health.h"

#include "common/ops_flags.h"
#include "gtest/gtest.h"
#include "tests/ops_test_util.h"

namespace psrec {
namespace {

using testing_util::CheckHealth;
constexpr int kServing = 1, kNotServing = 2;

TEST(HealthServerTest, LiveAtOnceReadyWhenToldAndNeverAgainAfterStopping) {
  absl::StatusOr<std::unique_ptr<HealthServer>> health = HealthServer::Start(0);
  ASSERT_TRUE(health.ok()) << health.status();
  const int port = (*health)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(CheckHealth(port, "").status, kServing);
  EXPECT_EQ(CheckHealth(port, "readiness").status, kNotServing);
  (*health)->SetReady(true);
  EXPECT_EQ(CheckHealth(port, "readiness").status, kServing);
  (*health)->SetReady(false);
  EXPECT_EQ(CheckHealth(port, "readiness").status, kNotServing);
  (*health)->SetReady(true);
  (*health)->Stopping();
  EXPECT_EQ(CheckHealth(port, "readiness").status, kNotServing);
  (*health)->SetReady(true);  // too late: the role is stopping
  EXPECT_EQ(CheckHealth(port, "readiness").status, kNotServing);
  EXPECT_EQ(CheckHealth(port, "").status, kServing);
}

TEST(HealthServerTest, AnUnknownServiceIsNotFound) {
  absl::StatusOr<std::unique_ptr<HealthServer>> health = HealthServer::Start(0);
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(CheckHealth((*health)->port(), "psrec.ParameterServer").code,
            grpc::StatusCode::NOT_FOUND);
}

TEST(HealthServerTest, FlagValues) {
  absl::StatusOr<std::unique_ptr<HealthServer>> off =
      StartIfRequested<HealthServer>("health_port", 0);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
  SetReady(off->get(), true);  // null-safe
  SetStopping(off->get());
  EXPECT_EQ(StartIfRequested<HealthServer>("health_port", -1).status(),
            absl::InvalidArgumentError("--health_port=-1 is not in [0, 65535]"));
  EXPECT_TRUE(
      absl::IsInvalidArgument(StartIfRequested<HealthServer>("health_port", 65536).status()));
}

TEST(HealthServerTest, APortInUseIsUnavailable) {
  absl::StatusOr<std::unique_ptr<HealthServer>> first = HealthServer::Start(0);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<HealthServer>> second = HealthServer::Start((*first)->port());
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
}

}  // namespace
}  // namespace psrec

#include "ps/request_checks.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ps/request_test_util.h"

namespace psrec {
namespace {

// The tables kUser (width 3) and kBias (width 1), Block and the request builders.
using namespace request_testing;  // NOLINT(google-build-using-namespace): the tests' own helpers
using ::testing::HasSubstr;

JobConfig TestConfig(uint32_t shards = 1) {
  JobConfig config;
  config.set_num_shards(shards);
  config.set_num_workers(2);
  *config.mutable_tables() = TwoTables();
  return config;
}

void ExpectInvalid(const absl::Status& status, const std::string& message) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << message;
  EXPECT_THAT(status.message(), HasSubstr(message));
}

TEST(RequestChecksTest, GoodRequestsPass) {
  const RequestChecks checks(TestConfig(), 0);
  EXPECT_TRUE(checks
                  .CheckPush(MakePush(1, 0,
                                      {{kUser, {1, 2}, {1, 2, 3, 4, 5, -0.0f}},
                                       {kBias, {}, {}},
                                       {kBias, {7, 7}, {0.5f, 1e30f}}}))
                  .ok());
  EXPECT_TRUE(checks.CheckPush(MakePush(0, 0, {})).ok());
  EXPECT_TRUE(checks.CheckPull(MakePull({{kUser, {1, 2}, {}}, {kBias, {}, {}}})).ok());
  EXPECT_TRUE(checks.CheckPull(PullRequest()).ok());
}

TEST(RequestChecksTest, RefusesBadPushes) {
  const RequestChecks checks(TestConfig(), 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const Block good = {kUser, {1}, {0.5f, 0.5f, 0.5f}};
  const struct {
    PushRequest request;
    const char* message;
  } pushes[] = {
      {MakePush(0, 0, {good, {9, {1}, {1}}}), "push block 1: unknown table id 9"},
      {MakePush(0, 0, {good, {kUser, {1, 2}, {1, 2, 3, 4, 5}}}),
       "push block 1: table 0 (user) has width 3, so 2 keys need 6 values, got 5"},
      {MakePush(0, 0, {good, {kBias, {1, 2}, {1}}}), "block 1"},
      {MakePush(0, 0, {{kBias, {}, {1}}}), "0 keys need 0"},
      {MakePush(0, 0, {good, {kBias, {4}, {nan}}}), "push block 1: table 5 key 4 has gradient nan"},
      {MakePush(0, 0, {{kUser, {1, 2}, {1, 2, 3, 4, -inf, 6}}}), "key 2 has gradient -inf"},
      {MakePush(2, 0, {good}), "push from worker 2, but num_workers is 2"},
  };
  for (const auto& push : pushes) ExpectInvalid(checks.CheckPush(push.request), push.message);
}

TEST(RequestChecksTest, RefusesBadPulls) {
  const RequestChecks checks(TestConfig(), 0);
  ExpectInvalid(checks.CheckPull(MakePull({{kUser, {}, {}}, {3, {}, {}}})),
                "pull block 1: unknown table id 3");
  ExpectInvalid(checks.CheckPull(MakePull({{kUser, {1}, {1.0f}}})),
                "pull block 0: a pull request carries no values, got 1");
}

TEST(RequestChecksTest, RefusesRequestsOverTheLimit) {
  RequestChecks checks(TestConfig(), 0);
  EXPECT_EQ(checks.max_request_floats(), RequestChecks::kMaxRequestFloats);
  checks.set_max_request_floats(6);  // two user rows
  EXPECT_TRUE(checks.CheckPush(MakePush(0, 0, {{kUser, {1, 2}, {1, 2, 3, 4, 5, 6}}})).ok());
  EXPECT_TRUE(checks.CheckPull(MakePull({{kUser, {1, 2}, {}}})).ok());
  ExpectInvalid(
      checks.CheckPush(MakePush(0, 0, {{kUser, {1, 2}, {1, 2, 3, 4, 5, 6}}, {kBias, {3}, {1}}})),
      "push of 7 floats is over the limit of 6; split the request");
  ExpectInvalid(checks.CheckPull(MakePull({{kUser, {1, 2}, {}}, {kBias, {3}, {}}})),
                "pull of 7 floats is over the limit of 6; split the request");
}

TEST(RequestChecksTest, RefusesKeysOfOtherShards) {
  const RequestChecks checks(TestConfig(3), 1);
  uint64_t mine = 0, other = 0;
  while (ShardOf(kUser, mine, 3) != 1) ++mine;
  while (ShardOf(kUser, other, 3) == 1) ++other;
  EXPECT_TRUE(checks.CheckPush(MakePush(0, 0, {{kUser, {mine}, {1, 2, 3}}})).ok());
  EXPECT_TRUE(checks.CheckPull(MakePull({{kUser, {mine}, {}}})).ok());
  const std::string message = absl::StrCat("key ", other, " of table 0 belongs to shard ",
                                           ShardOf(kUser, other, 3), ", not 1");
  ExpectInvalid(checks.CheckPush(MakePush(0, 0, {{kUser, {other}, {1, 2, 3}}})), message);
  ExpectInvalid(checks.CheckPull(MakePull({{kUser, {mine, other}, {}}})), message);
  // With one shard every key is this shard's.
  const RequestChecks single(TestConfig(1), 0);
  EXPECT_TRUE(single.CheckPull(MakePull({{kUser, {mine, other}, {}}})).ok());
}

TEST(CheckCheckpointNameTest, AllowsOnlyOnePlainComponent) {
  EXPECT_TRUE(CheckCheckpointName("ckpt-000001").ok());
  EXPECT_TRUE(CheckCheckpointName("..x").ok());
  for (const char* name : {"", ".", "..", "../elsewhere", "a/b", "/abs"}) {
    ExpectInvalid(CheckCheckpointName(name), absl::StrCat("checkpoint name '", name, "'"));
  }
}

TEST(CheckRestoreWorkersTest, RefusesNoneRepeatedOrOutOfRange) {
  RestoreRequest request;
  ExpectInvalid(CheckRestoreWorkers(request, 3), "no workers");
  request.add_workers(2);
  request.add_workers(0);
  EXPECT_TRUE(CheckRestoreWorkers(request, 3).ok());
  request.add_workers(2);
  ExpectInvalid(CheckRestoreWorkers(request, 3), "worker 2 is repeated or not below num_workers 3");
  request.clear_workers();
  request.add_workers(3);
  ExpectInvalid(CheckRestoreWorkers(request, 3), "worker 3 is repeated or not below num_workers 3");
}

}  // namespace
}  // namespace psrec

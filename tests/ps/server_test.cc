#include "ps/server.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/local_store.h"
#include "ps/table.h"
#include "tests/ps/request_test_util.h"
#include "tests/ps/test_server.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

// The tables kUser (width 3, uniform) and kBias (width 1, zeros), Block and the request builders.
using namespace request_testing;  // NOLINT(google-build-using-namespace): the tests' own helpers
using ::psrec::server_testing::TestServer;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 17;

// Table kUser has an l2 penalty too.
JobConfig TestConfig(Consistency consistency, uint32_t workers, OptimizerKind kind = ADAM) {
  JobConfig config = OneShardJob(kSeed, consistency, workers, kind, 0.01f);
  config.mutable_tables(0)->set_l2(0.001f);
  return config;
}

std::unique_ptr<LocalStore> Reference(const JobConfig& config) {
  auto store = LocalStore::Create(config.tables(), config.optimizer(), config.seed());
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(store).value();
}

grpc::Status Push(ParameterServer::Stub& stub, const PushRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  PushResponse response;
  return stub.Push(&context, request, &response);
}

grpc::Status PullRaw(ParameterServer::Stub& stub, const PullRequest& request,
                     PullResponse* response, int deadline_ms = 5000) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  return stub.Pull(&context, request, response);
}

grpc::Status Pull(ParameterServer::Stub& stub, uint32_t table, const std::vector<uint64_t>& keys,
                  std::vector<float>* values, uint64_t clock = 0, int deadline_ms = 5000) {
  PullRequest request;
  request.set_clock(clock);
  RowBlock* block = request.add_blocks();
  block->set_table(table);
  block->mutable_keys()->Add(keys.begin(), keys.end());
  PullResponse response;
  grpc::Status status = PullRaw(stub, request, &response, deadline_ms);
  if (status.ok()) {
    EXPECT_EQ(response.blocks_size(), 1);
    EXPECT_EQ(response.blocks(0).table(), table);
    values->assign(response.blocks(0).values().begin(), response.blocks(0).values().end());
  }
  return status;
}

std::vector<float> PullOk(ParameterServer::Stub& stub, uint32_t table,
                          const std::vector<uint64_t>& keys) {
  std::vector<float> values;
  grpc::Status status = Pull(stub, table, keys, &values);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return values;
}

std::vector<float> LocalPull(LocalStore& store, uint32_t table, const std::vector<uint64_t>& keys) {
  std::vector<float> values(keys.size() * store.table(table)->width());
  const PullBlock block{table, keys, absl::MakeSpan(values)};
  EXPECT_TRUE(store.Pull({&block, 1}).ok());
  return values;
}

void LocalPush(LocalStore& store, const std::vector<Block>& blocks) {
  std::vector<PushBlock> push;
  push.reserve(blocks.size());
  for (const Block& b : blocks) push.push_back({b.table, b.keys, b.values});
  ASSERT_TRUE(store.Push(push).ok());
}

// Bit patterns, so that comparisons are exact (and tell -0 from +0).
std::vector<uint32_t> Bits(const std::vector<float>& values) {
  std::vector<uint32_t> bits(values.size());
  if (!values.empty()) std::memcpy(bits.data(), values.data(), values.size() * sizeof(float));
  return bits;
}

std::vector<float> Grads(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> grads(n);
  for (float& g : grads) g = 2.0f * rng.Unit() - 1.0f;
  if (n > 1) grads[1] = -0.0f;
  return grads;
}

std::vector<uint64_t> Range(uint64_t begin, uint64_t end) {
  std::vector<uint64_t> keys;
  for (uint64_t k = begin; k < end; ++k) keys.push_back(k);
  return keys;
}

StatsResponse GetStats(ParameterServer::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  StatsResponse stats;
  EXPECT_TRUE(stub.Stats(&context, StatsRequest(), &stats).ok());
  return stats;
}

TEST(ServerTest, PullOfAbsentRowsIsInitRow) {
  const JobConfig config = TestConfig(ASYNC, 1);
  TestServer server(config);
  const std::vector<uint64_t> keys = {0, 1, 12345678901234ull,
                                      std::numeric_limits<uint64_t>::max()};
  const std::vector<float> values = PullOk(server.stub(), kUser, keys);
  ASSERT_EQ(values.size(), keys.size() * 3);
  for (size_t i = 0; i < keys.size(); ++i) {
    std::vector<float> want(3);
    InitRow(config.tables(0), kSeed, keys[i], absl::MakeSpan(want));
    EXPECT_EQ(Bits(std::vector<float>(values.begin() + 3 * i, values.begin() + 3 * i + 3)),
              Bits(want));
  }
  EXPECT_EQ(PullOk(server.stub(), kBias, {}).size(), 0u);
  EXPECT_EQ(GetStats(server.stub()).tables(0).rows(), 0u);  // pulls create no rows
}

TEST(ServerTest, PushThenPullEqualsLocalStoreBitwise) {
  for (Consistency consistency : {ASYNC, SSP, SYNC}) {
    SCOPED_TRACE(consistency);
    const JobConfig config = TestConfig(consistency, 1);
    TestServer server(config);
    std::unique_ptr<LocalStore> local = Reference(config);
    for (uint64_t clock = 0; clock < 4; ++clock) {
      // 200 users reach every sub-shard; the ranges overlap from one clock to the next.
      const std::vector<Block> blocks = {
          {kUser, Range(clock * 50, clock * 50 + 200), Grads(600, clock)},
          {kBias, {7, 3, 9}, Grads(3, 100 + clock)}};
      ASSERT_TRUE(Push(server.stub(), MakePush(0, clock, blocks)).ok());
      LocalPush(*local, blocks);
    }
    for (uint32_t table : {kUser, kBias}) {
      const std::vector<uint64_t> keys = Range(0, 400);
      std::vector<float> values;
      ASSERT_TRUE(Pull(server.stub(), table, keys, &values, /*clock=*/4).ok());
      EXPECT_EQ(Bits(values), Bits(LocalPull(*local, table, keys)));
    }
  }
}

TEST(ServerTest, APushInsideAPullIsAppliedFirst) {
  for (Consistency consistency : {ASYNC, SYNC}) {
    SCOPED_TRACE(consistency);
    const JobConfig config = TestConfig(consistency, 1);
    TestServer server(config);
    std::unique_ptr<LocalStore> local = Reference(config);
    const std::vector<uint64_t> keys = Range(0, 300);
    for (uint64_t clock = 0; clock < 3; ++clock) {
      const std::vector<Block> blocks = {
          {kUser, Range(clock * 40, clock * 40 + 200), Grads(600, 7 + clock)}};
      LocalPush(*local, blocks);
      // The pull of clock + 1 carries clock's push, as a pipelining worker sends it.
      PullRequest request;
      request.set_clock(clock + 1);
      *request.mutable_push() = MakePush(0, clock, blocks);
      RowBlock* block = request.add_blocks();
      block->set_table(kUser);
      block->mutable_keys()->Add(keys.begin(), keys.end());
      PullResponse response;
      ASSERT_TRUE(PullRaw(server.stub(), request, &response).ok());
      const std::vector<float> values(response.blocks(0).values().begin(),
                                      response.blocks(0).values().end());
      EXPECT_EQ(Bits(values), Bits(LocalPull(*local, kUser, keys)));
    }
    // A bad push inside a pull fails the call and changes nothing.
    PullRequest bad;
    *bad.mutable_push() = MakePush(0, 3, {{kUser, {1, 2}, {0.5f}}});
    bad.add_blocks()->set_table(kUser);
    PullResponse response;
    EXPECT_EQ(PullRaw(server.stub(), bad, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(Bits(PullOk(server.stub(), kUser, keys)), Bits(LocalPull(*local, kUser, keys)));
  }
}

// Which requests are refused, and with what message, is request_checks_test.cc's; here, that a
// refused one fails the call and changes nothing.
TEST(ServerTest, InvalidRequestsAreRejectedAndChangeNothing) {
  const JobConfig config = TestConfig(ASYNC, 2);
  TestServer server(config);
  const Block good = {kUser, {1}, {0.5f, 0.5f, 0.5f}};
  const PushRequest pushes[] = {
      MakePush(0, 0, {good, {9, {1}, {1}}}),
      MakePush(0, 0, {good, {kBias, {4}, {std::numeric_limits<float>::quiet_NaN()}}}),
      MakePush(2, 0, {good}),
  };
  for (const PushRequest& push : pushes) {
    EXPECT_EQ(Push(server.stub(), push).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  PullRequest unknown;
  unknown.add_blocks()->set_table(kUser);
  unknown.add_blocks()->set_table(3);
  PullRequest with_values;
  with_values.add_blocks()->add_values(1.0f);
  for (const PullRequest& request : {unknown, with_values}) {
    PullResponse response;
    EXPECT_EQ(PullRaw(server.stub(), request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  const StatsResponse stats = GetStats(server.stub());
  EXPECT_EQ(stats.rows_updated(), 0u);
  for (const TableStats& table : stats.tables()) EXPECT_EQ(table.rows(), 0u) << table.name();
  std::vector<float> init(3);
  InitRow(config.tables(0), kSeed, 1, absl::MakeSpan(init));
  EXPECT_EQ(Bits(PullOk(server.stub(), kUser, {1})), Bits(init));
}

TEST(ServerTest, OversizedRequestsAreRejectedAndChangeNothing) {
  const JobConfig config = TestConfig(ASYNC, 1);
  TestServer server(config);
  server.service().set_max_request_floats(6);  // two user rows
  EXPECT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {1, 2}, {1, 2, 3, 4, 5, 6}}})).ok());
  const std::vector<float> before = PullOk(server.stub(), kUser, {1, 2});
  grpc::Status status =
      Push(server.stub(), MakePush(0, 0, {{kUser, {1, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("push of 9 floats is over the limit of 6"));
  std::vector<float> values;
  status = Pull(server.stub(), kUser, {1, 2, 3}, &values);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("pull of 9 floats is over the limit of 6"));
  EXPECT_EQ(Bits(PullOk(server.stub(), kUser, {1, 2})), Bits(before));
  EXPECT_EQ(GetStats(server.stub()).rows_updated(), 2u);
}

// Sends the RestoreRequest written in text format in `request_text`.
grpc::Status Restore(ParameterServer::Stub& stub, const std::string& request_text) {
  RestoreRequest request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(request_text, &request))
      << request_text;
  RestoreResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return stub.Restore(&context, request, &response);
}

TEST(ServerTest, RestoreStartsAGenerationThatRefusesTheOldOne) {
  const JobConfig config = TestConfig(SYNC, 2);
  TestServer server(config);
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {1}, {1, 1, 1}}})).ok());
  // Worker 0 waits for clock 0, which worker 1 (lost) will never complete.
  grpc::Status waited;
  std::thread waiter([&] {
    std::vector<float> values;
    waited = Pull(server.stub(), kUser, {1}, &values, /*clock=*/1, 5000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::vector<float> before = PullOk(server.stub(), kUser, {1});
  ASSERT_TRUE(Restore(server.stub(), "generation: 1 keep_rows: true clock: 5 workers: 1").ok());
  waiter.join();
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::ABORTED) << waited.error_message();
  // The old generation, and worker 0 in the new one, change nothing.
  EXPECT_EQ(Push(server.stub(), MakePush(1, 5, {{kUser, {1}, {1, 1, 1}}})).error_code(),
            grpc::StatusCode::ABORTED);
  PushRequest dropped = MakePush(0, 5, {{kUser, {1}, {1, 1, 1}}});
  dropped.set_generation(1);
  EXPECT_EQ(Push(server.stub(), dropped).error_code(), grpc::StatusCode::ABORTED);
  // Worker 1 alone completes clock 5, with its gradient taken whole (the mean over one worker).
  PushRequest push = MakePush(1, 5, {{kUser, {1}, {1, 1, 1}}});
  push.set_generation(1);
  ASSERT_TRUE(Push(server.stub(), push).ok());
  PullRequest pull;
  pull.set_generation(1);
  pull.set_clock(6);
  RowBlock* block = pull.add_blocks();
  block->set_table(kUser);
  block->add_keys(1);
  PullResponse response;
  ASSERT_TRUE(PullRaw(server.stub(), pull, &response, 2000).ok());
  std::unique_ptr<LocalStore> local = Reference(config);
  LocalPush(*local, {{kUser, {1}, {1, 1, 1}}});
  EXPECT_EQ(Bits({response.blocks(0).values().begin(), response.blocks(0).values().end()}),
            Bits(LocalPull(*local, kUser, {1})));
  EXPECT_NE(Bits(before), Bits(LocalPull(*local, kUser, {1})));
  // Asked again (an answer lost), the same Restore is a no-op: the rows are not made fresh.
  EXPECT_TRUE(Restore(server.stub(), "generation: 1 workers: 1").ok());
  pull.set_clock(0);
  ASSERT_TRUE(PullRaw(server.stub(), pull, &response, 2000).ok());
  EXPECT_EQ(Bits({response.blocks(0).values().begin(), response.blocks(0).values().end()}),
            Bits(LocalPull(*local, kUser, {1})));
}

TEST(ServerTest, CheckpointAndRestoreBringBackTheRowsOfThatMoment) {
  const JobConfig config = TestConfig(ASYNC, 1);
  const std::string dir = testing_util::FreshDir("checkpoints").string();
  TestServer server(config, 0, dir);
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {1, 2}, Grads(6, 1)}})).ok());
  const std::vector<float> saved = PullOk(server.stub(), kUser, {1, 2, 3});
  CheckpointRequest request;
  request.set_name("ckpt-000001");
  CheckpointResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(server.stub().Checkpoint(&context, request, &response).ok());
  EXPECT_EQ(response.file().rows(), 2u);
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  *manifest.mutable_config() = config;
  manifest.set_epochs_done(1);
  manifest.set_num_shards(1);
  *manifest.add_files() = response.file();
  ASSERT_TRUE(WriteManifest(dir + "/ckpt-000001", manifest).ok());
  // A name that is not one directory is refused.
  request.set_name("../elsewhere");
  grpc::ClientContext context2;
  EXPECT_EQ(server.stub().Checkpoint(&context2, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {1, 3}, Grads(6, 2)}})).ok());
  EXPECT_NE(Bits(PullOk(server.stub(), kUser, {1, 2, 3})), Bits(saved));
  ASSERT_TRUE(Restore(server.stub(), "generation: 1 checkpoint: 'ckpt-000001' workers: 0").ok());
  PullRequest pull;
  pull.set_generation(1);
  RowBlock* block = pull.add_blocks();
  block->set_table(kUser);
  for (uint64_t key : {1, 2, 3}) block->add_keys(key);
  PullResponse pulled;
  ASSERT_TRUE(PullRaw(server.stub(), pull, &pulled).ok());
  EXPECT_EQ(Bits({pulled.blocks(0).values().begin(), pulled.blocks(0).values().end()}),
            Bits(saved));
  // A checkpoint that is not there changes nothing and says which.
  const grpc::Status missing =
      Restore(server.stub(), "generation: 2 checkpoint: 'ckpt-000009' workers: 0");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND) << missing.error_message();
  EXPECT_THAT(missing.error_message(), HasSubstr("ckpt-000009"));
}

TEST(ServerTest, KeysOfOtherShardsAreRejected) {
  JobConfig config = TestConfig(ASYNC, 1);
  config.set_num_shards(3);
  TestServer server(config, /*shard=*/1);
  uint64_t mine = 0, other = 0;
  while (ShardOf(kUser, mine, 3) != 1) ++mine;
  while (ShardOf(kUser, other, 3) == 1) ++other;
  EXPECT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {mine}, {1, 2, 3}}})).ok());
  grpc::Status status = Push(server.stub(), MakePush(0, 0, {{kUser, {other}, {1, 2, 3}}}));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("key ", other, " of table 0")));
  std::vector<float> values;
  EXPECT_EQ(Pull(server.stub(), kUser, {mine, other}, &values).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ServerTest, SyncWaitsForAllWorkersAndAppliesTheMean) {
  const JobConfig config = TestConfig(SYNC, 2);
  TestServer server(config);
  std::unique_ptr<LocalStore> local = Reference(config);
  const std::vector<float> g0 = Grads(6, 1), g1 = Grads(6, 2);
  ASSERT_TRUE(
      Push(server.stub(), MakePush(0, 0, {{kUser, {1, 2}, g0}, {kBias, {7}, {0.25f}}})).ok());

  std::vector<float> values;
  grpc::Status status = Pull(server.stub(), kUser, {1, 2, 3}, &values, /*clock=*/1, 200);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // Clock 0 never waits, and nothing is applied yet.
  EXPECT_EQ(Bits(PullOk(server.stub(), kUser, {1, 2, 3})),
            Bits(LocalPull(*local, kUser, {1, 2, 3})));
  EXPECT_EQ(Push(server.stub(), MakePush(0, 0, {})).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // worker 0 pushed clock 0 already

  std::vector<float> waited;
  grpc::Status waited_status;
  std::thread waiter([&] {
    waited_status = Pull(server.stub(), kUser, {1, 2, 3}, &waited, /*clock=*/1, 5000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(Push(server.stub(), MakePush(1, 0, {{kUser, {2, 3}, g1}})).ok());
  waiter.join();
  ASSERT_TRUE(waited_status.ok()) << waited_status.error_message();

  // Key 2: both workers, summed in id order; keys 1, 3 and 7: one worker, still divided by 2.
  LocalPush(*local, {{kUser,
                      {1, 2, 3},
                      {g0[0] / 2, g0[1] / 2, g0[2] / 2, (g0[3] + g1[0]) / 2, (g0[4] + g1[1]) / 2,
                       (g0[5] + g1[2]) / 2, g1[3] / 2, g1[4] / 2, g1[5] / 2}},
                     {kBias, {7}, {0.125f}}});
  EXPECT_EQ(Bits(waited), Bits(LocalPull(*local, kUser, {1, 2, 3})));
  EXPECT_EQ(Bits(PullOk(server.stub(), kBias, {7})), Bits(LocalPull(*local, kBias, {7})));
  EXPECT_EQ(Push(server.stub(), MakePush(1, 0, {})).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // clock 0 is applied
  const StatsResponse stats = GetStats(server.stub());
  EXPECT_EQ(stats.applied_clock(), 1u);
  EXPECT_EQ(stats.rows_updated(), 4u);
}

TEST(ServerTest, SyncAppliesBufferedClocksInOrder) {
  const JobConfig config = TestConfig(SYNC, 2, SGD);
  TestServer server(config);
  std::unique_ptr<LocalStore> local = Reference(config);
  const std::vector<float> a = Grads(3, 1), b = Grads(3, 2), c = Grads(3, 3), d = Grads(3, 4);
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {5}, a}})).ok());
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 1, {{kUser, {5}, b}})).ok());
  ASSERT_TRUE(Push(server.stub(), MakePush(1, 1, {{kUser, {5}, c}})).ok());
  EXPECT_EQ(GetStats(server.stub()).applied_clock(), 0u);  // clock 1 is complete, clock 0 is not
  ASSERT_TRUE(Push(server.stub(), MakePush(1, 0, {{kUser, {5}, d}})).ok());
  EXPECT_EQ(GetStats(server.stub()).applied_clock(), 2u);
  for (const auto& [x, y] : {std::pair{a, d}, std::pair{b, c}}) {
    LocalPush(*local, {{kUser, {5}, {(x[0] + y[0]) / 2, (x[1] + y[1]) / 2, (x[2] + y[2]) / 2}}});
  }
  std::vector<float> values;
  ASSERT_TRUE(Pull(server.stub(), kUser, {5}, &values, /*clock=*/2).ok());
  EXPECT_EQ(Bits(values), Bits(LocalPull(*local, kUser, {5})));
}

TEST(ServerTest, ShutdownReleasesWaitingPulls) {
  TestServer server(TestConfig(SYNC, 2));
  grpc::Status status;
  std::thread waiter([&] {
    std::vector<float> values;
    status = Pull(server.stub(), kUser, {1}, &values, /*clock=*/1, 10000);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.service().BeginShutdown();
  waiter.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(ServerTest, StatsAndConfig) {
  const JobConfig config = TestConfig(ASYNC, 1);
  TestServer server(config);
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {1, 2}, Grads(6, 1)}})).ok());
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kUser, {2, 3}, Grads(6, 2)}})).ok());
  ASSERT_TRUE(Push(server.stub(), MakePush(0, 0, {{kBias, {4}, {1}}})).ok());
  PullOk(server.stub(), kUser, {1, 2, 3, 4, 5});
  PullOk(server.stub(), kBias, {4});
  const StatsResponse stats = GetStats(server.stub());
  EXPECT_EQ(stats.shard(), 0u);
  EXPECT_EQ(stats.push_requests(), 3u);
  EXPECT_EQ(stats.pull_requests(), 2u);
  EXPECT_EQ(stats.rows_updated(), 5u);
  EXPECT_EQ(stats.rows_pulled(), 6u);
  ASSERT_EQ(stats.tables_size(), 2);
  EXPECT_EQ(stats.tables(0).name(), "user");
  EXPECT_EQ(stats.tables(0).rows(), 3u);
  EXPECT_EQ(stats.tables(0).bytes(), 3u * (3 * 4 + 3 * 8 + 4));  // adam: value, m, v; step
  EXPECT_EQ(stats.tables(1).table(), kBias);
  EXPECT_EQ(stats.tables(1).rows(), 1u);
  EXPECT_EQ(stats.tables(1).bytes(), 1u * (4 + 8 + 4));

  grpc::ClientContext context;
  GetConfigResponse response;
  ASSERT_TRUE(server.stub().GetConfig(&context, GetConfigRequest(), &response).ok());
  EXPECT_EQ(response.config().SerializeAsString(), config.SerializeAsString());
  EXPECT_EQ(response.shard(), 0u);
}

TEST(ServerTest, ConcurrentAsyncPushesAreAllApplied) {
  constexpr int kThreads = 4, kPushes = 25, kKeys = 40;
  const JobConfig config = TestConfig(ASYNC, kThreads, SGD);
  TestServer server(config);
  // Every push is the same, so the result does not depend on the order they arrive in.
  const std::vector<Block> blocks = {{kUser, Range(0, kKeys), std::vector<float>(3 * kKeys, 0.5f)},
                                     {kBias, Range(0, kKeys), std::vector<float>(kKeys, 0.25f)}};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPushes; ++i) {
        EXPECT_TRUE(Push(server.stub(), MakePush(t, i, blocks)).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::unique_ptr<LocalStore> local = Reference(config);
  for (int i = 0; i < kThreads * kPushes; ++i) LocalPush(*local, blocks);
  EXPECT_EQ(GetStats(server.stub()).rows_updated(), uint64_t{kThreads} * kPushes * 2 * kKeys);
  for (uint32_t table : {kUser, kBias}) {
    EXPECT_EQ(Bits(PullOk(server.stub(), table, Range(0, kKeys))),
              Bits(LocalPull(*local, table, Range(0, kKeys))));
  }
}

TEST(ServerTest, CreateRejectsBadConfigs) {
  JobConfig config = TestConfig(ASYNC, 1);
  EXPECT_FALSE(ParameterServerImpl::Create(config, 1).ok());  // one shard
  config.set_num_workers(0);
  EXPECT_FALSE(ParameterServerImpl::Create(config, 0).ok());
  config = TestConfig(CONSISTENCY_UNSPECIFIED, 1);
  EXPECT_FALSE(ParameterServerImpl::Create(config, 0).ok());
  config = TestConfig(ASYNC, 1);
  config.mutable_tables(1)->set_id(kUser);
  EXPECT_FALSE(ParameterServerImpl::Create(config, 0).ok());
  config = TestConfig(ASYNC, 1);
  config.mutable_optimizer()->set_lr(-1);
  EXPECT_FALSE(ParameterServerImpl::Create(config, 0).ok());
}

}  // namespace
}  // namespace psrec

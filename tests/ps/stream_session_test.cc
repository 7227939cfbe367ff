// The server's Stream (ps/stream_session.h, ps/server_stream.cc) over real gRPC on loopback, driven
// with protobuf's generated client: answers in request order, a push applied in front of the pull
// that carries it, bad requests answered while the stream goes on, and SYNC pulls that wait without
// a thread until the push that closes their clock, a timeout, a new generation or shutdown.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ps/local_store.h"
#include "ps/server.h"
#include "tests/ps/request_test_util.h"
#include "tests/ps/test_server.h"

namespace psrec {
namespace {

// The tables kUser (width 3, uniform) and kBias (width 1, zeros), Block and the request builders.
using namespace request_testing;  // NOLINT(google-build-using-namespace): the tests' own helpers
using ::testing::HasSubstr;

JobConfig TestConfig(Consistency consistency, uint32_t workers) {
  return OneShardJob(/*seed=*/29, consistency, workers, SGD, /*lr=*/0.5f);
}

using Stream = server_testing::TestServer::Stream;
using StreamServer = server_testing::TestServer;

StreamRequest Request(const PullRequest* pull, const PushRequest* push, uint64_t timeout_us = 0) {
  StreamRequest request;
  if (pull != nullptr) *request.mutable_pull() = *pull;
  if (push != nullptr) *request.mutable_push() = *push;
  request.set_timeout_us(timeout_us);
  return request;
}

StreamResponse Read(Stream& stream) {
  StreamResponse response;
  EXPECT_TRUE(stream.Read(&response)) << "the stream ended";
  return response;
}

StreamResponse Ask(Stream& stream, const StreamRequest& request) {
  EXPECT_TRUE(stream.Write(request));
  return Read(stream);
}

std::vector<uint32_t> Bits(const std::vector<float>& values) {
  std::vector<uint32_t> bits(values.size());
  std::memcpy(bits.data(), values.data(), values.size() * sizeof(float));
  return bits;
}

std::vector<uint32_t> Bits(const StreamResponse& response) {
  return Bits(std::vector<float>(response.values().begin(), response.values().end()));
}

// What the server's rows should read: a LocalStore with the same config, pushed the same means.
class Reference {
 public:
  explicit Reference(const JobConfig& config)
      : store_(LocalStore::Create(config.tables(), config.optimizer(), config.seed()).value()) {}

  std::vector<uint32_t> Pull(const std::vector<Block>& blocks) {
    std::vector<float> values;
    for (const Block& b : blocks) {
      std::vector<float> rows(b.keys.size() * (b.table == kUser ? 3 : 1));
      const PullBlock block{b.table, b.keys, absl::MakeSpan(rows)};
      EXPECT_TRUE(store_->Pull({&block, 1}).ok());
      values.insert(values.end(), rows.begin(), rows.end());
    }
    return Bits(values);
  }
  void Push(const Block& b) {
    const PushBlock block{b.table, b.keys, b.values};
    EXPECT_TRUE(store_->Push({&block, 1}).ok());
  }

 private:
  std::unique_ptr<LocalStore> store_;
};

TEST(StreamSessionTest, AnswersInOrderWithEachPushAppliedBeforeItsPull) {
  const JobConfig config = TestConfig(ASYNC, 1);
  StreamServer server(config);
  Reference local(config);
  std::unique_ptr<Stream> stream = server.Open();
  const std::vector<Block> rows = {{kUser, {1, 2}, {}}, {kBias, {7}, {}}};
  const PullRequest pull = MakePull(rows);
  const Block grads{kUser, {2}, {0.5f, -0.25f, 1.0f}};
  const PushRequest push = MakePush(0, 0, {grads});
  const PushRequest other = MakePush(0, 0, {{kBias, {8}, {1.0f}}});
  // Three requests written before any answer is read.
  ASSERT_TRUE(stream->Write(Request(&pull, nullptr)));
  ASSERT_TRUE(stream->Write(Request(&pull, &push)));
  ASSERT_TRUE(stream->Write(Request(nullptr, &other)));

  const StreamResponse before = Read(*stream);
  EXPECT_EQ(before.code(), 0) << before.message();
  EXPECT_EQ(Bits(before), local.Pull(rows));
  local.Push(grads);
  const StreamResponse after = Read(*stream);
  EXPECT_EQ(after.code(), 0) << after.message();
  EXPECT_EQ(Bits(after), local.Pull(rows));
  const StreamResponse pushed = Read(*stream);
  EXPECT_EQ(pushed.code(), 0) << pushed.message();
  EXPECT_EQ(pushed.values_size(), 0);

  const StreamResponse empty = Ask(*stream, Request(&PullRequest::default_instance(), nullptr));
  EXPECT_EQ(empty.code(), 0);
  EXPECT_EQ(empty.values_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(StreamSessionTest, DeltaEncodedKeysReadAsTheKeysTheyEncode) {
  const JobConfig config = TestConfig(ASYNC, 1);
  StreamServer server(config);
  Reference local(config);
  std::unique_ptr<Stream> stream = server.Open();
  PullRequest pull = MakePull({{kUser, {3, 1, 4}, {}}});  // 3, 4, 8
  pull.mutable_blocks(0)->set_keys_delta(true);
  const StreamResponse answer = Ask(*stream, Request(&pull, nullptr));
  ASSERT_EQ(answer.code(), 0) << answer.message();
  EXPECT_EQ(Bits(answer), local.Pull({{kUser, {3, 4, 8}, {}}}));
}

// Each bad request gets its error as its answer, changes nothing, and the stream goes on.
TEST(StreamSessionTest, BadRequestsAreAnsweredWithTheirErrorAndTheStreamGoesOn) {
  const JobConfig config = TestConfig(ASYNC, 1);
  StreamServer server(config);
  Reference local(config);
  std::unique_ptr<Stream> stream = server.Open();
  const PullRequest unknown_table = MakePull({{9, {1}, {}}});
  PullRequest old_generation = MakePull({{kUser, {1}, {}}});
  old_generation.set_generation(3);
  PullRequest push_inside = MakePull({{kUser, {1}, {}}});
  *push_inside.mutable_push() = MakePush(0, 0, {{kUser, {1}, {1, 1, 1}}});
  const PushRequest not_finite = MakePush(0, 0, {{kUser, {1}, {1, NAN, 1}}});
  const PushRequest short_values = MakePush(0, 0, {{kUser, {1, 2}, {1, 1, 1}}});
  const PullRequest good = MakePull({{kUser, {1, 2}, {}}});

  struct Case {
    StreamRequest request;
    grpc::StatusCode code;
    const char* says;
  };
  for (const Case& c : {Case{Request(&unknown_table, nullptr), grpc::INVALID_ARGUMENT, "table"},
                        Case{Request(&old_generation, nullptr), grpc::ABORTED, "generation"},
                        Case{Request(&push_inside, nullptr), grpc::INVALID_ARGUMENT, "push"},
                        Case{Request(&good, &not_finite), grpc::INVALID_ARGUMENT, "gradient nan"},
                        Case{Request(nullptr, &short_values), grpc::INVALID_ARGUMENT, "values"}}) {
    const StreamResponse answer = Ask(*stream, c.request);
    EXPECT_EQ(answer.code(), c.code) << c.request.ShortDebugString();
    EXPECT_THAT(answer.message(), HasSubstr(c.says));
    EXPECT_EQ(answer.values_size(), 0);
  }
  const StreamResponse answer = Ask(*stream, Request(&good, nullptr));
  EXPECT_EQ(answer.code(), 0) << answer.message();
  EXPECT_EQ(Bits(answer), local.Pull({{kUser, {1, 2}, {}}}));  // no push was applied
}

// Worker 0's pull of clock 1 rides behind its push of clock 0 and waits (holding no thread) until
// worker 1's push, on another stream, closes clock 0; it then reads the mean of both.
TEST(StreamSessionTest, ASyncPullIsAnsweredByThePushThatClosesItsClock) {
  const JobConfig config = TestConfig(SYNC, 2);
  StreamServer server(config);
  Reference local(config);
  std::unique_ptr<Stream> worker0 = server.Open();
  std::unique_ptr<Stream> worker1 = server.Open();
  const std::vector<Block> rows = {{kUser, {4}, {}}};
  const PullRequest pull = MakePull(rows, /*clock=*/1);
  const PushRequest push0 = MakePush(0, 0, {{kUser, {4}, {1.0f, 2.0f, 3.0f}}});
  const PushRequest push1 = MakePush(1, 0, {{kUser, {4}, {3.0f, 2.0f, 1.0f}}});
  ASSERT_TRUE(worker0->Write(Request(&pull, &push0)));

  const StreamResponse closed = Ask(*worker1, Request(nullptr, &push1));
  EXPECT_EQ(closed.code(), 0) << closed.message();
  local.Push({kUser, {4}, {2.0f, 2.0f, 2.0f}});  // the mean of the two
  const StreamResponse answer = Read(*worker0);
  ASSERT_EQ(answer.code(), 0) << answer.message();
  EXPECT_EQ(Bits(answer), local.Pull(rows));

  // Worker 1's own pull of clock 1 is ready at once.
  const StreamResponse ready = Ask(*worker1, Request(&pull, nullptr));
  EXPECT_EQ(Bits(ready), local.Pull(rows));
}

TEST(StreamSessionTest, AWaitingPullTimesOutNamingWhoPushedAndTheStreamGoesOn) {
  StreamServer server(TestConfig(SYNC, 2));
  std::unique_ptr<Stream> stream = server.Open();
  const PullRequest waits = MakePull({{kUser, {1}, {}}}, /*clock=*/1);
  const PushRequest push0 = MakePush(0, 0, {});
  const StreamResponse timed_out = Ask(*stream, Request(&waits, &push0, /*timeout_us=*/20000));
  EXPECT_EQ(timed_out.code(), grpc::DEADLINE_EXCEEDED);
  EXPECT_EQ(timed_out.message(),
            "pull at clock 1 timed out: clock 0 has pushes from workers [0] of 2");
  const PullRequest ready = MakePull({{kUser, {1}, {}}}, /*clock=*/0);
  EXPECT_EQ(Ask(*stream, Request(&ready, nullptr)).code(), 0);
}

// A restore to a new generation answers the old generation's waiting pull ABORTED (whether it
// arrives before the restore, and waits, or after, and is refused at once).
TEST(StreamSessionTest, ANewGenerationAbortsAWaitingPull) {
  StreamServer server(TestConfig(SYNC, 2));
  std::unique_ptr<Stream> stream = server.Open();
  const PullRequest waits = MakePull({{kUser, {1}, {}}}, /*clock=*/1);
  ASSERT_TRUE(stream->Write(Request(&waits, nullptr)));
  RestoreRequest restore;
  restore.set_generation(1);
  restore.set_keep_rows(true);
  restore.add_workers(0);
  restore.add_workers(1);
  RestoreResponse restored;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(server.stub().Restore(&context, restore, &restored).ok());
  const StreamResponse answer = Read(*stream);
  EXPECT_EQ(answer.code(), grpc::ABORTED);
  EXPECT_THAT(answer.message(), HasSubstr("generation 1"));
}

// Shutdown ends a waiting pull: answered UNAVAILABLE, or its stream cancelled; it never hangs.
TEST(StreamSessionTest, ShutdownEndsAWaitingPull) {
  StreamServer server(TestConfig(SYNC, 2));
  std::unique_ptr<Stream> stream = server.Open();
  const PullRequest waits = MakePull({{kUser, {1}, {}}}, /*clock=*/1);
  ASSERT_TRUE(stream->Write(Request(&waits, nullptr)));
  server.service().BeginShutdown();
  StreamResponse answer;
  if (stream->Read(&answer)) {
    EXPECT_EQ(answer.code(), grpc::UNAVAILABLE) << answer.message();
  } else {
    EXPECT_FALSE(stream->Finish().ok());
  }
  // A stream opened after shutdown began ends at once.
  const PullRequest ready = MakePull({{kUser, {1}, {}}});
  std::unique_ptr<Stream> late = server.Open();
  StreamResponse none;
  late->Write(Request(&ready, nullptr));
  EXPECT_FALSE(late->Read(&none));
  EXPECT_EQ(late->Finish().error_code(), grpc::UNAVAILABLE);
}

}  // namespace
}  // namespace psrec

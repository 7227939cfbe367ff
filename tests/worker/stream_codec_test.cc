// The client's hand-written half of the Stream wire format (worker/stream_codec.h), pinned to
// proto/ps.proto by protobuf's own parser and serializer: requests it writes parse as the
// StreamRequest they mean, and answers protobuf writes read back into the caller's buffers.
#include "worker/stream_codec.h"

#include <cstdint>
#include <string>
#include <vector>

#include "common/sharding.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "gtest/gtest.h"
#include "proto/ps.pb.h"

namespace psrec {
namespace {

constexpr uint32_t kWide = 0;    // width 2
constexpr uint32_t kNarrow = 3;  // width 1
const std::vector<uint32_t> kWidth = {2, 0, 0, 1};

StreamRequest Parse(const std::vector<grpc::Slice>& parts) {
  std::string bytes;
  for (const grpc::Slice& part : parts) {
    bytes.append(reinterpret_cast<const char*>(part.begin()), part.size());
  }
  StreamRequest request;
  EXPECT_TRUE(request.ParseFromString(bytes));
  return request;
}

std::vector<uint64_t> Keys(const RowBlock& block) {
  std::vector<uint64_t> keys(block.keys().begin(), block.keys().end());
  if (block.keys_delta()) {
    for (size_t i = 1; i < keys.size(); ++i) keys[i] += keys[i - 1];
  }
  return keys;
}

grpc::ByteBuffer Serialized(const StreamResponse& response) {
  grpc::ByteBuffer buffer;
  bool own;
  EXPECT_TRUE(grpc::SerializationTraits<StreamResponse>::Serialize(response, &buffer, &own).ok());
  return buffer;
}

TEST(StreamCodecTest, APullParsesWithItsKeysDeltaEncodedOnlyWhenAscendingAndShorter) {
  const std::vector<uint64_t> ascending = {1000, 1001, 1003, 70000};
  const std::vector<uint64_t> unordered = {5, 3, 9};
  std::vector<float> a(8), b(3);
  const std::vector<PullBlock> blocks = {{kWide, ascending, absl::MakeSpan(a)},
                                         {kNarrow, unordered, absl::MakeSpan(b)}};
  Routing routing;
  RoutePull(blocks, kWidth, 1, &routing);
  const StreamRequest request =
      Parse({EncodePull(blocks, routing, 0, RequestHeader{7, 3, 250000, 0})});
  ASSERT_TRUE(request.has_pull());
  EXPECT_FALSE(request.has_push());
  EXPECT_EQ(request.timeout_us(), 250000u);
  EXPECT_EQ(request.pull().clock(), 7u);
  EXPECT_EQ(request.pull().generation(), 3u);
  ASSERT_EQ(request.pull().blocks_size(), 2);
  EXPECT_EQ(request.pull().blocks(0).table(), kWide);
  EXPECT_TRUE(request.pull().blocks(0).keys_delta());
  EXPECT_EQ(Keys(request.pull().blocks(0)), ascending);
  EXPECT_FALSE(request.pull().blocks(1).keys_delta());
  EXPECT_EQ(Keys(request.pull().blocks(1)), unordered);
  EXPECT_EQ(request.pull().blocks(1).values_size(), 0);
}

// Every shard gets one block per caller block, empty or not, holding the keys ShardOf gives it in
// the caller's order; a pull part and a push part concatenate into one request.
TEST(StreamCodecTest, EachShardGetsItsKeysAndGradientsAndPartsConcatenate) {
  constexpr uint32_t kShards = 3;
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 40; ++k) keys.push_back(k * 7919 % 1000);
  std::vector<float> grads(keys.size() * 2), values(keys.size() * 2);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.5f * static_cast<float>(i) - 3.0f;
  const std::vector<PushBlock> pushes = {{kWide, keys, grads}, {kNarrow, {}, {}}};
  const std::vector<PullBlock> pulls = {{kWide, keys, absl::MakeSpan(values)}};
  Routing push_routing, pull_routing;
  RoutePush(pushes, kWidth, kShards, &push_routing);
  RoutePull(pulls, kWidth, kShards, &pull_routing);
  size_t total = 0;
  for (uint32_t s = 0; s < kShards; ++s) {
    const StreamRequest request =
        Parse({EncodePush(pushes, push_routing, s, RequestHeader{2, 1, 9, 4}),
               EncodePull(pulls, pull_routing, s, RequestHeader{3, 1, 9, 0})});
    std::vector<uint64_t> mine;
    std::vector<float> my_grads;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (ShardOf(kWide, keys[i], kShards) != s) continue;
      mine.push_back(keys[i]);
      my_grads.insert(my_grads.end(), {grads[2 * i], grads[2 * i + 1]});
    }
    total += mine.size();
    ASSERT_EQ(request.push().blocks_size(), 2);
    EXPECT_EQ(request.push().worker_id(), 4u);
    EXPECT_EQ(request.push().clock(), 2u);
    EXPECT_EQ(Keys(request.push().blocks(0)), mine);
    EXPECT_EQ(std::vector<float>(request.push().blocks(0).values().begin(),
                                 request.push().blocks(0).values().end()),
              my_grads);
    EXPECT_EQ(request.push().blocks(1).table(), kNarrow);
    EXPECT_EQ(request.push().blocks(1).keys_size(), 0);
    ASSERT_EQ(request.pull().blocks_size(), 1);
    EXPECT_EQ(request.pull().clock(), 3u);
    EXPECT_EQ(Keys(request.pull().blocks(0)), mine);
  }
  EXPECT_EQ(total, keys.size());
}

// Two shards' answers, written by protobuf, land in the caller's rows in the caller's key order.
TEST(StreamCodecTest, AnswersScatterIntoTheCallersRows) {
  constexpr uint32_t kShards = 2;
  const std::vector<uint64_t> keys = {11, 4, 99, 20, 5};
  std::vector<float> values(keys.size() * 2, -1.0f);
  const std::vector<PullBlock> blocks = {{kWide, keys, absl::MakeSpan(values)}};
  Routing routing;
  RoutePull(blocks, kWidth, kShards, &routing);
  // Row of key k: {k, k + 0.5}.
  std::vector<grpc::ByteBuffer> answers(kShards);
  std::vector<AnswerReader> readers(kShards);
  std::vector<AnswerReader*> reader_ptrs;
  for (uint32_t s = 0; s < kShards; ++s) {
    StreamResponse response;
    response.set_pad("xyz");
    for (uint64_t k : keys) {
      if (ShardOf(kWide, k, kShards) != s) continue;
      response.add_values(static_cast<float>(k));
      response.add_values(static_cast<float>(k) + 0.5f);
    }
    answers[s] = Serialized(response);
    ASSERT_TRUE(readers[s].Open(&answers[s], routing.count[routing.at(s, 0)] * 2).ok());
    reader_ptrs.push_back(&readers[s]);
  }
  ASSERT_TRUE(ScatterRows(blocks, routing, reader_ptrs));
  for (AnswerReader& reader : readers) EXPECT_TRUE(reader.Close().ok());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(values[2 * i], static_cast<float>(keys[i]));
    EXPECT_EQ(values[2 * i + 1], static_cast<float>(keys[i]) + 0.5f);
  }
}

TEST(StreamCodecTest, AnAnswerWithAnErrorOpensAsThatError) {
  StreamResponse response;
  response.set_code(static_cast<int32_t>(absl::StatusCode::kAborted));
  response.set_message("the server moved to generation 2");
  grpc::ByteBuffer answer = Serialized(response);
  AnswerReader reader;
  const absl::Status status = reader.Open(&answer, 6);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(status.message(), "the server moved to generation 2");
}

TEST(StreamCodecTest, AnAnswerOfAnotherSizeOrTruncatedIsInternal) {
  StreamResponse response;
  for (int i = 0; i < 4; ++i) response.add_values(1.0f);
  grpc::ByteBuffer answer = Serialized(response);
  AnswerReader reader;
  EXPECT_EQ(reader.Open(&answer, 6).code(), absl::StatusCode::kInternal);
  grpc::ByteBuffer none = Serialized(StreamResponse());
  EXPECT_EQ(reader.Open(&none, 6).code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(reader.Open(&none, 0).ok());  // a push's answer
  EXPECT_TRUE(reader.Close().ok());

  std::string bytes;
  ASSERT_TRUE(response.SerializeToString(&bytes));
  bytes.resize(bytes.size() - 3);  // the last float cut short
  grpc::Slice slice(bytes);
  grpc::ByteBuffer truncated(&slice, 1);
  ASSERT_TRUE(reader.Open(&truncated, 4).ok());  // the header says 4 floats
  float out[4];
  EXPECT_FALSE(reader.Read(out, 4));
}

}  // namespace
}  // namespace psrec

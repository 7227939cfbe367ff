// The client's half of the Stream wire format (proto/ps.proto): it routes a pull's or a push's keys
// to the shards and writes each shard's part of the StreamRequest straight from the caller's
// buffers into one gRPC slice (keys as varints, delta-encoded where that is shorter, gradients as
// raw little-endian floats), and reads each shard's StreamResponse straight into the caller's
// buffers. Nothing goes through protobuf message objects, so a float is copied once on the way out
// (into the slice) and once on the way in (out of the received slices).
//
// The slices are valid serialized StreamRequest fragments: a pull part (field pull, and
// timeout_us) and a push part (field push, and timeout_us) concatenate into one request, in either
// order. tests/worker/stream_codec_test.cc parses them with protobuf.
#ifndef PSREC_WORKER_STREAM_CODEC_H_
#define PSREC_WORKER_STREAM_CODEC_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/param_store.h"
#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/slice.h"

namespace psrec {

// Where one call's keys go, and how each shard's share of each block is encoded. Reused between
// calls so that a call allocates nothing once sizes settle.
struct Routing {
  uint32_t num_shards = 0;
  size_t num_blocks = 0;
  std::vector<uint32_t> key_shard;  // for every block's keys, concatenated
  // Indexed by shard * num_blocks + block:
  std::vector<uint32_t> count;        // keys
  std::vector<uint64_t> plain_bytes;  // of the keys as varints
  std::vector<uint64_t> delta_bytes;  // of the keys delta-encoded, while ascending
  std::vector<uint8_t> ascending;     // 1 while the keys rise strictly
  std::vector<uint64_t> last_key;     // per shard, while routing
  // The width of a block's table, per block.
  std::vector<uint32_t> width;

  size_t at(uint32_t shard, size_t block) const { return shard * num_blocks + block; }
  bool delta(uint32_t shard, size_t block) const {
    const size_t i = at(shard, block);
    return ascending[i] != 0 && delta_bytes[i] < plain_bytes[i];
  }
};

// The header fields that every request carries.
struct RequestHeader {
  uint64_t clock = 0;
  uint64_t generation = 0;
  uint64_t timeout_us = 0;
  uint32_t worker_id = 0;  // pushes only
};

// Routes `keys` of each block (table ids index `width`, which the caller has checked) to
// num_shards shards by ShardOf.
void RoutePull(absl::Span<const PullBlock> blocks, absl::Span<const uint32_t> width,
               uint32_t num_shards, Routing* routing);
void RoutePush(absl::Span<const PushBlock> blocks, absl::Span<const uint32_t> width,
               uint32_t num_shards, Routing* routing);

// Shard `shard`'s pull part: StreamRequest.pull with one RowBlock per caller block (even an empty
// one, so that block b of every shard's answer is the caller's block b), and timeout_us.
grpc::Slice EncodePull(absl::Span<const PullBlock> blocks, const Routing& routing, uint32_t shard,
                       const RequestHeader& header);
// Shard `shard`'s push part: StreamRequest.push with its keys and gradients, and timeout_us.
grpc::Slice EncodePush(absl::Span<const PushBlock> blocks, const Routing& routing, uint32_t shard,
                       const RequestHeader& header);

// Reads one StreamResponse: its status, then its rows in order. Not thread-safe; the answer must
// outlive the reader's use of it.
class AnswerReader {
 public:
  // Reads the answer up to its values. Returns the answer's status: its code and message when it
  // reports an error, OK when it carries exactly `floats` floats, and INTERNAL ("...") for a
  // malformed answer or another number of floats.
  absl::Status Open(grpc::ByteBuffer* answer, size_t floats);
  // Copies the next n floats of an opened answer into `out`; false when the answer ends early.
  bool Read(float* out, size_t n);
  // After the last Read: INTERNAL if the rest of the answer is malformed or reports an error.
  absl::Status Close();
  // Forgets the answer it was open on, if any, without reading the rest. Call it before that
  // answer changes or goes: the open reader still points into it, and letting go of it reads it.
  void Reset();

 private:
  absl::Status ReadFields(bool stop_at_values, size_t floats);

  std::optional<grpc::ProtoBufferReader> reader_;
  std::optional<google::protobuf::io::CodedInputStream> input_;
  int32_t code_ = 0;
  std::string message_;
};

// Scatters the opened answers' rows (one reader per shard, each opened for that shard's floats)
// into the blocks routed by `routing`. False when an answer ends early.
bool ScatterRows(absl::Span<const PullBlock> blocks, const Routing& routing,
                 absl::Span<AnswerReader* const> readers);

}  // namespace psrec

#endif  // PSREC_WORKER_STREAM_CODEC_H_

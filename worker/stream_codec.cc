#include "worker/stream_codec.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/sharding.h"

namespace psrec {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "floats are copied as they lie in memory; protobuf's are little-endian");

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

constexpr uint32_t Tag(uint32_t field, WireType type) { return (field << 3) | type; }

// Field numbers of proto/ps.proto.
constexpr uint32_t kRequestPull = 1, kRequestPush = 2, kRequestTimeout = 3;
constexpr uint32_t kPullBlocks = 1, kPullClock = 2, kPullGeneration = 5;
constexpr uint32_t kPushBlocks = 1, kPushClock = 2, kPushWorker = 3, kPushGeneration = 4;
constexpr uint32_t kBlockTable = 1, kBlockKeys = 2, kBlockValues = 3, kBlockDelta = 4;
constexpr uint32_t kAnswerCode = 1, kAnswerMessage = 2, kAnswerValues = 3;

size_t VarintSize(uint64_t v) { return CodedOutputStream::VarintSize64(v); }

// Bytes of a varint field, or 0 for a zero value (proto3 leaves it out).
size_t VarintFieldSize(uint64_t v) { return v == 0 ? 0 : 1 + VarintSize(v); }
// Bytes of a length-delimited field of `len` bytes (tag, length, payload).
size_t LengthFieldSize(uint64_t len) { return 1 + VarintSize(len) + len; }

uint8_t* PutVarint(uint64_t v, uint8_t* p) { return CodedOutputStream::WriteVarint64ToArray(v, p); }
uint8_t* PutVarintField(uint32_t field, uint64_t v, uint8_t* p) {
  if (v == 0) return p;
  *p++ = static_cast<uint8_t>(Tag(field, kVarint));
  return PutVarint(v, p);
}
uint8_t* PutLengthHeader(uint32_t field, uint64_t len, uint8_t* p) {
  *p++ = static_cast<uint8_t>(Tag(field, kLengthDelimited));
  return PutVarint(len, p);
}

template <typename Block>
void Route(absl::Span<const Block> blocks, absl::Span<const uint32_t> width, uint32_t num_shards,
           Routing* r) {
  r->num_shards = num_shards;
  r->num_blocks = blocks.size();
  const size_t cells = size_t{num_shards} * blocks.size();
  r->count.assign(cells, 0);
  r->plain_bytes.assign(cells, 0);
  r->delta_bytes.assign(cells, 0);
  r->ascending.assign(cells, 1);
  r->key_shard.clear();
  r->width.clear();
  for (size_t b = 0; b < blocks.size(); ++b) {
    r->width.push_back(width[blocks[b].table]);
    r->last_key.assign(num_shards, 0);
    for (const uint64_t key : blocks[b].keys) {
      const uint32_t s = num_shards == 1 ? 0 : ShardOf(blocks[b].table, key, num_shards);
      r->key_shard.push_back(s);
      const size_t i = r->at(s, b);
      r->plain_bytes[i] += VarintSize(key);
      if (r->count[i] > 0 && key <= r->last_key[s]) r->ascending[i] = 0;
      r->delta_bytes[i] += VarintSize(r->count[i] == 0 ? key : key - r->last_key[s]);
      r->last_key[s] = key;
      ++r->count[i];
    }
  }
}

// Bytes of shard `s`'s RowBlock for block `b`: table, keys, keys_delta and, for a push, values.
size_t BlockSize(const Routing& r, uint32_t table, uint32_t s, size_t b, bool values) {
  const size_t i = r.at(s, b);
  size_t size = VarintFieldSize(table);
  if (r.count[i] == 0) return size;
  const bool delta = r.delta(s, b);
  size += LengthFieldSize(delta ? r.delta_bytes[i] : r.plain_bytes[i]);
  if (delta) size += 2;
  if (values) size += LengthFieldSize(uint64_t{r.count[i]} * r.width[b] * sizeof(float));
  return size;
}

// Writes shard `s`'s RowBlock for block `b` (whose keys start at key_shard[first]): its header
// and keys, then, with `grads`, its gradients.
template <typename Block>
uint8_t* PutBlock(const Block& block, const Routing& r, uint32_t s, size_t b, size_t first,
                  const float* grads, uint8_t* p) {
  const size_t i = r.at(s, b);
  constexpr uint32_t kBlocks = std::is_same_v<Block, PushBlock> ? kPushBlocks : kPullBlocks;
  p = PutLengthHeader(kBlocks, BlockSize(r, block.table, s, b, grads != nullptr), p);
  p = PutVarintField(kBlockTable, block.table, p);
  if (r.count[i] == 0) return p;
  const bool delta = r.delta(s, b);
  p = PutLengthHeader(kBlockKeys, delta ? r.delta_bytes[i] : r.plain_bytes[i], p);
  uint64_t last = 0;
  for (size_t k = 0; k < block.keys.size(); ++k) {
    if (r.key_shard[first + k] != s) continue;
    p = PutVarint(delta ? block.keys[k] - last : block.keys[k], p);
    last = block.keys[k];
  }
  if (delta) p = PutVarintField(kBlockDelta, 1, p);
  if (grads == nullptr) return p;
  const size_t row_bytes = r.width[b] * sizeof(float);
  p = PutLengthHeader(kBlockValues, uint64_t{r.count[i]} * row_bytes, p);
  for (size_t k = 0; k < block.keys.size(); ++k) {
    if (r.key_shard[first + k] != s) continue;
    std::memcpy(p, grads + k * r.width[b], row_bytes);
    p += row_bytes;
  }
  return p;
}

// Writes StreamRequest field `field` (pull or push) for shard `s`, then timeout_us.
template <typename Block>
grpc::Slice Encode(absl::Span<const Block> blocks, const Routing& r, uint32_t s,
                   const RequestHeader& h) {
  constexpr bool kPush = std::is_same_v<Block, PushBlock>;
  size_t body = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    body += LengthFieldSize(BlockSize(r, blocks[b].table, s, b, kPush));
  }
  body += VarintFieldSize(h.clock) + VarintFieldSize(h.generation);
  if constexpr (kPush) body += VarintFieldSize(h.worker_id);
  const size_t total = LengthFieldSize(body) + VarintFieldSize(h.timeout_us);
  grpc::Slice slice(total);
  // A fresh slice that nothing else refers to yet: ours to write.
  auto* const begin = const_cast<uint8_t*>(slice.begin());
  uint8_t* p = PutLengthHeader(kPush ? kRequestPush : kRequestPull, body, begin);
  size_t first = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const float* grads = nullptr;
    if constexpr (kPush) grads = blocks[b].grads.data();
    p = PutBlock(blocks[b], r, s, b, first, grads, p);
    first += blocks[b].keys.size();
  }
  if constexpr (kPush) {
    p = PutVarintField(kPushClock, h.clock, p);
    p = PutVarintField(kPushWorker, h.worker_id, p);
    p = PutVarintField(kPushGeneration, h.generation, p);
  } else {
    p = PutVarintField(kPullClock, h.clock, p);
    p = PutVarintField(kPullGeneration, h.generation, p);
  }
  p = PutVarintField(kRequestTimeout, h.timeout_us, p);
  return slice;
}

}  // namespace

void RoutePull(absl::Span<const PullBlock> blocks, absl::Span<const uint32_t> width,
               uint32_t num_shards, Routing* routing) {
  Route(blocks, width, num_shards, routing);
}

void RoutePush(absl::Span<const PushBlock> blocks, absl::Span<const uint32_t> width,
               uint32_t num_shards, Routing* routing) {
  Route(blocks, width, num_shards, routing);
}

grpc::Slice EncodePull(absl::Span<const PullBlock> blocks, const Routing& routing, uint32_t shard,
                       const RequestHeader& header) {
  return Encode(blocks, routing, shard, header);
}

grpc::Slice EncodePush(absl::Span<const PushBlock> blocks, const Routing& routing, uint32_t shard,
                       const RequestHeader& header) {
  return Encode(blocks, routing, shard, header);
}

void AnswerReader::Reset() {
  input_.reset();  // its destructor backs up into reader_, which must still be whole
  reader_.reset();
}

absl::Status AnswerReader::Open(grpc::ByteBuffer* answer, size_t floats) {
  Reset();
  reader_.emplace(answer);
  if (!reader_->status().ok()) return absl::InternalError("unreadable answer");
  input_.emplace(&*reader_);
  code_ = 0;
  message_.clear();
  return ReadFields(/*stop_at_values=*/true, floats);
}

// Reads fields up to the values (with stop_at_values) or to the end. An answer with floats must
// have its values; one without may leave them out.
absl::Status AnswerReader::ReadFields(bool stop_at_values, size_t floats) {
  CodedInputStream& in = *input_;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;  // the end (or a malformed tag: ReadTag says 0 either way)
    const uint32_t field = tag >> 3;
    uint64_t value = 0;
    uint32_t length = 0;
    if (tag == Tag(kAnswerCode, kVarint)) {
      if (!in.ReadVarint64(&value)) return absl::InternalError("truncated code");
      code_ = static_cast<int32_t>(value);
    } else if (tag == Tag(kAnswerMessage, kLengthDelimited)) {
      if (!in.ReadVarint32(&length) || !in.ReadString(&message_, static_cast<int>(length))) {
        return absl::InternalError("truncated message");
      }
    } else if (field == kAnswerValues) {
      if (!stop_at_values || tag != Tag(kAnswerValues, kLengthDelimited) ||
          !in.ReadVarint32(&length) || length != floats * sizeof(float)) {
        return absl::InternalError(
            absl::StrCat("answered with ", length / sizeof(float), " floats for ", floats));
      }
      if (code_ != 0) break;
      return absl::OkStatus();
    } else {
      bool skipped = false;
      switch (tag & 7) {
        case kVarint:
          skipped = in.ReadVarint64(&value);
          break;
        case kFixed64:
          skipped = in.Skip(8);
          break;
        case kLengthDelimited:
          skipped = in.ReadVarint32(&length) && in.Skip(static_cast<int>(length));
          break;
        case kFixed32:
          skipped = in.Skip(4);
          break;
        default:
          break;
      }
      if (!skipped) return absl::InternalError(absl::StrCat("malformed field ", field));
    }
  }
  if (code_ != 0) {
    return absl::Status(static_cast<absl::StatusCode>(code_ > 0 && code_ <= 16 ? code_ : 2),
                        message_);
  }
  if (stop_at_values && floats > 0) {
    return absl::InternalError(absl::StrCat("answered with no rows for ", floats, " floats"));
  }
  return absl::OkStatus();
}

bool AnswerReader::Read(float* out, size_t n) {
  return input_->ReadRaw(out, static_cast<int>(n * sizeof(float)));
}

absl::Status AnswerReader::Close() {
  absl::Status s = ReadFields(/*stop_at_values=*/false, 0);
  Reset();
  return s;
}

bool ScatterRows(absl::Span<const PullBlock> blocks, const Routing& routing,
                 absl::Span<AnswerReader* const> readers) {
  size_t k = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const size_t width = routing.width[b];
    float* out = blocks[b].values.data();
    for (size_t i = 0; i < blocks[b].keys.size(); ++i, ++k, out += width) {
      if (!readers[routing.key_shard[k]]->Read(out, width)) return false;
    }
  }
  return true;
}

}  // namespace psrec

#include "ps/stream_answer.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/slice.h"
#include "proto/ps.pb.h"

namespace psrec {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "rows are written as they lie in memory; protobuf's floats are little-endian");

// Tags of StreamResponse's length-delimited fields: (field number << 3) | 2.
constexpr uint8_t kValuesTag = (3 << 3) | 2;
constexpr uint8_t kPadTag = (15 << 3) | 2;

// Bytes of `pad` (tag, length and zeros) that put the floats after a header of `header` bytes,
// starting at `begin`, on a 4-byte boundary: 0, 2, 3 or 5 (a pad field takes at least 2 bytes).
size_t PadFor(const uint8_t* begin, size_t header) {
  const size_t misaligned = (reinterpret_cast<uintptr_t>(begin) + header) % alignof(float);
  if (misaligned == 0) return 0;
  const size_t pad = alignof(float) - misaligned;
  return pad == 1 ? 5 : pad;
}

}  // namespace

grpc::ByteBuffer RowsAnswer(size_t floats, absl::FunctionRef<void(absl::Span<float>)> fill) {
  const size_t bytes = floats * sizeof(float);
  const size_t header = 1 + google::protobuf::io::CodedOutputStream::VarintSize64(bytes);
  constexpr size_t kMaxPad = 5;
  grpc::Slice slice(kMaxPad + header + bytes);
  // A fresh slice that nothing else refers to yet: ours to write.
  uint8_t* const begin = const_cast<uint8_t*>(slice.begin());
  uint8_t* p = begin;
  const size_t pad = floats == 0 ? 0 : PadFor(begin, header);
  if (pad > 0) {
    *p++ = kPadTag;
    *p++ = static_cast<uint8_t>(pad - 2);
    std::memset(p, 0, pad - 2);
    p += pad - 2;
  }
  size_t used = 0;
  if (floats > 0) {
    *p++ = kValuesTag;
    p = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(bytes, p);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): aligned raw bytes, as malloc's
    fill(absl::MakeSpan(reinterpret_cast<float*>(p), floats));
    used = pad + header + bytes;
  }
  grpc::Slice answer = slice.sub(0, used);
  return grpc::ByteBuffer(&answer, 1);
}

grpc::ByteBuffer StatusAnswer(const absl::Status& status) {
  StreamResponse response;
  response.set_code(static_cast<int32_t>(status.code()));
  response.set_message(std::string(status.message()));
  grpc::ByteBuffer buffer;
  bool own_buffer;
  (void)grpc::SerializationTraits<StreamResponse>::Serialize(response, &buffer, &own_buffer);
  return buffer;
}

}  // namespace psrec

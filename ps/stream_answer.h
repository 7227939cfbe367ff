// The answers a server writes on a Stream: serialized StreamResponse messages (proto/ps.proto),
// built by hand where that saves a copy: a pull's rows are written by the tables straight into the
// buffer that gRPC sends.
#ifndef PSREC_PS_STREAM_ANSWER_H_
#define PSREC_PS_STREAM_ANSWER_H_

#include <cstddef>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "grpcpp/support/byte_buffer.h"

namespace psrec {

// A StreamResponse of `floats` values, which `fill` writes into the span it is given (4-byte
// aligned, uninitialized before). Zero floats: an empty message.
grpc::ByteBuffer RowsAnswer(size_t floats, absl::FunctionRef<void(absl::Span<float>)> fill);

// A StreamResponse with `status`'s code and message (an error, or OK with no values).
grpc::ByteBuffer StatusAnswer(const absl::Status& status);

}  // namespace psrec

#endif  // PSREC_PS_STREAM_ANSWER_H_

// A worker's end of one shard's Stream (proto/ps.proto): a long-lived bidirectional gRPC call that
// carries this client's requests to one shard and brings the answers back in request order.
//
// Completion-queue driven, by the one thread that owns the store (no gRPC thread hands anything
// over): Send queues a request, and the owner feeds every completion that names this stream to
// OnEvent while it waits in its queue for an answer. Writes go out one at a time, in order, each as
// soon as the one before is written; one read is always pending. The call starts lazily with the
// first request (its initial metadata, the token included, rides with that request), and is
// restarted by the next Send after it fails.
//
// Deadlines: every request carries its own. The stream has none, since it outlives any request; a
// request whose answer has not come by its deadline fails with DEADLINE_EXCEEDED, and the stream
// is cancelled (its state is unknown) and restarted for the next request.
#ifndef PSREC_WORKER_SHARD_STREAM_H_
#define PSREC_WORKER_SHARD_STREAM_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace psrec {

// Not thread-safe: used by its store's thread alone.
class ShardStream {
 public:
  // The operations whose completions come back through the queue; a tag is
  // (shard << kOpBits) | op.
  enum Op : uintptr_t { kRead = 1, kWrite = 2, kFinish = 3, kUnary = 4 };
  static constexpr int kOpBits = 3;
  static void* MakeTag(uint32_t shard, Op op) {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a gRPC tag is an opaque pointer-sized value
    return reinterpret_cast<void*>((uintptr_t{shard} << kOpBits) | op);
  }
  static uint32_t TagShard(void* tag) {
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(tag) >> kOpBits);
  }
  static Op TagOp(void* tag) {
    return static_cast<Op>(reinterpret_cast<uintptr_t>(tag) & ((1u << kOpBits) - 1));
  }

  // `channel` leads to shard `shard`; completions go to `cq`, which outlives this stream.
  ShardStream(uint32_t shard, std::shared_ptr<grpc::Channel> channel, grpc::CompletionQueue* cq);
  // The stream must be idle (Quiet) or cancelled and drained by the owner first.
  ~ShardStream();

  ShardStream(const ShardStream&) = delete;
  ShardStream& operator=(const ShardStream&) = delete;

  // Queues `request` (a serialized StreamRequest), whose answer is due by `deadline`. Starts the
  // stream when it is not running; the stream must not be failing (Restartable or running).
  void Send(grpc::ByteBuffer request, absl::Time deadline);

  // Handles a completion of this stream's `op`.
  void OnEvent(Op op, bool ok);

  // Requests sent and not yet taken with TakeAnswer.
  size_t outstanding() const { return expected_.size(); }
  // Request `index` (0: the oldest not yet taken) has its answer, or its failure.
  bool done(size_t index) const { return index < expected_.size() && expected_[index].done; }
  // Takes request `index`'s answer (done(index) must be true): OK and the answer's bytes, or the
  // stream's failure (its status, or the deadline's).
  grpc::Status TakeAnswer(size_t index, grpc::ByteBuffer* answer);

  // The earliest deadline of a request not yet answered; InfiniteFuture when there is none.
  absl::Time next_deadline() const;
  // When a request's deadline has passed by `now`: fails the stream, and with it every request
  // not answered yet, with `status`.
  void ExpireBefore(absl::Time now, const grpc::Status& status);
  // Cancels the stream; its requests fail with `status` (CANCELLED when OK).
  void Cancel(const grpc::Status& status);

  // The next call starts on `channel`; a call under way keeps its own (its context holds it).
  void UseChannel(std::shared_ptr<grpc::Channel> channel) { channel_ = std::move(channel); }

  // No operation of the call is pending: the stream may go.
  bool Quiet() const { return !reading_ && !writing_ && !finishing_; }
  // The call failed and is over: the next Send starts a new one.
  bool Ended() const { return call_ != nullptr && broken_ && Quiet(); }
  // Every queued request has been written, or the stream failed.
  bool Written() const { return !writing_ && writes_.empty(); }
  // The call failed and still has operations pending: the owner must feed their completions
  // before the next Send.
  bool Failing() const { return broken_ && !Quiet(); }

 private:
  struct Expected {
    absl::Time deadline;
    bool done = false;
    grpc::Status status;
    grpc::ByteBuffer answer;
  };

  void Start();
  void WriteNext();
  // The call failed (a read or write said so, or it was cancelled): fail what is outstanding once
  // Finish gives the status.
  void Broken();
  void FailOutstanding(const grpc::Status& status);

  const uint32_t shard_;
  std::shared_ptr<grpc::Channel> channel_;  // of the next call
  grpc::CompletionQueue* const cq_;

  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool broken_ = false;  // no more writes or reads on this call
  bool final_status_asked_ = false;
  bool reading_ = false, writing_ = false, finishing_ = false;
  grpc::Status final_status_;
  grpc::Status failure_;  // set when the client ended the call (deadline, cancel)
  grpc::ByteBuffer incoming_;
  std::deque<grpc::ByteBuffer> writes_;  // front is being written while writing_
  std::deque<Expected> expected_;        // answers due, oldest first
  size_t answered_ = 0;                  // of expected_, how many have their answer (front first)
};

}  // namespace psrec

#endif  // PSREC_WORKER_SHARD_STREAM_H_

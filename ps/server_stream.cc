// ParameterServerImpl's streamed data path (ps/server.h: StreamAdmit, StreamAwait, StreamRead):
// the same checks, barrier and rows as the unary Pull and Push in server.cc.
#include <utility>

#include "absl/strings/str_cat.h"
#include "ps/server.h"
#include "ps/sharded_table.h"
#include "ps/stream_answer.h"

namespace psrec {
namespace {

// Turns delta-encoded keys (RowBlock.keys_delta) back into keys, in place.
void RestoreKeys(google::protobuf::RepeatedPtrField<RowBlock>* blocks) {
  for (RowBlock& block : *blocks) {
    if (!block.keys_delta()) continue;
    uint64_t key = 0;
    for (uint64_t& k : *block.mutable_keys()) {
      key += k;  // wraps for a malformed request; the checks then refuse the keys
      k = key;
    }
    block.set_keys_delta(false);
  }
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ParameterServerImpl::Stream(
    grpc::CallbackServerContext* context) {
  return new StreamSession(this, &streams_, context);
}

absl::Status ParameterServerImpl::StreamAdmit(StreamRequest* request, const std::string& peer,
                                              SyncBarrier::Wakeups* woken) {
  if (request->has_pull()) {
    pull_requests_.fetch_add(1, std::memory_order_relaxed);
    if (request->pull().has_push()) {
      return Reject(
          peer, "pull",
          absl::InvalidArgumentError("a streamed pull carries its push in StreamRequest.push"));
    }
    RestoreKeys(request->mutable_pull()->mutable_blocks());
  }
  if (request->has_push()) {
    push_requests_.fetch_add(1, std::memory_order_relaxed);
    RestoreKeys(request->mutable_push()->mutable_blocks());
  }
  absl::ReaderMutexLock state(&state_mu_);
  if (request->has_pull()) {
    if (absl::Status s = CheckPullLocked(request->pull(), peer); !s.ok()) return s;
  }
  if (request->has_push()) return PushLocked(request->push(), peer, woken);
  return absl::OkStatus();
}

absl::StatusOr<bool> ParameterServerImpl::StreamAwait(const PullRequest& pull,
                                                      SyncBarrier::WakeFn wake, uint64_t* id) {
  if (config_.consistency() != SYNC || pull.clock() == 0) return true;
  return barrier_.AwaitClock(pull.clock(), pull.generation(), std::move(wake), id);
}

absl::StatusOr<grpc::ByteBuffer> ParameterServerImpl::StreamRead(const PullRequest& pull) {
  absl::ReaderMutexLock state(&state_mu_);
  if (absl::Status s = barrier_.CheckGeneration(pull.generation()); !s.ok()) return s;
  size_t floats = 0, rows = 0;
  for (const RowBlock& block : pull.blocks()) {
    floats += block.keys_size() * size_t{tables_[block.table()]->width()};
    rows += block.keys_size();
  }
  rows_pulled_.fetch_add(rows, std::memory_order_relaxed);
  return RowsAnswer(floats, [&](absl::Span<float> out) {
    for (const RowBlock& block : pull.blocks()) {
      const ShardedTable& table = *tables_[block.table()];
      const size_t n = block.keys_size() * size_t{table.width()};
      table.Pull(block.keys(), out.subspan(0, n));
      out.remove_prefix(n);
    }
  });
}

}  // namespace psrec

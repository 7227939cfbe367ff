// The trainer's whole view of its parameters: pull rows for keys, push gradients for keys, flush
// what is pushed. The in-process store and the gRPC client to the sharded servers implement it, and
// nothing else in the trainer changes.
#ifndef PSREC_COMMON_PARAM_STORE_H_
#define PSREC_COMMON_PARAM_STORE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace psrec {

// Table ids are below this in every store and on the wire: stores find a table by indexing an
// array.
constexpr uint32_t kMaxTableId = 1024;

// One table's part of a pull: the values of rows `keys` are written to `values`
// (keys.size() * width floats, row after row).
struct PullBlock {
  uint32_t table;
  absl::Span<const uint64_t> keys;
  absl::Span<float> values;
};

// One table's part of a push: `grads` holds keys.size() * width floats. Keys within a block are
// unique.
struct PushBlock {
  uint32_t table;
  absl::Span<const uint64_t> keys;
  absl::Span<const float> grads;
};

// Implementations: LocalStore (ps/local_store.h), rows in this process; RemoteStore
// (worker/remote_store.h), rows on the parameter servers.
class ParamStore {
 public:
  virtual ~ParamStore() = default;

  // Fills every block's values. The rows read include every push made through this store before
  // the call (a SYNC server also waits for the other workers' pushes of the earlier clocks). An
  // error (unknown table, wrong size, unreachable server) leaves the values unspecified and
  // changes no row.
  virtual absl::Status Pull(absl::Span<const PullBlock> blocks) = 0;

  // Hands the gradients to the store, whose optimizer applies them. A store may apply them before
  // returning (LocalStore) or defer them: RemoteStore holds a push until the next pull carries it,
  // or sends it and collects the answer later. A deferred push's failure is reported by the call
  // that collects it (the next Pull, Wait, Push or Flush). The blocks need not outlive the call.
  virtual absl::Status Push(absl::Span<const PushBlock> blocks) = 0;

  // Returns once every push made so far is applied, or has failed: the first failure not yet
  // reported. A store that never defers has nothing to do.
  virtual absl::Status Flush() { return absl::OkStatus(); }

  // A pull in two halves, so that the caller can compute while it travels (ps-lite's Pull and
  // Wait): StartPull sends it, Wait returns its status once the values are written. Up to
  // kMaxPullsInFlight pulls may be started before the first Wait; each Wait takes the oldest. The
  // blocks' keys and values must stay valid until their Wait; a Push may come in between, and the
  // pull may then read rows from before or after that push. The default does the whole Pull in
  // StartPull.
  static constexpr size_t kMaxPullsInFlight = 2;
  virtual absl::Status StartPull(absl::Span<const PullBlock> blocks) {
    if (num_started_ == kMaxPullsInFlight) {
      return absl::FailedPreconditionError("StartPull with kMaxPullsInFlight pulls not waited for");
    }
    started_[(oldest_started_ + num_started_++) % kMaxPullsInFlight] = Pull(blocks);
    return absl::OkStatus();
  }
  virtual absl::Status Wait() {
    if (num_started_ == 0) return absl::OkStatus();
    --num_started_;
    const size_t oldest = std::exchange(oldest_started_, (oldest_started_ + 1) % kMaxPullsInFlight);
    return std::exchange(started_[oldest], absl::OkStatus());
  }

 private:
  std::array<absl::Status, kMaxPullsInFlight> started_;
  size_t oldest_started_ = 0, num_started_ = 0;
};

}  // namespace psrec

#endif  // PSREC_COMMON_PARAM_STORE_H_

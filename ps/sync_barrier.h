// The clock barrier of one parameter-server shard, and the generation it serves.
//
// A generation (numbered by the coordinator; Reset starts one) has a set of member workers and an
// applied clock. In SYNC mode each member pushes each clock once; the barrier buffers the pushes of
// up to kMaxClockLead clocks and applies a clock, in clock order, once every member has pushed it:
// per (table, key), the members' gradients summed in worker-id order, starting from the lowest id's
// (not from zero, so one worker's gradient passes through bitwise), divided by the number of
// members. A pull of clock c waits until clock c - 1 is applied (WaitForClock). In every mode the
// barrier says whether a request's generation, and its worker, are current (CheckGeneration).
//
// It knows nothing of RPCs or rows: the caller checks each push first (RequestChecks::CheckPush)
// and gives the function that applies a clock's mean to the rows. A unary handler waits on its
// thread (WaitForClock, with a deadline and a cancellation predicate); a streamed pull waits
// without one (AwaitClock): the call that applies its clock hands back its wake-up, to be run once
// the caller has let go of its locks, so rows go out on the thread that closed the clock.
#ifndef PSREC_PS_SYNC_BARRIER_H_
#define PSREC_PS_SYNC_BARRIER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "proto/ps.pb.h"

namespace psrec {

// Thread-safe: every method takes the barrier's one mutex. Lock order: the barrier's mutex, then
// whatever `apply` locks (a sub-shard's mutex); the caller may hold its own locks around any call
// (the server holds its state lock shared), as long as `apply` and `cancelled` take none of them.
class SyncBarrier {
 public:
  static constexpr uint64_t kMaxClockLead = 64;  // clocks buffered ahead of the applied one

  // Applies one table's mean gradients of a clock: `mean` has that table's keys, each once, and
  // keys × width values. Called on the thread of the push that completed the clock, with the
  // barrier's mutex held, once per table that any member pushed, in table-id order.
  using ApplyFn = std::function<void(const RowBlock& mean)>;

  // A parked wait's wake-up (AwaitClock): called once, with OK when its clock is applied, ABORTED
  // when the generation changes, UNAVAILABLE at shutdown.
  using WakeFn = std::function<void(const absl::Status& status)>;
  // Wake-ups that a call has taken out of the barrier: the caller runs them (Run) once it holds no
  // lock that a wake-up takes, in the order given.
  class Wakeups {
   public:
    void Add(WakeFn wake, absl::Status status) {
      wakes_.emplace_back(std::move(wake), std::move(status));
    }
    void Run();
    bool empty() const { return wakes_.empty(); }

   private:
    std::vector<std::pair<WakeFn, absl::Status>> wakes_;
  };

  // Generation 0 at clock 0, with all of workers 0..num_workers-1 as members.
  explicit SyncBarrier(uint32_t num_workers);
  ~SyncBarrier();

  SyncBarrier(const SyncBarrier&) = delete;
  SyncBarrier& operator=(const SyncBarrier&) = delete;

  // OK when `generation` is the current one and, when `worker` >= 0, the worker is one of its
  // members; ABORTED otherwise.
  absl::Status CheckGeneration(uint64_t generation, int64_t worker = -1) const;

  // Buffers `push` (checked by RequestChecks::CheckPush, so its worker is below num_workers and
  // each table's blocks have one width) as its worker's push of its clock, then applies every
  // clock, from the applied one on, that all members have pushed, and wakes the waits. ABORTED as
  // CheckGeneration; FAILED_PRECONDITION for a clock already applied, kMaxClockLead or more ahead
  // of the applied one, or already pushed by this worker. A refused push changes nothing.
  // The parked waits whose clock it applies go to `woken` (may be null when there are none: unary
  // servers that never park).
  //
  // With one member, a push whose every table comes once completes its clock by itself and is
  // applied as it stands, block by block, without being copied: the mean of one push is that push,
  // bitwise (x / 1 is x).
  absl::Status Push(const PushRequest& push, const ApplyFn& apply, Wakeups* woken = nullptr);

  // Waits until the applied clock reaches `clock`, and returns OK then (at once when it has,
  // whatever the generation: a caller that reads rows next checks the generation again). While it
  // waits it returns UNAVAILABLE once BeginShutdown is called, ABORTED when the generation is or
  // becomes other than `generation`, CANCELLED when `cancelled()` is true, and DEADLINE_EXCEEDED at
  // `deadline`, naming the members that have pushed the applied clock. `cancelled` is polled at
  // least every 100 ms with the barrier's mutex held: it must be cheap and must not call the
  // barrier.
  absl::Status WaitForClock(uint64_t clock, uint64_t generation, absl::Time deadline,
                            const std::function<bool()>& cancelled) const;

  // WaitForClock without a thread. True: the clock is applied already (`wake` is dropped). False:
  // the wait is parked under *id, and `wake` will be handed, exactly once, to the Wakeups of the
  // call that ends it (Push, Reset, BeginShutdown), unless CancelAwait(*id) takes it back first.
  // ABORTED or UNAVAILABLE at once as WaitForClock.
  absl::StatusOr<bool> AwaitClock(uint64_t clock, uint64_t generation, WakeFn wake, uint64_t* id);

  // Takes parked wait `id` back: true if it was still parked (its wake-up will never run), false
  // if a call has already handed it out (it runs, or has run).
  bool CancelAwait(uint64_t id);

  // The DEADLINE_EXCEEDED of a pull at `clock` that waited too long, naming who has pushed.
  absl::Status TimedOutError(uint64_t clock) const;

  // Starts generation `generation` at applied clock `clock` with `workers` as its members (checked
  // by CheckRestoreWorkers: not empty, each below num_workers, none twice). Drops every buffered
  // push and wakes the waits, which then answer ABORTED unless the generation is unchanged (parked
  // ones then stay parked until `clock` passes theirs).
  void Reset(uint64_t generation, uint64_t clock, absl::Span<const uint32_t> workers,
             Wakeups* woken = nullptr);

  // Wakes every wait, which answers UNAVAILABLE, as will every later one that would wait.
  // Idempotent.
  void BeginShutdown(Wakeups* woken = nullptr);

  uint64_t generation() const;
  uint64_t applied_clock() const;

 private:
  using Pushes = std::vector<std::unique_ptr<PushRequest>>;  // by worker id, null until it pushes

  absl::Status CheckGenerationLocked(uint64_t generation, int64_t worker) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the complete clocks from applied_clock_ on; true when any was applied.
  bool ApplyCompleteClocks(const ApplyFn& apply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyClock(const Pushes& pushes, const ApplyFn& apply) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TimedOut(uint64_t clock) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One member's push that completes its clock alone: applied without a copy. False (nothing
  // done) when it does not qualify.
  bool ApplyAlone(const PushRequest& push, const ApplyFn& apply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the parked waits that `status` (OK: those whose clock is applied) ends into `woken`.
  void WakeParked(Wakeups* woken, bool all, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Parked {
    uint64_t id;
    uint64_t clock;
    WakeFn wake;
  };

  const uint32_t num_workers_;
  mutable absl::Mutex mu_;
  // Signalled when applied_clock_ grows, on Reset and on shutdown.
  mutable absl::CondVar clock_applied_;
  uint64_t applied_clock_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<bool> member_ ABSL_GUARDED_BY(mu_);  // by worker id: pushes every SYNC clock
  uint32_t num_members_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // clock -> each worker's push of it, for clocks not yet applied.
  std::map<uint64_t, Pushes> pending_ ABSL_GUARDED_BY(mu_);
  // Streamed pulls waiting for a clock of the current generation.
  std::vector<Parked> parked_ ABSL_GUARDED_BY(mu_);
  uint64_t next_parked_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace psrec

#endif  // PSREC_PS_SYNC_BARRIER_H_

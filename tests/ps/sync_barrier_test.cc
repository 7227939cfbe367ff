#include "ps/sync_barrier.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/ps/request_test_util.h"

namespace psrec {
namespace {

using ::psrec::request_testing::MakePush;

uint32_t Bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

// The means a barrier applies, in the order it applies them.
class Applied {
 public:
  SyncBarrier::ApplyFn fn() {
    return [this](const RowBlock& mean) { blocks_.push_back(mean); };
  }
  const std::vector<RowBlock>& blocks() const { return blocks_; }
  // The mean applied to `key` of `table` by apply call `call` (width 1).
  float Mean(size_t call, uint64_t key) const {
    const RowBlock& block = blocks_.at(call);
    for (int i = 0; i < block.keys_size(); ++i) {
      if (block.keys(i) == key) return block.values(i);
    }
    ADD_FAILURE() << "key " << key << " not in apply call " << call;
    return 0;
  }

 private:
  std::vector<RowBlock> blocks_;
};

TEST(SyncBarrierTest, AppliesAClockOnlyOnceEveryMemberPushedIt) {
  SyncBarrier barrier(3);
  Applied applied;
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {{0, {1}, {1}}}), applied.fn()).ok());
  ASSERT_TRUE(barrier.Push(MakePush(2, 0, {{0, {1}, {2}}}), applied.fn()).ok());
  EXPECT_TRUE(applied.blocks().empty());
  EXPECT_EQ(barrier.applied_clock(), 0u);
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {{0, {1}, {3}}}), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 1u);
  EXPECT_EQ(applied.Mean(0, 1), 2.0f);
  EXPECT_EQ(barrier.applied_clock(), 1u);
}

// For each key: the members' gradients summed in worker-id order whatever order they arrived in,
// divided by the number of members even where fewer pushed the key; one call per table, by id.
TEST(SyncBarrierTest, AppliesThePerKeyMeanSummedInWorkerIdOrder) {
  SyncBarrier barrier(3);
  Applied applied;
  // (1e8 + -1e8) + 1 is 1 in floats; summed in arrival order, (1 + -1e8) + 1e8 would be 0.
  ASSERT_TRUE(barrier.Push(MakePush(2, 0, {{5, {9}, {1.0f}}}), applied.fn()).ok());
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {{5, {9, 4}, {-1e8f, 0.75f}}}), applied.fn()).ok());
  ASSERT_TRUE(
      barrier.Push(MakePush(0, 0, {{5, {9}, {1e8f}}, {2, {7}, {0.5f}}}), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 2u);
  EXPECT_EQ(applied.blocks()[0].table(), 2u);
  EXPECT_EQ(applied.blocks()[1].table(), 5u);
  EXPECT_EQ(Bits(applied.Mean(1, 9)), Bits(1.0f / 3.0f));
  EXPECT_EQ(Bits(applied.Mean(1, 4)), Bits(0.75f / 3.0f));
  EXPECT_EQ(Bits(applied.Mean(0, 7)), Bits(0.5f / 3.0f));
  EXPECT_EQ(applied.blocks()[1].keys_size(), 2);  // each key once
}

TEST(SyncBarrierTest, OneMembersGradientPassesThroughBitwise) {
  SyncBarrier barrier(1);
  Applied applied;
  const std::vector<float> grads = {-0.0f, 1e-45f, 0.1f, -3.25e30f};
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {{0, {1, 2}, grads}}), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 1u);
  ASSERT_EQ(applied.blocks()[0].values_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Bits(applied.blocks()[0].values(i)), Bits(grads[i]));
}

TEST(SyncBarrierTest, RefusesASecondPushOfAClockAndKeepsTheFirst) {
  SyncBarrier barrier(2);
  Applied applied;
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {{0, {1}, {2}}}), applied.fn()).ok());
  const absl::Status again = barrier.Push(MakePush(0, 0, {{0, {1}, {100}}}), applied.fn());
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.message(), "worker 0 already pushed clock 0");
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {{0, {1}, {4}}}), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 1u);
  EXPECT_EQ(applied.Mean(0, 1), 3.0f);
}

TEST(SyncBarrierTest, RefusesClocksAppliedOrTooFarAhead) {
  SyncBarrier barrier(1);
  Applied applied;
  const absl::Status ahead =
      barrier.Push(MakePush(0, SyncBarrier::kMaxClockLead, {}), applied.fn());
  EXPECT_EQ(ahead.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ahead.message(),
            "push of clock 64 by worker 0: applied clock is 0, so a push must be in [0, 64)");
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {}), applied.fn()).ok());
  EXPECT_EQ(barrier.applied_clock(), 1u);
  EXPECT_EQ(barrier.Push(MakePush(0, 0, {}), applied.fn()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(applied.blocks().empty());  // a push of no blocks applies nothing
}

TEST(SyncBarrierTest, AppliesBufferedClocksInOrder) {
  SyncBarrier barrier(2);
  Applied applied;
  ASSERT_TRUE(barrier.Push(MakePush(0, 1, {{0, {1}, {10}}}), applied.fn()).ok());
  ASSERT_TRUE(barrier.Push(MakePush(1, 1, {{0, {1}, {20}}}), applied.fn()).ok());
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {{0, {1}, {2}}}), applied.fn()).ok());
  EXPECT_TRUE(applied.blocks().empty());  // clock 1 is complete, clock 0 is not
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {{0, {1}, {4}}}), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 2u);
  EXPECT_EQ(applied.Mean(0, 1), 3.0f);
  EXPECT_EQ(applied.Mean(1, 1), 15.0f);
  EXPECT_EQ(barrier.applied_clock(), 2u);
}

TEST(SyncBarrierTest, ResetStartsAGenerationWithItsOwnMembersAndClock) {
  SyncBarrier barrier(3);
  Applied applied;
  EXPECT_TRUE(barrier.CheckGeneration(0, 2).ok());
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {{0, {1}, {1}}}), applied.fn()).ok());
  const std::vector<uint32_t> workers = {2, 0};
  barrier.Reset(1, 5, workers);
  EXPECT_EQ(barrier.generation(), 1u);
  EXPECT_EQ(barrier.applied_clock(), 5u);

  const absl::Status old = barrier.CheckGeneration(0);
  EXPECT_EQ(old.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(old.message(), "request of generation 0, but the server is at generation 1");
  const absl::Status dropped = barrier.Push(MakePush(1, 5, {}, 1), applied.fn());
  EXPECT_EQ(dropped.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(dropped.message(), "worker 1 is not one of generation 1's workers");
  EXPECT_EQ(barrier.CheckGeneration(1, 7).code(), absl::StatusCode::kAborted);

  // Worker 1's buffered push of the old generation is gone; the mean is over the two members.
  ASSERT_TRUE(barrier.Push(MakePush(0, 5, {{0, {1}, {1}}}, 1), applied.fn()).ok());
  EXPECT_TRUE(applied.blocks().empty());
  ASSERT_TRUE(barrier.Push(MakePush(2, 5, {{0, {1}, {2}}}, 1), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 1u);
  EXPECT_EQ(applied.Mean(0, 1), 1.5f);
  EXPECT_EQ(barrier.applied_clock(), 6u);
}

// A WaitForClock on its own thread. Its cancellation predicate, which the wait calls with the
// barrier's lock held just before it sleeps, tells the test that the wait has begun.
class Waiter {
 public:
  Waiter(const SyncBarrier& barrier, uint64_t clock, uint64_t generation = 0,
         absl::Duration timeout = absl::Seconds(30))
      : thread_([this, &barrier, clock, generation, timeout] {
          status_ = barrier.WaitForClock(clock, generation, absl::Now() + timeout, [this] {
            if (!waiting_.HasBeenNotified()) waiting_.Notify();
            return cancel_.load();
          });
        }) {}
  ~Waiter() {
    if (thread_.joinable()) thread_.join();
  }

  // Returns once the wait is asleep or about to be: whatever the test changes next, it changes
  // while the wait sleeps.
  void AwaitWaiting() { waiting_.WaitForNotification(); }
  void Cancel() { cancel_ = true; }
  absl::Status Join() {
    thread_.join();
    return status_;
  }

 private:
  absl::Notification waiting_;
  std::atomic<bool> cancel_{false};
  absl::Status status_;
  std::thread thread_;  // last: it uses the members above
};

bool NeverCancelled() { return false; }

TEST(SyncBarrierTest, AWaitEndsWhenItsClockIsApplied) {
  SyncBarrier barrier(2);
  Applied applied;
  EXPECT_TRUE(barrier.WaitForClock(0, 0, absl::InfinitePast(), NeverCancelled).ok());
  Waiter waiter(barrier, 1);
  waiter.AwaitWaiting();
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {}), applied.fn()).ok());
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {}), applied.fn()).ok());
  EXPECT_TRUE(waiter.Join().ok());
}

TEST(SyncBarrierTest, AWaitEndsWhenTheGenerationChanges) {
  SyncBarrier barrier(2);
  Waiter waiter(barrier, 1);
  waiter.AwaitWaiting();
  const std::vector<uint32_t> workers = {1};
  barrier.Reset(1, 0, workers);
  const absl::Status status = waiter.Join();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(status.message(), "pull at clock 1 of generation 0: the server moved to generation 1");
}

TEST(SyncBarrierTest, AWaitEndsAtShutdownAndLaterOnesDoNotStart) {
  SyncBarrier barrier(2);
  Waiter waiter(barrier, 1);
  waiter.AwaitWaiting();
  barrier.BeginShutdown();
  const absl::Status status = waiter.Join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "server shutting down");
  EXPECT_EQ(barrier.WaitForClock(1, 0, absl::InfiniteFuture(), NeverCancelled).code(),
            absl::StatusCode::kUnavailable);
  barrier.BeginShutdown();  // idempotent
  EXPECT_TRUE(barrier.WaitForClock(0, 0, absl::InfiniteFuture(), NeverCancelled).ok());
}

TEST(SyncBarrierTest, AWaitEndsWhenCancelled) {
  SyncBarrier barrier(2);
  Waiter waiter(barrier, 1);
  waiter.AwaitWaiting();
  waiter.Cancel();  // nothing signals the barrier: the wait notices within its 100 ms slice
  const absl::Status status = waiter.Join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
}

TEST(SyncBarrierTest, AWaitTimesOutNamingWhoHasPushed) {
  SyncBarrier barrier(3);
  Applied applied;
  ASSERT_TRUE(barrier.Push(MakePush(2, 0, {}), applied.fn()).ok());
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {}), applied.fn()).ok());
  const absl::Status status =
      barrier.WaitForClock(2, 0, absl::Now() + absl::Milliseconds(10), NeverCancelled);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(status.message(),
            "pull at clock 2 timed out: clock 0 has pushes from workers [0,2] of 3");
}

// A parked wait's wake-ups: what each was called with, in order.
class Woken {
 public:
  SyncBarrier::WakeFn fn(int name) {
    return [this, name](const absl::Status& status) { calls_.push_back({name, status}); };
  }
  const std::vector<std::pair<int, absl::Status>>& calls() const { return calls_; }

 private:
  std::vector<std::pair<int, absl::Status>> calls_;
};

TEST(SyncBarrierTest, AnAwaitOfAnAppliedClockIsReadyAndKeepsNoWakeUp) {
  SyncBarrier barrier(1);
  Applied applied;
  Woken woken;
  uint64_t id = 0;
  EXPECT_EQ(barrier.AwaitClock(0, 0, woken.fn(0), &id).value(), true);
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {{0, {1}, {1}}}), applied.fn()).ok());
  EXPECT_EQ(barrier.AwaitClock(1, 0, woken.fn(1), &id).value(), true);
  EXPECT_TRUE(woken.calls().empty());
}

// The push that applies a parked wait's clock hands its wake-up to that push's caller, which runs
// it; waits of later clocks stay parked until theirs.
TEST(SyncBarrierTest, ThePushThatAppliesAClockHandsBackItsParkedWaits) {
  SyncBarrier barrier(2);
  Applied applied;
  Woken woken;
  uint64_t first = 0, second = 0;
  ASSERT_EQ(barrier.AwaitClock(1, 0, woken.fn(1), &first).value(), false);
  ASSERT_EQ(barrier.AwaitClock(2, 0, woken.fn(2), &second).value(), false);
  EXPECT_NE(first, second);
  SyncBarrier::Wakeups out;
  ASSERT_TRUE(barrier.Push(MakePush(0, 0, {}), applied.fn(), &out).ok());
  EXPECT_TRUE(out.empty());  // clock 0 still lacks worker 1
  ASSERT_TRUE(barrier.Push(MakePush(1, 0, {}), applied.fn(), &out).ok());
  EXPECT_TRUE(woken.calls().empty());  // handed out, not run: the caller runs them
  out.Run();
  ASSERT_EQ(woken.calls().size(), 1u);
  EXPECT_EQ(woken.calls()[0].first, 1);
  EXPECT_TRUE(woken.calls()[0].second.ok());
  EXPECT_FALSE(barrier.CancelAwait(first));  // already handed out
  EXPECT_TRUE(barrier.CancelAwait(second));  // still parked: taken back, never woken
  EXPECT_FALSE(barrier.CancelAwait(second));
  SyncBarrier::Wakeups later;
  ASSERT_TRUE(barrier.Push(MakePush(0, 1, {}), applied.fn(), &later).ok());
  ASSERT_TRUE(barrier.Push(MakePush(1, 1, {}), applied.fn(), &later).ok());
  EXPECT_TRUE(later.empty());
  EXPECT_EQ(woken.calls().size(), 1u);
}

// A barrier of two members, and waits parked on it.
class ParkedWaitTest : public ::testing::Test {
 protected:
  // Parks member 0's wait for `clock`; its wake-up is recorded under `tag`.
  void Park(uint64_t clock, int tag) {
    uint64_t id = 0;
    ASSERT_EQ(barrier_.AwaitClock(clock, 0, woken_.fn(tag), &id).value(), false);
  }

  SyncBarrier barrier_{2};
  Woken woken_;
  uint64_t id_ = 0;  // of the awaits that are not parked
};

TEST_F(ParkedWaitTest, ANewGenerationWakesThemWithAborted) {
  Park(3, 0);
  SyncBarrier::Wakeups out;
  barrier_.Reset(/*generation=*/0, /*clock=*/1, {0, 1}, &out);  // same generation: still waiting
  EXPECT_TRUE(out.empty());
  barrier_.Reset(/*generation=*/0, /*clock=*/3, {0, 1}, &out);  // same generation, clock reached
  out.Run();
  ASSERT_EQ(woken_.calls().size(), 1u);
  EXPECT_TRUE(woken_.calls()[0].second.ok());

  Park(4, 1);
  SyncBarrier::Wakeups moved;
  barrier_.Reset(/*generation=*/1, /*clock=*/0, {0}, &moved);
  moved.Run();
  ASSERT_EQ(woken_.calls().size(), 2u);
  EXPECT_EQ(woken_.calls()[1].second.code(), absl::StatusCode::kAborted);
  // An await of the old generation that would wait is refused at once.
  EXPECT_EQ(barrier_.AwaitClock(1, 0, woken_.fn(2), &id_).status().code(),
            absl::StatusCode::kAborted);
}

TEST_F(ParkedWaitTest, ShutdownWakesThemWithUnavailable) {
  Park(1, 0);
  SyncBarrier::Wakeups out;
  barrier_.BeginShutdown(&out);
  out.Run();
  ASSERT_EQ(woken_.calls().size(), 1u);
  EXPECT_EQ(woken_.calls()[0].second.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(barrier_.AwaitClock(1, 0, woken_.fn(1), &id_).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(barrier_.AwaitClock(0, 0, woken_.fn(2), &id_).value(), true);  // applied: no wait
}

// One member's push is applied as it stands, without the copy into the clock's buffer.
TEST(SyncBarrierTest, OneMembersPushIsAppliedBlockByBlockAsItStands) {
  SyncBarrier barrier(1);
  Applied applied;
  ASSERT_TRUE(
      barrier.Push(MakePush(0, 0, {{2, {9, 4}, {0.5f, -1.0f}}, {5, {1}, {3.0f}}}), applied.fn())
          .ok());
  ASSERT_EQ(applied.blocks().size(), 2u);
  EXPECT_EQ(applied.blocks()[0].table(), 2u);
  EXPECT_EQ(Bits(applied.Mean(0, 9)), Bits(0.5f));
  EXPECT_EQ(Bits(applied.Mean(0, 4)), Bits(-1.0f));
  EXPECT_EQ(Bits(applied.Mean(1, 1)), Bits(3.0f));
  EXPECT_EQ(barrier.applied_clock(), 1u);
  // A table twice in one push still goes through the mean, which merges the blocks.
  ASSERT_TRUE(
      barrier.Push(MakePush(0, 1, {{2, {9}, {1.0f}}, {2, {9}, {2.0f}}}), applied.fn()).ok());
  ASSERT_EQ(applied.blocks().size(), 3u);
  EXPECT_EQ(applied.blocks()[2].keys_size(), 1);
  EXPECT_EQ(Bits(applied.Mean(2, 9)), Bits(3.0f));
}

}  // namespace
}  // namespace psrec

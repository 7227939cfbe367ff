#include "ps/sync_barrier.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"

namespace psrec {

SyncBarrier::SyncBarrier(uint32_t num_workers)
    : num_workers_(num_workers), member_(num_workers, true), num_members_(num_workers) {}

SyncBarrier::~SyncBarrier() = default;

absl::Status SyncBarrier::CheckGeneration(uint64_t generation, int64_t worker) const {
  absl::MutexLock lock(&mu_);
  return CheckGenerationLocked(generation, worker);
}

absl::Status SyncBarrier::CheckGenerationLocked(uint64_t generation, int64_t worker) const {
  if (generation != generation_) {
    return absl::AbortedError(absl::StrCat("request of generation ", generation,
                                           ", but the server is at generation ", generation_));
  }
  if (worker >= 0 && (static_cast<size_t>(worker) >= member_.size() || !member_[worker])) {
    return absl::AbortedError(
        absl::StrCat("worker ", worker, " is not one of generation ", generation_, "'s workers"));
  }
  return absl::OkStatus();
}

void SyncBarrier::Wakeups::Run() {
  for (auto& [wake, status] : wakes_) wake(status);
  wakes_.clear();
}

absl::Status SyncBarrier::Push(const PushRequest& push, const ApplyFn& apply, Wakeups* woken) {
  const uint64_t clock = push.clock();
  const uint32_t worker = push.worker_id();
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckGenerationLocked(push.generation(), worker); !s.ok()) return s;
  if (clock < applied_clock_ || clock >= applied_clock_ + kMaxClockLead) {
    return absl::FailedPreconditionError(absl::StrCat(
        "push of clock ", clock, " by worker ", worker, ": applied clock is ", applied_clock_,
        ", so a push must be in [", applied_clock_, ", ", applied_clock_ + kMaxClockLead, ")"));
  }
  bool advanced = ApplyAlone(push, apply);
  if (!advanced) {
    Pushes& pushes = pending_[clock];
    pushes.resize(num_workers_);
    if (pushes[worker] != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("worker ", worker, " already pushed clock ", clock));
    }
    pushes[worker] = std::make_unique<PushRequest>(push);
    advanced = ApplyCompleteClocks(apply);
  }
  if (advanced) {
    clock_applied_.SignalAll();
    WakeParked(woken, /*all=*/false, absl::OkStatus());
  }
  return absl::OkStatus();
}

bool SyncBarrier::ApplyAlone(const PushRequest& push, const ApplyFn& apply) {
  if (num_members_ != 1 || push.clock() != applied_clock_ || !pending_.empty()) return false;
  const auto& blocks = push.blocks();
  for (int i = 0; i < blocks.size(); ++i) {
    for (int j = 0; j < i; ++j) {
      if (blocks[i].table() == blocks[j].table()) return false;  // ApplyClock merges them
    }
  }
  for (const RowBlock& block : blocks) apply(block);
  ++applied_clock_;
  return true;
}

void SyncBarrier::WakeParked(Wakeups* woken, bool all, const absl::Status& status) {
  auto keep = parked_.begin();
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (all || it->clock <= applied_clock_) {
      PSREC_CHECK(woken != nullptr) << "a parked wait ends, but the caller takes no wake-ups";
      woken->Add(std::move(it->wake), status);
    } else {
      *keep++ = std::move(*it);
    }
  }
  parked_.erase(keep, parked_.end());
}

absl::StatusOr<bool> SyncBarrier::AwaitClock(uint64_t clock, uint64_t generation, WakeFn wake,
                                             uint64_t* id) {
  absl::MutexLock lock(&mu_);
  if (applied_clock_ >= clock) return true;
  if (shutting_down_) return absl::UnavailableError("server shutting down");
  if (generation_ != generation) {
    return absl::AbortedError(absl::StrCat("pull at clock ", clock, " of generation ", generation,
                                           ": the server moved to generation ", generation_));
  }
  *id = next_parked_id_++;
  parked_.push_back(Parked{*id, clock, std::move(wake)});
  return false;
}

bool SyncBarrier::CancelAwait(uint64_t id) {
  absl::MutexLock lock(&mu_);
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (it->id == id) {
      parked_.erase(it);
      return true;
    }
  }
  return false;
}

absl::Status SyncBarrier::TimedOutError(uint64_t clock) const {
  absl::MutexLock lock(&mu_);
  return TimedOut(clock);
}

bool SyncBarrier::ApplyCompleteClocks(const ApplyFn& apply) {
  bool advanced = false;
  for (auto it = pending_.begin(); it != pending_.end() && it->first == applied_clock_;
       it = pending_.erase(it)) {
    bool complete = true;
    for (size_t w = 0; w < it->second.size(); ++w) {
      complete &= !member_[w] || it->second[w] != nullptr;
    }
    if (!complete) break;
    ApplyClock(it->second, apply);
    ++applied_clock_;
    advanced = true;
  }
  return advanced;
}

// Rows are independent, so the order of keys within a table does not matter; the order of the
// workers' gradients for one key does, and is the worker-id order of `pushes`.
void SyncBarrier::ApplyClock(const Pushes& pushes, const ApplyFn& apply) const {
  struct Sum {
    absl::flat_hash_map<uint64_t, uint32_t> index;  // key -> position in keys
    RowBlock block;
  };
  std::map<uint32_t, Sum> sums;  // by table id
  for (const auto& push : pushes) {
    if (push == nullptr) continue;  // not one of this generation's workers
    for (const RowBlock& block : push->blocks()) {
      Sum& sum = sums[block.table()];
      sum.block.set_table(block.table());
      // CheckPush made values keys × the table's width.
      const size_t width = block.keys_size() == 0 ? 0 : block.values_size() / block.keys_size();
      for (int i = 0; i < block.keys_size(); ++i) {
        const float* g = block.values().data() + i * width;
        auto [it, inserted] = sum.index.try_emplace(block.keys(i), sum.block.keys_size());
        if (inserted) {
          sum.block.add_keys(block.keys(i));
          sum.block.mutable_values()->Add(g, g + width);
        } else {
          float* acc = sum.block.mutable_values()->mutable_data() + size_t{it->second} * width;
          for (size_t k = 0; k < width; ++k) acc[k] += g[k];
        }
      }
    }
  }
  const float n = static_cast<float>(num_members_);
  for (auto& [id, sum] : sums) {
    for (float& g : *sum.block.mutable_values()) g /= n;
    apply(sum.block);
  }
}

// Waits in slices so that a cancellation is noticed even when nothing signals the condition.
absl::Status SyncBarrier::WaitForClock(uint64_t clock, uint64_t generation, absl::Time deadline,
                                       const std::function<bool()>& cancelled) const {
  absl::MutexLock lock(&mu_);
  while (applied_clock_ < clock) {
    if (shutting_down_) return absl::UnavailableError("server shutting down");
    if (generation_ != generation) {
      return absl::AbortedError(absl::StrCat("pull at clock ", clock, " of generation ", generation,
                                             ": the server moved to generation ", generation_));
    }
    if (cancelled()) return absl::CancelledError("cancelled");
    if (absl::Now() >= deadline) return TimedOut(clock);
    clock_applied_.WaitWithDeadline(&mu_,
                                    std::min(deadline, absl::Now() + absl::Milliseconds(100)));
  }
  return absl::OkStatus();
}

absl::Status SyncBarrier::TimedOut(uint64_t clock) const {
  std::vector<uint32_t> pushed;
  auto it = pending_.find(applied_clock_);
  for (uint32_t w = 0; it != pending_.end() && w < it->second.size(); ++w) {
    if (it->second[w] != nullptr) pushed.push_back(w);
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "pull at clock ", clock, " timed out: clock ", applied_clock_, " has pushes from workers [",
      absl::StrJoin(pushed, ","), "] of ", num_members_));
}

void SyncBarrier::Reset(uint64_t generation, uint64_t clock, absl::Span<const uint32_t> workers,
                        Wakeups* woken) {
  std::vector<bool> member(num_workers_, false);
  for (uint32_t w : workers) {
    PSREC_CHECK(w < member.size() && !member[w])
        << "Reset with worker " << w << " of " << member.size() << ", or twice";
    member[w] = true;
  }
  absl::MutexLock lock(&mu_);
  const uint64_t old_generation = generation_;
  generation_ = generation;
  applied_clock_ = clock;
  pending_.clear();
  member_ = std::move(member);
  num_members_ = static_cast<uint32_t>(workers.size());
  clock_applied_.SignalAll();
  if (generation != old_generation) {
    WakeParked(woken, /*all=*/true,
               absl::AbortedError(absl::StrCat("pull of generation ", old_generation,
                                               ": the server moved to generation ", generation)));
  } else {
    WakeParked(woken, /*all=*/false, absl::OkStatus());
  }
}

void SyncBarrier::BeginShutdown(Wakeups* woken) {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  clock_applied_.SignalAll();
  WakeParked(woken, /*all=*/true, absl::UnavailableError("server shutting down"));
}

uint64_t SyncBarrier::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

uint64_t SyncBarrier::applied_clock() const {
  absl::MutexLock lock(&mu_);
  return applied_clock_;
}

}  // namespace psrec

// ThreadSanitizer cannot see Debian's absl::Mutex take and release its lock:
// libabsl_synchronization.so is not built with -fsanitize=thread, so its lock word is an atomic
// TSan never sees and every access that a Mutex orders would look like a race. This library, put in
// front of it with LD_PRELOAD by scripts/sanitize.sh, defines the Mutex, CondVar and Notification
// functions that callers reach through the dynamic linker, calls the real ones (dlsym RTLD_NEXT),
// and tells TSan about the lock with the same __tsan_mutex_* annotations that abseil's own mutex.cc
// makes when it is built with TSan. It adds happens-before edges that really exist; it hides no
// report.
//
// Every exported member that takes, gives up or waits on the lock is defined here. A missing symbol
// aborts at load, so a changed abseil cannot silently undo this. ~Mutex is not annotated: gRPC
// destroys its mutexes on whichever thread drops the last reference, ordered by its own atomic
// reference counts, which TSan cannot see, so a destroy annotation (a write) made false reports.
// Freeing a heap block resets TSan's state for the mutexes in it anyway; what is lost is the check
// that no thread still holds a mutex being destroyed.
//
// Built only for the TSan build, against Debian 12's abseil 20220623 (inline namespace debian3).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

// Weak, so that a process without the TSan runtime (ctest itself, under the same LD_PRELOAD) still
// loads this library; the annotations are then skipped.
#pragma weak __tsan_mutex_pre_lock
#pragma weak __tsan_mutex_post_lock
#pragma weak __tsan_mutex_pre_unlock
#pragma weak __tsan_mutex_post_unlock
#pragma weak __tsan_acquire
#pragma weak __tsan_release

namespace {

bool Tsan() { return &__tsan_mutex_pre_lock != nullptr; }

// abseil's functions call each other through the dynamic linker too (CondVar::WaitWithTimeout calls
// WaitWithDeadline, Notification's waits call Mutex::Unlock after a LockWhen...), and so reach this
// library again. Only the outermost call, the one its caller made, is annotated.
thread_local int depth = 0;

class Outer {
 public:
  Outer() : outer_(depth++ == 0 && Tsan()) {}
  ~Outer() { --depth; }
  Outer(const Outer&) = delete;
  Outer& operator=(const Outer&) = delete;
  explicit operator bool() const { return outer_; }

 private:
  const bool outer_;
};

template <typename Fn>
Fn Real(const char* symbol) {
  void* fn = dlsym(RTLD_NEXT, symbol);
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_mutex_shim: %s not found: %s\n", symbol, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

using MutexFn = void (*)(absl::Mutex*);
using MutexTryFn = bool (*)(absl::Mutex*);
using AwaitFn = void (*)(absl::Mutex*, const absl::Condition&);
using AwaitTimeoutFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Duration);
using AwaitDeadlineFn = bool (*)(absl::Mutex*, const absl::Condition&, absl::Time);
using WaitFn = void (*)(absl::CondVar*, absl::Mutex*);
using WaitTimeoutFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Duration);
using WaitDeadlineFn = bool (*)(absl::CondVar*, absl::Mutex*, absl::Time);
using NotifyFn = void (*)(absl::Notification*);
using NotifiedFn = void (*)(const absl::Notification*);
using NotifiedTimeoutFn = bool (*)(const absl::Notification*, absl::Duration);
using NotifiedDeadlineFn = bool (*)(const absl::Notification*, absl::Time);

struct RealFunctions {
  MutexFn lock = Real<MutexFn>("_ZN4absl7debian35Mutex4LockEv");
  MutexFn unlock = Real<MutexFn>("_ZN4absl7debian35Mutex6UnlockEv");
  MutexTryFn try_lock = Real<MutexTryFn>("_ZN4absl7debian35Mutex7TryLockEv");
  MutexFn reader_lock = Real<MutexFn>("_ZN4absl7debian35Mutex10ReaderLockEv");
  MutexFn reader_unlock = Real<MutexFn>("_ZN4absl7debian35Mutex12ReaderUnlockEv");
  MutexTryFn reader_try_lock = Real<MutexTryFn>("_ZN4absl7debian35Mutex13ReaderTryLockEv");
  AwaitFn lock_when = Real<AwaitFn>("_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  AwaitTimeoutFn lock_when_timeout = Real<AwaitTimeoutFn>(
      "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AwaitDeadlineFn lock_when_deadline = Real<AwaitDeadlineFn>(
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AwaitFn reader_lock_when =
      Real<AwaitFn>("_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  AwaitTimeoutFn reader_lock_when_timeout = Real<AwaitTimeoutFn>(
      "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AwaitDeadlineFn reader_lock_when_deadline = Real<AwaitDeadlineFn>(
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AwaitFn await = Real<AwaitFn>("_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  AwaitTimeoutFn await_timeout = Real<AwaitTimeoutFn>(
      "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AwaitDeadlineFn await_deadline = Real<AwaitDeadlineFn>(
      "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  WaitFn wait = Real<WaitFn>("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  WaitTimeoutFn wait_timeout =
      Real<WaitTimeoutFn>("_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  WaitDeadlineFn wait_deadline =
      Real<WaitDeadlineFn>("_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  NotifyFn notify = Real<NotifyFn>("_ZN4absl7debian312Notification6NotifyEv");
  NotifiedFn wait_notified =
      Real<NotifiedFn>("_ZNK4absl7debian312Notification19WaitForNotificationEv");
  NotifiedTimeoutFn wait_notified_timeout = Real<NotifiedTimeoutFn>(
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  NotifiedDeadlineFn wait_notified_deadline = Real<NotifiedDeadlineFn>(
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
};

const RealFunctions& R() {
  static const RealFunctions* real = new RealFunctions;
  return *real;
}

// Resolve at load in a TSan process, so a missing symbol fails every test at once rather than one
// deep inside.
__attribute__((constructor)) void ResolveAtLoad() {
  if (Tsan()) R();
}

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;

// A lock taken with `flags` around `call`, which returns what the caller gets. `locked(result)`
// says whether the lock is held afterwards (a failed TryLock's is not).
template <typename Call, typename Locked>
auto Acquire(void* mu, unsigned flags, Call call, Locked locked) {
  Outer outer;
  if (outer) __tsan_mutex_pre_lock(mu, flags);
  auto result = call();
  if (outer) __tsan_mutex_post_lock(mu, flags | (locked(result) ? 0 : kTryFailed), 0);
  return result;
}

template <typename Call>
auto Acquire(void* mu, unsigned flags, Call call) {
  return Acquire(mu, flags, call, [](const auto&) { return true; });
}

template <typename Call>
auto Release(void* mu, unsigned flags, Call call) {
  Outer outer;
  if (outer) __tsan_mutex_pre_unlock(mu, flags);
  auto result = call();
  if (outer) __tsan_mutex_post_unlock(mu, flags);
  return result;
}

// The lock is given up inside a wait and held again after it, as abseil's CondVar::WaitCommon and
// Mutex::AwaitCommon annotate themselves when built with TSan.
template <typename Call>
auto Released(absl::Mutex* mu, Call call) {
  Outer outer;
  if (outer) {
    __tsan_mutex_pre_unlock(mu, 0);
    __tsan_mutex_post_unlock(mu, 0);
  }
  auto result = call();
  if (outer) {
    __tsan_mutex_pre_lock(mu, 0);
    __tsan_mutex_post_lock(mu, 0, 0);
  }
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// Functions that return void are called through a lambda returning 0, so one template serves all.
void Mutex::Lock() {
  Acquire(this, 0, [&] { return R().lock(this), 0; });
}

void Mutex::Unlock() {
  Release(this, 0, [&] { return R().unlock(this), 0; });
}

bool Mutex::TryLock() {
  return Acquire(
      this, kTry, [&] { return R().try_lock(this); }, [](bool locked) { return locked; });
}

void Mutex::ReaderLock() {
  Acquire(this, kRead, [&] { return R().reader_lock(this), 0; });
}

void Mutex::ReaderUnlock() {
  Release(this, kRead, [&] { return R().reader_unlock(this), 0; });
}

bool Mutex::ReaderTryLock() {
  return Acquire(
      this, kRead | kTry, [&] { return R().reader_try_lock(this); },
      [](bool locked) { return locked; });
}

// The *WithTimeout and *WithDeadline forms hold the lock on return whether or not the condition
// became true.
void Mutex::LockWhen(const Condition& cond) {
  Acquire(this, 0, [&] { return R().lock_when(this, cond), 0; });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  return Acquire(this, 0, [&] { return R().lock_when_timeout(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  return Acquire(this, 0, [&] { return R().lock_when_deadline(this, cond, deadline); });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  Acquire(this, kRead, [&] { return R().reader_lock_when(this, cond), 0; });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  return Acquire(this, kRead, [&] { return R().reader_lock_when_timeout(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  return Acquire(this, kRead, [&] { return R().reader_lock_when_deadline(this, cond, deadline); });
}

void Mutex::Await(const Condition& cond) {
  Released(this, [&] { return R().await(this, cond), 0; });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  return Released(this, [&] { return R().await_timeout(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  return Released(this, [&] { return R().await_deadline(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  Released(mu, [&] { return R().wait(this, mu), 0; });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  return Released(mu, [&] { return R().wait_timeout(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  return Released(mu, [&] { return R().wait_deadline(this, mu, deadline); });
}

// Notify happens before every wait that sees it.
void Notification::Notify() {
  Outer outer;
  if (outer) __tsan_release(this);
  R().notify(this);
}

void Notification::WaitForNotification() const {
  Outer outer;
  R().wait_notified(this);
  if (outer) __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  Outer outer;
  const bool notified = R().wait_notified_timeout(this, timeout);
  if (outer && notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  Outer outer;
  const bool notified = R().wait_notified_deadline(this, deadline);
  if (outer && notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl

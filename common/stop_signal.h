// SIGTERM and SIGINT turned into something a loop can wait on. A signal handler may only do
// async-signal-safe things, so it writes the signal's number to a pipe and saves errno; the waiting
// thread does the rest. While a StopSignal is installed it owns both signals' handlers; the
// destructor puts the old ones back. One installed instance per process at a time.
#ifndef PSREC_COMMON_STOP_SIGNAL_H_
#define PSREC_COMMON_STOP_SIGNAL_H_

#include <signal.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace psrec {

class StopSignal {
 public:
  StopSignal() = default;
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  ~StopSignal();

  // Makes the pipe and takes over SIGTERM and SIGINT. INTERNAL if the pipe cannot be made.
  absl::Status Install();

  // Wakes the waiters as a signal would, without one (signal() stays 0). Thread-safe.
  void Notify();

  // Waits for a signal or Notify, up to `timeout` (infinite by default). True if one came, now or
  // before.
  bool Wait(absl::Duration timeout = absl::InfiniteDuration());

  // The read end of the pipe, for a caller's own poll(); call Drain() when it is readable.
  int fd() const { return fds_[0]; }
  void Drain();

  // The last signal caught (SIGTERM or SIGINT), or 0.
  int signal() const;

 private:
  int fds_[2] = {-1, -1};
  bool installed_ = false;
  bool woken_ = false;
  struct sigaction old_term_ = {};
  struct sigaction old_int_ = {};
};

}  // namespace psrec

#endif  // PSREC_COMMON_STOP_SIGNAL_H_

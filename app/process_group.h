// A group of `psrec` child processes of this one: each started with its own arguments, its stdout
// passed through and its stderr lines prefixed with its role ("[ps0] "), reaped when it exits, and
// all of them stopped together. Children die with this process (PR_SET_PDEATHSIG), so none is
// orphaned. What to do when one exits is the caller's policy (app/launcher.cc).
#ifndef PSREC_APP_PROCESS_GROUP_H_
#define PSREC_APP_PROCESS_GROUP_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/stop_signal.h"

namespace psrec {

struct Child {
  std::string role;
  std::vector<std::string> args;
  pid_t pid = -1;
  int cpu = -1;  // the one CPU it is bound to, or -1 for none
  std::string address;
  std::array<int, 2> fds = {-1, -1};  // read ends of the child's stdout and stderr
  std::array<std::string, 2> pending;
  bool exited = false;
  int status = 0;
  // Once exited: the kernel's accounting of the child (wait4), for the run's table of processes.
  uint64_t peak_rss_bytes = 0;
  double cpu_seconds = 0;
};

// "ps1 (pid 123) was killed by signal 9", for a child that has exited.
std::string DescribeExit(const Child& c);

// Exited, and not with status 0.
bool Failed(const Child& c);

// Not thread-safe.
class ProcessGroup {
 public:
  // `stop` (not owned) wakes Pump when a signal arrives.
  explicit ProcessGroup(StopSignal* stop) : stop_(stop) {}
  ~ProcessGroup() { StopAll(); }
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // Runs `psrec args...` (this very binary) as a child named `role`, bound to CPU `cpu` unless it
  // is -1. A child that cannot be bound says so on its stderr and runs unbound.
  absl::Status Start(const std::string& role, std::vector<std::string> args, int cpu = -1);

  // Starts child `index` again with `args`, once its old process has exited; it keeps its address
  // and its CPU.
  absl::Status Restart(size_t index, std::vector<std::string> args);

  // Forwards the children's output for up to `timeout`, or until a signal, and notes the children
  // that exited.
  void Pump(absl::Duration timeout);

  // SIGTERM to every live child (and SIGCONT, so that a stopped one acts on it), then SIGKILL to
  // any still alive after a grace period.
  void StopAll();

  bool AllExited() const;
  // A signal has arrived (see StopSignal), and which.
  bool stopped() { return stop_->Wait(absl::ZeroDuration()); }
  int stop_signal() const { return stop_->signal(); }
  std::vector<Child>& children() { return children_; }

 private:
  absl::StatusOr<Child> Spawn(const std::string& role, std::vector<std::string> args, int cpu);
  void Drain(Child& c, int k);
  void Reap();
  static void NoteExit(Child& c, int status, const struct rusage& usage);

  StopSignal* const stop_;
  std::vector<Child> children_;
};

}  // namespace psrec

#endif  // PSREC_APP_PROCESS_GROUP_H_

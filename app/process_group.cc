#include "app/process_group.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace psrec {
namespace {

constexpr absl::Duration kKillGrace = absl::Seconds(5);

// stdout passes through; stderr lines get the role unless the child already put it there.
void Emit(const Child& c, int k, const std::string& line) {
  std::string text;
  const std::string tag = absl::StrCat("[", c.role, "]");
  if (k == 0 || line.rfind(tag, 0) == 0) {
    text = line + "\n";
  } else {
    text = absl::StrCat(tag, " ", line, "\n");
  }
  [[maybe_unused]] ssize_t n =
      ::write(k == 0 ? STDOUT_FILENO : STDERR_FILENO, text.data(), text.size());
}

// In the child between fork and exec, so only async-signal-safe calls: no allocation, no stdio.
void BindToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) == 0) return;
  static constexpr char kFailed[] = "could not bind to its CPU (sched_setaffinity); runs unbound\n";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, kFailed, sizeof(kFailed) - 1);
}

}  // namespace

// "ps1 (pid 123) was killed by signal 9", for a child that has exited.
std::string DescribeExit(const Child& c) {
  const std::string who = absl::StrCat(c.role, " (pid ", c.pid, ") ");
  if (WIFEXITED(c.status)) return absl::StrCat(who, "exited with status ", WEXITSTATUS(c.status));
  if (WIFSIGNALED(c.status)) return absl::StrCat(who, "was killed by signal ", WTERMSIG(c.status));
  return who + "stopped";
}

bool Failed(const Child& c) {
  return c.exited && !(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
}

absl::Status ProcessGroup::Start(const std::string& role, std::vector<std::string> args, int cpu) {
  absl::StatusOr<Child> child = Spawn(role, std::move(args), cpu);
  if (!child.ok()) return child.status();
  children_.push_back(*std::move(child));
  return absl::OkStatus();
}

absl::Status ProcessGroup::Restart(size_t index, std::vector<std::string> args) {
  Child& old = children_[index];
  for (int k = 0; k < 2; ++k) {
    while (old.fds[k] >= 0) Drain(old, k);
  }
  absl::StatusOr<Child> child = Spawn(old.role, std::move(args), old.cpu);
  if (!child.ok()) return child.status();
  child->address = old.address;
  old = *std::move(child);
  return absl::OkStatus();
}

absl::StatusOr<Child> ProcessGroup::Spawn(const std::string& role, std::vector<std::string> args,
                                          int cpu) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    const int error = errno;
    close_all();
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(error)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    close_all();
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(error)));
  }
  if (pid == 0) {
    // The child dies with the launcher, so no child is ever orphaned.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    if (cpu >= 0) BindToCpu(cpu);
    std::vector<char*> argv;
    static char kName[] = "psrec";
    argv.push_back(kName);
    for (std::string& a : args) argv.push_back(a.data());  // NOLINT: the child's own copy
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "exec /proc/self/exe: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  Child child;
  child.role = role;
  child.pid = pid;
  child.cpu = cpu;
  child.fds[0] = out[0];
  child.fds[1] = err[0];
  PSREC_LOG(INFO) << "started " << role << " (pid " << pid
                  << (cpu >= 0 ? absl::StrCat(", cpu ", cpu) : std::string()) << "): psrec "
                  << absl::StrJoin(args, " ");
  child.args = std::move(args);
  return child;
}

void ProcessGroup::Pump(absl::Duration timeout) {
  std::vector<pollfd> fds = {{stop_->fd(), POLLIN, 0}};
  std::vector<std::pair<size_t, int>> owners = {{SIZE_MAX, 0}};
  for (size_t i = 0; i < children_.size(); ++i) {
    for (int k = 0; k < 2; ++k) {
      if (children_[i].fds[k] < 0) continue;
      fds.push_back({children_[i].fds[k], POLLIN, 0});
      owners.push_back({i, k});
    }
  }
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  if (::poll(fds.data(), fds.size(), ms) > 0) {
    if (fds[0].revents != 0) stop_->Drain();  // stop_->signal() says which
    for (size_t f = 1; f < fds.size(); ++f) {
      if (fds[f].revents != 0) Drain(children_[owners[f].first], owners[f].second);
    }
  }
  Reap();
}

void ProcessGroup::StopAll() {
  for (Child& c : children_) {
    if (c.exited) continue;
    ::kill(c.pid, SIGTERM);
    ::kill(c.pid, SIGCONT);
  }
  const absl::Time deadline = absl::Now() + kKillGrace;
  while (!AllExited() && absl::Now() < deadline) Pump(absl::Milliseconds(50));
  for (Child& c : children_) {
    if (!c.exited) {
      PSREC_LOG(WARNING) << c.role << " (pid " << c.pid << ") ignored SIGTERM; killing it";
      ::kill(c.pid, SIGKILL);
      int status;
      struct rusage usage {};
      ::wait4(c.pid, &status, 0, &usage);
      NoteExit(c, status, usage);
    }
    for (int k = 0; k < 2; ++k) {
      if (c.fds[k] >= 0) Drain(c, k);
    }
  }
}

bool ProcessGroup::AllExited() const {
  for (const Child& c : children_) {
    if (!c.exited) return false;
  }
  return true;
}

void ProcessGroup::Drain(Child& c, int k) {
  char buf[1 << 14];
  const ssize_t n = ::read(c.fds[k], buf, sizeof(buf));
  if (n <= 0) {
    if (!c.pending[k].empty()) Emit(c, k, c.pending[k]);
    c.pending[k].clear();
    ::close(c.fds[k]);
    c.fds[k] = -1;
    return;
  }
  c.pending[k].append(buf, static_cast<size_t>(n));
  size_t start = 0, nl;
  while ((nl = c.pending[k].find('\n', start)) != std::string::npos) {
    Emit(c, k, c.pending[k].substr(start, nl - start));
    start = nl + 1;
  }
  c.pending[k].erase(0, start);
}

void ProcessGroup::NoteExit(Child& c, int status, const struct rusage& usage) {
  c.exited = true;
  c.status = status;
  c.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux counts KiB
  c.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                  static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

void ProcessGroup::Reap() {
  for (Child& c : children_) {
    if (c.exited) continue;
    int status;
    struct rusage usage {};
    if (::wait4(c.pid, &status, WNOHANG, &usage) == c.pid) NoteExit(c, status, usage);
  }
}

}  // namespace psrec

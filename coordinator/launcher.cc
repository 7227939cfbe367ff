#include "coordinator/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/log.h"
#include "google/protobuf/text_format.h"

namespace psrec {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kExitGrace = absl::Seconds(15);
constexpr absl::Duration kKillGrace = absl::Seconds(5);

// Written by the signal handler, read by the event loop.
int g_signal_pipe[2] = {-1, -1};
volatile sig_atomic_t g_signal = 0;

void OnSignal(int signo) {
  g_signal = signo;
  const char byte = static_cast<char>(signo);
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
}

struct Child {
  std::string role;
  std::vector<std::string> args;
  pid_t pid = -1;
  std::string address;
  std::array<int, 2> fds = {-1, -1};  // read ends of the child's stdout and stderr
  std::array<std::string, 2> pending;
  bool exited = false;
  int status = 0;
};

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

class Cluster {
 public:
  ~Cluster() { StopAll(); }

  absl::Status Start(const std::string& role, std::vector<std::string> args) {
    absl::StatusOr<Child> child = Spawn(role, std::move(args));
    if (!child.ok()) return child.status();
    children_.push_back(*std::move(child));
    return absl::OkStatus();
  }

  // Starts child `index` again with `args`, once its old process has exited.
  absl::Status Restart(size_t index, std::vector<std::string> args) {
    Child& old = children_[index];
    for (int k = 0; k < 2; ++k) {
      while (old.fds[k] >= 0) Drain(old, k);
    }
    absl::StatusOr<Child> child = Spawn(old.role, std::move(args));
    if (!child.ok()) return child.status();
    child->address = old.address;
    old = *std::move(child);
    return absl::OkStatus();
  }

  std::vector<Child>& children() { return children_; }

 private:
  absl::StatusOr<Child> Spawn(const std::string& role, std::vector<std::string> args) {
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
    child.fds[0] = out[0];
    child.fds[1] = err[0];
    PSREC_LOG(INFO) << "started " << role << " (pid " << pid << "): psrec "
                    << absl::StrJoin(args, " ");
    child.args = std::move(args);
    return child;
  }

 public:
  // Forwards the children's output for up to `timeout`, and notes the children that exited.
  void Pump(absl::Duration timeout) {
    std::vector<pollfd> fds = {{g_signal_pipe[0], POLLIN, 0}};
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
      if (fds[0].revents != 0) {  // g_signal says which; empty the pipe so poll sleeps again
        char bytes[64];
        while (::read(g_signal_pipe[0], bytes, sizeof(bytes)) > 0) {
        }
      }
      for (size_t f = 1; f < fds.size(); ++f) {
        if (fds[f].revents != 0) Drain(children_[owners[f].first], owners[f].second);
      }
    }
    Reap();
  }

  // SIGTERM to every live child (and SIGCONT, so that a stopped one acts on it), then SIGKILL to
  // any still alive after kKillGrace.
  void StopAll() {
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
        ::waitpid(c.pid, &status, 0);
        c.exited = true;
        c.status = status;
      }
      for (int k = 0; k < 2; ++k) {
        if (c.fds[k] >= 0) Drain(c, k);
      }
    }
  }

  bool AllExited() const {
    for (const Child& c : children_) {
      if (!c.exited) return false;
    }
    return true;
  }

 private:
  void Drain(Child& c, int k) {
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

  // stdout passes through; stderr lines get the role unless the child already put it there.
  static void Emit(const Child& c, int k, const std::string& line) {
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

  void Reap() {
    for (Child& c : children_) {
      if (c.exited) continue;
      int status;
      if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        c.status = status;
      }
    }
  }

  std::vector<Child> children_;
};

// Waits for a child started with --port=0 to write the port it bound.
absl::StatusOr<int> WaitForPort(Cluster& cluster, size_t index, const std::string& path) {
  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (absl::Now() < deadline) {
    cluster.Pump(absl::Milliseconds(50));
    const Child& child = cluster.children()[index];
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    if (child.exited) {
      return absl::UnavailableError(absl::StrCat(DescribeExit(child), " while starting"));
    }
    if (g_signal != 0) return absl::CancelledError("interrupted while starting the cluster");
  }
  return absl::DeadlineExceededError(absl::StrCat(cluster.children()[index].role,
                                                  " did not report its port within ",
                                                  absl::FormatDuration(kStartTimeout)));
}

std::string ClusterJson(const std::vector<Child>& children) {
  std::string out = "{\n  \"processes\": [";
  for (size_t i = 0; i < children.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", "\n    {\"role\": \"", children[i].role,
                    "\", \"pid\": ", children[i].pid, ", \"address\": \"", children[i].address,
                    "\"}");
  }
  return out + "\n  ]\n}\n";
}

absl::Status StartServers(Cluster& cluster, const JobConfig& config, const ClusterOptions& options,
                          const std::string& config_path) {
  std::vector<std::string> ps_addresses;
  for (uint32_t shard = 0; shard < config.num_shards(); ++shard) {
    const std::string port_file = absl::StrCat(options.out_dir, "/ps", shard, ".port");
    std::remove(port_file.c_str());
    std::vector<std::string> args = {"ps",
                                     "--config=" + config_path,
                                     absl::StrCat("--shard=", shard),
                                     absl::StrCat("--num_shards=", config.num_shards()),
                                     "--host=127.0.0.1",
                                     "--port=0",
                                     "--port_file=" + port_file};
    args.insert(args.end(), options.ps_flags.begin(), options.ps_flags.end());
    if (absl::Status s = cluster.Start(absl::StrCat("ps", shard), std::move(args)); !s.ok()) {
      return s;
    }
    absl::StatusOr<int> port = WaitForPort(cluster, cluster.children().size() - 1, port_file);
    if (!port.ok()) return port.status();
    cluster.children().back().address = absl::StrCat("127.0.0.1:", *port);
    ps_addresses.push_back(cluster.children().back().address);
  }
  const std::string port_file = options.out_dir + "/coordinator.port";
  std::remove(port_file.c_str());
  std::vector<std::string> args = {"coordinator",
                                   "--config=" + config_path,
                                   "--ps=" + absl::StrJoin(ps_addresses, ","),
                                   "--host=127.0.0.1",
                                   "--port=0",
                                   "--port_file=" + port_file};
  if (!options.metrics_out.empty()) args.push_back("--metrics_out=" + options.metrics_out);
  args.insert(args.end(), options.coordinator_flags.begin(), options.coordinator_flags.end());
  if (absl::Status s = cluster.Start("coordinator", args); !s.ok()) return s;
  absl::StatusOr<int> port = WaitForPort(cluster, cluster.children().size() - 1, port_file);
  if (!port.ok()) return port.status();
  cluster.children().back().address = absl::StrCat("127.0.0.1:", *port);
  return absl::OkStatus();
}

bool IsServer(const Child& c) { return c.role.rfind("ps", 0) == 0; }
bool IsWorker(const Child& c) { return c.role.rfind("worker", 0) == 0; }

// Runs until the coordinator is done (then gives the others kExitGrace to leave), a child fails, or
// a signal arrives. While the job runs, a parameter server that dies is started again on its port
// (the coordinator then restores it from the last checkpoint), up to options.max_restarts times
// in all, and a worker killed by a signal is left dead (the coordinator redoes its work with the
// others); a worker that exits with an error, having found something wrong, fails the job.
absl::Status Supervise(Cluster& cluster, size_t coordinator, const ClusterOptions& options,
                       const std::string& cluster_json) {
  uint32_t restarts = 0;
  while (true) {
    cluster.Pump(absl::Milliseconds(200));
    if (g_signal != 0) return absl::CancelledError(absl::StrCat("stopped by signal ", g_signal));
    for (size_t i = 0; i < cluster.children().size(); ++i) {
      Child& c = cluster.children()[i];
      if (!Failed(c) || cluster.children()[coordinator].exited) continue;
      const std::string what = DescribeExit(c);
      if (IsWorker(c) && WIFSIGNALED(c.status)) {
        PSREC_LOG(WARNING) << what << "; the coordinator redoes its work with the other workers";
        c.status = 0;  // reported once
        continue;
      }
      if (IsWorker(c)) {
        // Workers exit with an error when the coordinator says the job failed; the coordinator's
        // own exit, a moment later, is the one that names the cause.
        const Child& coord = cluster.children()[coordinator];
        const absl::Time wait_until = absl::Now() + absl::Seconds(10);
        while (!coord.exited && absl::Now() < wait_until) cluster.Pump(absl::Milliseconds(50));
        if (Failed(coord)) {
          return absl::AbortedError(DescribeExit(coord));
        }
        return absl::AbortedError(what);
      }
      if (!IsServer(c) || restarts >= options.max_restarts) {
        return absl::AbortedError(
            IsServer(c) ? absl::StrCat(what, " after ", restarts, " restarts (--max_restarts)")
                        : what);
      }
      ++restarts;
      std::vector<std::string> args = c.args;
      const std::string port = c.address.substr(c.address.rfind(':') + 1);
      for (std::string& a : args) {
        if (a == "--port=0") a = "--port=" + port;
      }
      PSREC_LOG(WARNING) << what << "; restarting it on port " << port << " (restart " << restarts
                         << " of " << options.max_restarts << ")";
      if (absl::Status s = cluster.Restart(i, std::move(args)); !s.ok()) return s;
      if (absl::Status s = WriteFileAtomically(cluster_json, ClusterJson(cluster.children()));
          !s.ok()) {
        return s;
      }
    }
    if (cluster.children()[coordinator].exited) break;
  }
  // A failed job needs no grace: its coordinator has stopped what can be stopped politely.
  if (const Child& c = cluster.children()[coordinator]; Failed(c)) {
    return absl::AbortedError(DescribeExit(c));
  }
  const absl::Time deadline = absl::Now() + kExitGrace;
  while (!cluster.AllExited() && absl::Now() < deadline) cluster.Pump(absl::Milliseconds(100));
  for (const Child& c : cluster.children()) {
    if (Failed(c)) {
      return absl::AbortedError(DescribeExit(c));
    }
    if (!c.exited) {
      PSREC_LOG(WARNING) << c.role << " (pid " << c.pid << ") still running "
                         << absl::FormatDuration(kExitGrace) << " after the job ended; stopping it";
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunLocalCluster(const JobConfig& config, const ClusterOptions& options) {
  std::error_code error;
  std::filesystem::create_directories(options.out_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", options.out_dir, ": ", error.message()));
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  const std::string config_path = options.out_dir + "/job.textproto";
  if (absl::Status s = WriteFileAtomically(config_path, text); !s.ok()) return s;

  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  struct sigaction action = {}, old_int = {}, old_term = {};
  action.sa_handler = &OnSignal;
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);

  absl::Status status;
  {
    Cluster cluster;
    status = StartServers(cluster, config, options, config_path);
    const size_t coordinator = cluster.children().size() - 1;
    const std::string coordinator_address =
        status.ok() ? cluster.children()[coordinator].address : "";
    for (uint32_t w = 0; status.ok() && w < config.num_workers(); ++w) {
      std::vector<std::string> args = {"worker", "--config=" + config_path,
                                       "--coordinator=" + coordinator_address,
                                       absl::StrCat("--name=worker", w)};
      args.insert(args.end(), options.worker_flags.begin(), options.worker_flags.end());
      status = cluster.Start(absl::StrCat("worker", w), std::move(args));
    }
    const std::string cluster_json = options.out_dir + "/cluster.json";
    if (status.ok()) status = WriteFileAtomically(cluster_json, ClusterJson(cluster.children()));
    if (status.ok()) status = Supervise(cluster, coordinator, options, cluster_json);
    if (!status.ok()) PSREC_LOG(ERROR) << status.message() << "; stopping the cluster";
    cluster.StopAll();
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
  g_signal_pipe[0] = g_signal_pipe[1] = -1;
  g_signal = 0;
  return status;
}

}  // namespace psrec

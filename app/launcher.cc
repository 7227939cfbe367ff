#include "app/launcher.h"

#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/process_group.h"
#include "common/files.h"
#include "common/job_report.h"
#include "common/log.h"
#include "google/protobuf/text_format.h"

namespace psrec {
namespace {

constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kExitGrace = absl::Seconds(15);

// Waits for a child started with --port=0 to write the port it bound.
absl::StatusOr<int> WaitForPort(ProcessGroup& cluster, size_t index, const std::string& path) {
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
    if (cluster.stopped()) return absl::CancelledError("interrupted while starting the cluster");
  }
  return absl::DeadlineExceededError(absl::StrCat(cluster.children()[index].role,
                                                  " did not report its port within ",
                                                  absl::FormatDuration(kStartTimeout)));
}

// The port child `index` (in cluster.json's order) serves /metrics on, or 0 for none.
int32_t MetricsPortOf(const ClusterOptions& options, size_t index) {
  return options.metrics_port > 0 ? options.metrics_port + static_cast<int32_t>(index) : 0;
}

std::string ClusterJson(const std::vector<Child>& children, const ClusterOptions& options) {
  std::string out = "{\n  \"processes\": [";
  for (size_t i = 0; i < children.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", "\n    {\"role\": \"", children[i].role,
                    "\", \"pid\": ", children[i].pid, ", \"address\": \"", children[i].address,
                    "\"");
    if (const int32_t port = MetricsPortOf(options, i); port > 0) {
      absl::StrAppend(&out, ", \"metrics\": \"127.0.0.1:", port, "\"");
    }
    if (children[i].cpu >= 0) absl::StrAppend(&out, ", \"cpu\": ", children[i].cpu);
    absl::StrAppend(&out, "}");
  }
  return out + "\n  ]\n}\n";
}

absl::Status WriteClusterJson(ProcessGroup& cluster, const ClusterOptions& options,
                              const std::string& path) {
  return WriteFileAtomically(path, ClusterJson(cluster.children(), options));
}

// Starts the cluster's next child, with --metrics_port when options.metrics_port asks for it, on
// the CPU options.cpus gives it.
absl::Status StartChild(ProcessGroup& cluster, const ClusterOptions& options,
                        const std::string& role, std::vector<std::string> args) {
  const size_t index = cluster.children().size();
  if (const int32_t port = MetricsPortOf(options, index); port > 0) {
    args.push_back(absl::StrCat("--metrics_port=", port));
  }
  return cluster.Start(role, std::move(args),
                       index < options.cpus.size() ? options.cpus[index] : -1);
}

absl::Status StartServers(ProcessGroup& cluster, const JobConfig& config,
                          const ClusterOptions& options, const std::string& config_path) {
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
    if (absl::Status s = StartChild(cluster, options, absl::StrCat("ps", shard), std::move(args));
        !s.ok()) {
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
  if (absl::Status s = StartChild(cluster, options, "coordinator", args); !s.ok()) return s;
  absl::StatusOr<int> port = WaitForPort(cluster, cluster.children().size() - 1, port_file);
  if (!port.ok()) return port.status();
  cluster.children().back().address = absl::StrCat("127.0.0.1:", *port);
  return absl::OkStatus();
}

bool IsServer(const Child& c) { return c.role.rfind("ps", 0) == 0; }
bool IsWorker(const Child& c) { return c.role.rfind("worker", 0) == 0; }

// Died of a signal, or exited as a role does after SIGTERM or SIGINT (143, 130): a stop, which a
// restart mends, rather than an error, which it would meet again.
bool Stopped(const Child& c) {
  return WIFSIGNALED(c.status) || (WIFEXITED(c.status) && (WEXITSTATUS(c.status) == 128 + SIGTERM ||
                                                           WEXITSTATUS(c.status) == 128 + SIGINT));
}

// Starts child `i` again on the port it had, with `args` (its arguments, "--port=0" replaced),
// counting the restart against options.max_restarts.
absl::Status RestartOnItsPort(ProcessGroup& cluster, size_t i, std::vector<std::string> args,
                              const ClusterOptions& options, uint32_t* restarts,
                              const std::string& cluster_json) {
  Child& c = cluster.children()[i];
  const std::string what = DescribeExit(c);
  if (*restarts >= options.max_restarts) {
    return absl::AbortedError(
        absl::StrCat(what, " after ", *restarts, " restarts (--max_restarts)"));
  }
  ++*restarts;
  const std::string port = c.address.substr(c.address.rfind(':') + 1);
  for (std::string& a : args) {
    if (a == "--port=0") a = "--port=" + port;
  }
  PSREC_LOG(WARNING) << what << "; restarting it on port " << port << " (restart " << *restarts
                     << " of " << options.max_restarts << ")";
  if (absl::Status s = cluster.Restart(i, std::move(args)); !s.ok()) return s;
  return WriteClusterJson(cluster, options, cluster_json);
}

// The coordinator stopped while the job runs (killed, or exited 143 after SIGTERM): it is started
// again on its port with --auto_resume, so that it continues from its last complete checkpoint (or
// from the start, if it wrote none), and the live servers and workers rejoin it. Any other failure
// of the coordinator ends the job with it.
absl::Status OnCoordinatorFailed(ProcessGroup& cluster, size_t coordinator,
                                 const ClusterOptions& options, uint32_t* restarts,
                                 const std::string& cluster_json) {
  const Child& c = cluster.children()[coordinator];
  if (!Stopped(c)) return absl::AbortedError(DescribeExit(c));
  std::vector<std::string> args;
  for (const std::string& a : c.args) {
    if (a.rfind("--resume=", 0) != 0 && a.rfind("--auto_resume=", 0) != 0) args.push_back(a);
  }
  args.push_back("--auto_resume=true");
  return RestartOnItsPort(cluster, coordinator, std::move(args), options, restarts, cluster_json);
}

// Child `i` failed while the job runs. A worker killed by a signal is left dead (the coordinator
// redoes its work with the others); a worker that exits with an error, having found something
// wrong, fails the job; a parameter server is started again on its port (the coordinator then
// restores it from the last checkpoint), up to options.max_restarts times in all, a count shared
// with the coordinator's restarts. OK to go on.
absl::Status OnChildFailed(ProcessGroup& cluster, size_t i, size_t coordinator,
                           const ClusterOptions& options, uint32_t* restarts,
                           const std::string& cluster_json) {
  Child& c = cluster.children()[i];
  const std::string what = DescribeExit(c);
  if (IsWorker(c) && WIFSIGNALED(c.status)) {
    PSREC_LOG(WARNING) << what << "; the coordinator redoes its work with the other workers";
    c.status = 0;  // reported once
    return absl::OkStatus();
  }
  if (IsWorker(c)) {
    // Workers exit with an error when the coordinator says the job failed; the coordinator's own
    // exit, a moment later, is the one that names the cause.
    const Child& coord = cluster.children()[coordinator];
    const absl::Time wait_until = absl::Now() + absl::Seconds(10);
    while (!coord.exited && absl::Now() < wait_until) cluster.Pump(absl::Milliseconds(50));
    return absl::AbortedError(Failed(coord) ? DescribeExit(coord) : what);
  }
  if (!IsServer(c)) return absl::AbortedError(what);
  return RestartOnItsPort(cluster, i, c.args, options, restarts, cluster_json);
}

// Once the coordinator is done: gives the others kExitGrace to leave, and fails if one did not
// leave cleanly. A failed job needs no grace: its coordinator has stopped what can be stopped.
absl::Status WaitForTheRest(ProcessGroup& cluster, size_t coordinator) {
  if (const Child& c = cluster.children()[coordinator]; Failed(c)) {
    return absl::AbortedError(DescribeExit(c));
  }
  const absl::Time deadline = absl::Now() + kExitGrace;
  while (!cluster.AllExited() && absl::Now() < deadline) cluster.Pump(absl::Milliseconds(100));
  for (const Child& c : cluster.children()) {
    if (Failed(c)) return absl::AbortedError(DescribeExit(c));
    if (!c.exited) {
      PSREC_LOG(WARNING) << c.role << " (pid " << c.pid << ") still running "
                         << absl::FormatDuration(kExitGrace) << " after the job ended; stopping it";
    }
  }
  return absl::OkStatus();
}

// Every child's peak RSS and CPU time, from the kernel's accounting at its exit, as a table
// (the coordinator's metrics JSON has the workers' and its own, but not the servers').
void LogProcesses(const std::vector<Child>& children) {
  std::vector<ProcessReport> processes;
  for (const Child& c : children) {
    if (!c.exited) continue;
    const std::string role = IsServer(c) ? "ps" : IsWorker(c) ? "worker" : c.role;
    processes.push_back(ProcessReport{role, c.role, c.peak_rss_bytes, c.cpu_seconds, ""});
  }
  PSREC_LOG(INFO) << "processes of the cluster:\n" << ProcessTable(processes);
}

// Runs until the coordinator is done, a child fails for good, or a signal arrives.
absl::Status Supervise(ProcessGroup& cluster, size_t coordinator, const ClusterOptions& options,
                       const std::string& cluster_json) {
  uint32_t restarts = 0;
  while (!cluster.children()[coordinator].exited || Failed(cluster.children()[coordinator])) {
    if (!cluster.children()[coordinator].exited) cluster.Pump(absl::Milliseconds(200));
    if (cluster.stopped()) {
      return absl::CancelledError(absl::StrCat("stopped by signal ", cluster.stop_signal()));
    }
    if (Failed(cluster.children()[coordinator])) {
      if (absl::Status s =
              OnCoordinatorFailed(cluster, coordinator, options, &restarts, cluster_json);
          !s.ok()) {
        return s;
      }
      continue;
    }
    for (size_t i = 0; i < cluster.children().size(); ++i) {
      if (!Failed(cluster.children()[i]) || cluster.children()[coordinator].exited) continue;
      if (absl::Status s = OnChildFailed(cluster, i, coordinator, options, &restarts, cluster_json);
          !s.ok()) {
        return s;
      }
    }
  }
  return WaitForTheRest(cluster, coordinator);
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

  StopSignal stop;
  if (absl::Status s = stop.Install(); !s.ok()) return s;
  absl::Status status;
  {
    ProcessGroup cluster(&stop);
    status = StartServers(cluster, config, options, config_path);
    const size_t coordinator = cluster.children().size() - 1;
    const std::string coordinator_address =
        status.ok() ? cluster.children()[coordinator].address : "";
    for (uint32_t w = 0; status.ok() && w < config.num_workers(); ++w) {
      std::vector<std::string> args = {"worker", "--config=" + config_path,
                                       "--coordinator=" + coordinator_address,
                                       absl::StrCat("--name=worker", w)};
      args.insert(args.end(), options.worker_flags.begin(), options.worker_flags.end());
      status = StartChild(cluster, options, absl::StrCat("worker", w), std::move(args));
    }
    const std::string cluster_json = options.out_dir + "/cluster.json";
    if (status.ok()) status = WriteClusterJson(cluster, options, cluster_json);
    if (status.ok()) status = Supervise(cluster, coordinator, options, cluster_json);
    if (!status.ok()) PSREC_LOG(ERROR) << status.message() << "; stopping the cluster";
    cluster.StopAll();
    LogProcesses(cluster.children());
  }
  return status;
}

}  // namespace psrec

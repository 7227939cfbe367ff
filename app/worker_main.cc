#include "app/worker_main.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/data_flags.h"
#include "common/health.h"
#include "common/job_config.h"
#include "common/log.h"
#include "common/ops_flags.h"
#include "common/security.h"
#include "common/service_flags.h"
#include "common/stop_signal.h"
#include "worker/worker.h"

ABSL_FLAG(std::string, coordinator, "", "The coordinator's HOST:PORT. Required.");
ABSL_FLAG(std::string, name, "", "This worker's name in the coordinator's logs. Empty: HOST:PID.");

namespace psrec {
namespace {

std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, ":", getpid());
}

// SIGTERM (Kubernetes stopping the pod) or SIGINT: readiness goes NOT_SERVING, the coordinator is
// told, so that it redoes the epoch under way with the other workers at once rather than after the
// lease, and the process then dies of the signal as it did before: 143 to Kubernetes (not
// "succeeded", so an Indexed Job replaces the index) and a death by signal to psrec train's
// launcher, which carries on with the other workers. Returns when `stop` is notified without one.
void LeaveOnSignal(StopSignal& stop, Worker& worker, HealthServer* health) {
  stop.Wait();
  const int sig = stop.signal();
  if (sig == 0) return;
  SetStopping(health);
  const std::string reason = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  if (absl::Status s = worker.Leave(reason); s.ok()) {
    PSREC_LOG(WARNING) << "leaving the job on " << reason << "; told the coordinator";
  } else {
    PSREC_LOG(WARNING) << "leaving the job on " << reason << ": " << s.message()
                       << "; the coordinator notices when the lease runs out";
  }
  std::signal(sig, SIG_DFL);
  kill(getpid(), sig);
}

int RegisterAndRun(Worker& worker, const WorkerOptions& options, HealthServer* health) {
  absl::StatusOr<Worker::Admission> admission = worker.Register();
  SetReady(health, admission.ok());
  if (!admission.ok()) {
    return Exit("worker", absl::IsFailedPrecondition(admission.status()) ? 2 : 1,
                admission.status());
  }
  if (*admission == Worker::Admission::kJobIsDone) {
    return Exit(
        "worker", 0,
        absl::StrCat("the job at ", options.coordinator, " is already done; nothing to do"));
  }
  if (absl::Status s = worker.Run(); !s.ok()) {
    return Exit("worker", kExitFailed, s);
  }
  return 0;
}

int RunWorker(const std::set<std::string>& specified) {
  SetLogRole("worker");
  WorkerOptions options;
  options.coordinator = absl::GetFlag(FLAGS_coordinator);
  options.rpc_timeout = RpcTimeoutFlag();  // common/service_flags.h
  options.register_timeout = RegisterTimeoutFlag();
  options.fail_after = FailAfterFlag();
  options.name = absl::GetFlag(FLAGS_name);
  options.name_given = !options.name.empty();
  options.shares_dir = SharesDirFlag();
  if (!options.name_given) options.name = DefaultName();
  if (options.coordinator.empty()) {
    return Exit("worker", kExitUsage, "--coordinator=HOST:PORT is required");
  }
  if (options.rpc_timeout <= absl::ZeroDuration()) {
    return Exit("worker", kExitUsage, "--rpc_timeout must be positive");
  }
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) {
    return Exit("worker", kExitUsage, config.status());
  }
  if (absl::Status s = InitSecurityFromFlags(); !s.ok()) {
    return Exit("worker", kExitUsage, s);
  }
  absl::StatusOr<OpsEndpoints> ops = StartOpsEndpointsFromFlags();
  if (!ops.ok()) return Exit("worker", absl::IsInvalidArgument(ops.status()) ? 2 : 1, ops.status());
  Worker worker(*std::move(config), options);
  StopSignal stop;
  if (absl::Status s = stop.Install(); !s.ok()) return Exit("worker", kExitFailed, s);
  std::thread watcher([&] { LeaveOnSignal(stop, worker, ops->health.get()); });
  const int code = RegisterAndRun(worker, options, ops->health.get());
  stop.Notify();  // done without a signal: the watcher returns
  watcher.join();
  return code;
}

}  // namespace

Subcommand WorkerSubcommand() {
  return Subcommand{
      "worker",
      "train the partitions a coordinator hands out, against the parameter-server shards",
      "Registers with the coordinator (--coordinator=HOST:PORT) with the job config built from\n"
      "the flags below, which must match the coordinator's; maps only the data shares the\n"
      "coordinator assigns it (from --shares_dir, else where the coordinator found them; see\n"
      "psrec prepare --help), splits them, and trains each epoch on their training ratings,\n"
      "pulling rows from and pushing gradients to every ps shard, and scores their test ratings\n"
      "after each epoch, until the coordinator says the job is done. Every RPC has a deadline\n"
      "(--rpc_timeout). It heartbeats to keep its lease; when a server call fails it gives its\n"
      "partition up and trains what the coordinator hands out after rolling back. It gives up\n"
      "when the coordinator has been unreachable for --fail_after. While every place is held by\n"
      "a live worker, it waits to replace one whose lease runs out.\n\n"
      "On SIGTERM or SIGINT it tells the coordinator it is leaving (the others redo the epoch\n"
      "under way at once) and dies of the signal (exit status 143 for SIGTERM).\n\n"
      "Exit status: 0 when done, or when the job had already finished; 2 for bad flags or a\n"
      "config that differs from the coordinator's; 1 for any other failure (the message names\n"
      "the RPC and its peer).",
      {JobFlagsFile(), DataFlagsFile(), PeerFlagsFile(), SecurityFlagsFile(), OpsFlagsFile(),
       __FILE__},
      &RunWorker,
  };
}

}  // namespace psrec

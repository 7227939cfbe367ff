#include "app/coordinator_main.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/metrics_flag.h"
#include "app/recovery_flags.h"
#include "common/cli.h"
#include "common/data_flags.h"
#include "common/job_config.h"
#include "common/job_report.h"
#include "common/log.h"
#include "common/ops_flags.h"
#include "common/prepare.h"
#include "common/rpc.h"
#include "common/security.h"
#include "common/service_flags.h"
#include "common/stop_signal.h"
#include "coordinator/coordinator_service.h"
#include "grpcpp/grpcpp.h"
#include "proto/ps.grpc.pb.h"

ABSL_FLAG(std::string, ps, "",
          "Comma-separated host:port of the parameter servers, shard 0 first.");
ABSL_FLAG(absl::Duration, epoch_timeout, absl::Hours(2), "How long one epoch may take.");

namespace psrec {
namespace {

// How long a stopping coordinator waits for the epoch under way to end and its final checkpoint
// to be written: well inside the 60 s that Kubernetes gives the coordinator's pod
// (deploy/k8s/base/coordinator.yaml, terminationGracePeriodSeconds) before its SIGKILL.
constexpr absl::Duration kStopGrace = absl::Seconds(40);

int Fail(const absl::Status& status, int code = 1) {
  PSREC_LOG(ERROR) << status.message();
  return Exit("coordinator", code, status);
}

// The stop contract (deploy/NOTES-for-cpp.md, "SIGTERM"). Waits for SIGTERM or SIGINT, or for
// `job_over` without one. On a signal: readiness NOT_SERVING at once, and the job loop ends at the
// next epoch boundary after writing a final checkpoint there (JobRunner::RequestStop, for every
// consistency). If the job loop has not ended kStopGrace after the signal (a long epoch, or the
// servers not answering), the process exits 128 + signal at once, without a final checkpoint: the
// last complete one stays as it was, and a checkpoint cut short has no MANIFEST, so no resume
// takes it. The servers and workers are never told to exit: they wait for the next incarnation.
void StopOnSignal(StopSignal& stop, CoordinatorService& service, HealthServer* health,
                  absl::Notification& job_over) {
  stop.Wait();
  const int sig = stop.signal();
  if (sig == 0) return;  // the job ended on its own
  SetStopping(health);
  PSREC_LOG(WARNING) << "stopping on " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
                     << ": a final checkpoint at the end of the epoch under way, for up to "
                     << absl::FormatDuration(kStopGrace);
  service.RequestStop();
  if (job_over.WaitForNotificationWithTimeout(kStopGrace)) return;
  PSREC_LOG(WARNING) << "the epoch under way did not end within "
                     << absl::FormatDuration(kStopGrace)
                     << "; exiting without a final checkpoint (the last complete one stands)";
  std::_Exit(128 + sig);
}

// After a stop on a signal: the workers and servers are left as they are, for the next
// incarnation (started with --auto_resume) to take over. Returns 128 + the signal.
int Stopped(const absl::Status& why, int sig, grpc::Server& server) {
  PSREC_LOG(WARNING) << why.message() << "; exiting for the next coordinator to resume";
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 128 + sig;
}

// Runs the job on the started service, then stops the workers, the servers and the coordinator's
// own server; on SIGTERM or SIGINT, stops as StopOnSignal says. Returns the exit code.
int RunAndStop(CoordinatorService& service, GrpcShardControl& shards, grpc::Server& server,
               const JobConfig& config, HealthServer* health) {
  StopSignal stop;
  if (absl::Status s = stop.Install(); !s.ok()) return Fail(s);
  absl::Notification job_over;
  std::thread watcher([&] { StopOnSignal(stop, service, health, job_over); });
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob(RegisterTimeoutFlag(), absl::GetFlag(FLAGS_epoch_timeout), MetricsOutFlag());
  job_over.Notify();
  stop.Notify();
  watcher.join();
  if (stop.signal() != 0 && !records.ok()) return Stopped(records.status(), stop.signal(), server);
  if (!records.ok()) {
    PSREC_LOG(ERROR) << "the job failed: " << records.status().message();
    // The servers' rows are of no further use: what is worth keeping is in the checkpoints.
    // Stopping them first releases workers waiting in a pull, which then hear ABORTED.
    shards.ShutdownServers();
    service.WaitForWorkersToLeave(absl::Seconds(2));
    server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    // 2: a checkpoint of another config, which no restart can mend.
    return Fail(records.status(),
                absl::IsFailedPrecondition(records.status()) ? kExitUsage : kExitFailed);
  }
  std::printf("model=%s split=%s test_mae=%.4f test_rmse=%.4f\n",
              EnumFlagName(config.model()).c_str(), EnumFlagName(config.split()).c_str(),
              records->back().test.mae, records->back().test.rmse);
  std::fflush(stdout);
  service.WaitForWorkersToLeave(absl::Seconds(10));
  shards.ShutdownServers();
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

int RunCoordinator(const std::set<std::string>& specified) {
  SetLogRole("coordinator");
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) return Fail(config.status(), 2);
  if (absl::Status s = InitSecurityFromFlags(); !s.ok()) return Fail(s, 2);
  absl::StatusOr<RecoveryOptions> recovery = RecoveryOptionsFromFlags(*config);
  if (!recovery.ok()) return Fail(recovery.status(), 2);
  // Above every earlier incarnation's, as long as the clock does not go back.
  recovery->incarnation = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  const std::vector<std::string> ps =
      absl::StrSplit(absl::GetFlag(FLAGS_ps), ',', absl::SkipWhitespace());
  if (ps.empty()) return Fail(absl::InvalidArgumentError("--ps lists no parameter servers"), 2);
  config->set_num_shards(static_cast<uint32_t>(ps.size()));
  absl::StatusOr<OpsEndpoints> ops = StartOpsEndpointsFromFlags();
  if (!ops.ok()) return Fail(ops.status(), absl::IsInvalidArgument(ops.status()) ? 2 : 1);
  absl::StatusOr<std::string> data_dir = FindDataDir(config->data_dir());
  if (!data_dir.ok()) return Fail(data_dir.status());
  config->set_data_dir(*data_dir);
  // The coordinator reads the shares' manifest alone; the workers map the shares.
  JobDataInfo data;
  data.shares_dir = SharesDirFor(*data_dir, SharesDirFlag());
  absl::StatusOr<SharesManifest> manifest =
      EnsurePrepared(*data_dir, data.shares_dir, PrepareOptions());
  if (!manifest.ok()) return Fail(manifest.status());
  data.manifest = *std::move(manifest);
  data.fingerprint = ManifestFingerprint(data.manifest);

  GrpcShardControl shards(ps, RpcTimeoutFlag(), recovery->fail_after);
  if (absl::Status s = shards.CheckServers(*config); !s.ok()) {
    return Fail(s, absl::IsFailedPrecondition(s) ? 2 : 1);  // 2: a config the user must fix
  }
  CoordinatorService service(*config, ps, std::move(data), *recovery, &shards);
  absl::StatusOr<StartedServer> started = StartServer(HostFlag(), PortFlag(), {&service});
  if (!started.ok()) return Fail(started.status());
  grpc::Server* server = started->server.get();
  const int port = started->port;
  PSREC_LOG(INFO) << "listening on " << ListenAddress(HostFlag(), port) << ", " << ps.size()
                  << " parameter servers, " << config->num_workers() << " workers, "
                  << EnumFlagName(config->consistency());
  if (absl::Status s = WritePortFileIfRequested(port); !s.ok()) return Fail(s);
  SetReady(ops->health.get(), true);  // every server checked, and accepting workers
  return RunAndStop(service, shards, *server, *config, ops->health.get());
}

}  // namespace

Subcommand CoordinatorSubcommand() {
  return Subcommand{
      "coordinator",
      "schedule a distributed job: admit workers, assign partitions, evaluate each epoch",
      "Checks that every parameter server in --ps serves its shard with the same config, waits "
      "for\n"
      "--workers workers to register, and deals the data's prepared shares out to them (preparing\n"
      "the shares first if they are missing or stale: see psrec prepare --help). The workers\n"
      "split their shares (for seed_time the coordinator finds the global threshold exactly from\n"
      "their counts), train every epoch on them, and evaluate each epoch's model on their test\n"
      "ratings; the coordinator adds up their exact sums and never reads a rating itself. At the\n"
      "end it tells workers and servers to exit and logs every process's peak memory and CPU\n"
      "time. Prints 'model=... split=... test_mae=... test_rmse=...' on stdout when done.\n\n"
      "With --checkpoint_dir it has the servers checkpoint between epochs. When a worker's lease\n"
      "runs out, a worker reports a failed server call, or a server restarts, it rolls every "
      "shard\n"
      "back to the last complete checkpoint and the workers still alive redo the work from there. "
      "A\n"
      "server silent for --fail_after fails the job, naming it.\n\n"
      "On SIGTERM or SIGINT it goes NOT_SERVING, finishes the epoch under way, writes a final\n"
      "checkpoint and exits 143 (130), within 40 s; the servers and workers stay up. Started\n"
      "again with --auto_resume, it continues from the last complete checkpoint, and the live\n"
      "workers register with it again.",
      {JobFlagsFile(), DataFlagsFile(), ServiceFlagsFile(), PeerFlagsFile(), MetricsFlagFile(),
       RecoveryFlagsFile(), SecurityFlagsFile(), OpsFlagsFile(), __FILE__},
      &RunCoordinator,
  };
}

}  // namespace psrec

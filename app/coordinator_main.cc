#include "app/coordinator_main.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "app/metrics_flag.h"
#include "app/recovery_flags.h"
#include "common/data_flags.h"
#include "common/job_config.h"
#include "common/job_report.h"
#include "common/log.h"
#include "common/ops_flags.h"
#include "common/prepare.h"
#include "common/rpc.h"
#include "common/security.h"
#include "common/service_flags.h"
#include "coordinator/coordinator_service.h"
#include "grpcpp/grpcpp.h"
#include "proto/ps.grpc.pb.h"

ABSL_FLAG(std::string, ps, "",
          "Comma-separated host:port of the parameter servers, shard 0 first.");
ABSL_FLAG(absl::Duration, epoch_timeout, absl::Hours(2), "How long one epoch may take.");

namespace psrec {
namespace {

int Fail(const absl::Status& status, int code = 1) {
  PSREC_LOG(ERROR) << status.message();
  return Exit("coordinator", code, status);
}

// Runs the job on the started service, then stops the workers, the servers and the coordinator's
// own server. Returns the exit code.
int RunAndStop(CoordinatorService& service, GrpcShardControl& shards, grpc::Server& server,
               const JobConfig& config) {
  absl::StatusOr<std::vector<EpochRecord>> records =
      service.RunJob(RegisterTimeoutFlag(), absl::GetFlag(FLAGS_epoch_timeout), MetricsOutFlag());
  if (!records.ok()) {
    PSREC_LOG(ERROR) << "the job failed: " << records.status().message();
    // The servers' rows are of no further use: what is worth keeping is in the checkpoints.
    // Stopping them first releases workers waiting in a pull, which then hear ABORTED.
    shards.ShutdownServers();
    service.WaitForWorkersToLeave(absl::Seconds(2));
    server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    return Fail(records.status());
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
  return RunAndStop(service, shards, *server, *config);
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
      "server silent for --fail_after fails the job, naming it.",
      {JobFlagsFile(), DataFlagsFile(), ServiceFlagsFile(), PeerFlagsFile(), MetricsFlagFile(),
       RecoveryFlagsFile(), SecurityFlagsFile(), OpsFlagsFile(), __FILE__},
      &RunCoordinator,
  };
}

}  // namespace psrec

#include "app/train_main.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "app/cpu_placement.h"
#include "app/launcher.h"
#include "app/local_job.h"
#include "app/metrics_flag.h"
#include "app/recovery_flags.h"
#include "common/data_flags.h"
#include "common/job_config.h"
#include "common/log.h"
#include "common/prepare.h"
#include "common/process_stats.h"
#include "common/security.h"
#include "common/service_flags.h"

ABSL_FLAG(int32_t, ps_shards, 0,
          "Parameter-server processes to start on this machine (with --workers workers and a "
          "coordinator). 0 trains in this process.");
ABSL_FLAG(std::string, out_dir, "out/cluster",
          "With --ps_shards: where job.textproto, cluster.json and the port files go, and the "
          "checkpoints (OUT/checkpoints/run-TIME) when --checkpoint_dir is not given.");
ABSL_FLAG(int32_t, max_restarts, 3,
          "With --ps_shards: how many times in all a parameter server that died, or a coordinator "
          "killed by a signal, is started again (each time the job rolls back to its last "
          "checkpoint; a coordinator with --auto_resume).");
ABSL_FLAG(int32_t, cluster_metrics_port, 0,
          "With --ps_shards: every process of the cluster serves Prometheus /metrics (psrec_*) on "
          "0.0.0.0, on consecutive ports from this one in cluster.json's order (the servers, the "
          "coordinator, the workers), and cluster.json gives each one's address. 0: off.");

namespace psrec {
namespace {

// The child processes' flags for a local cluster of `ps_shards` servers.
ClusterOptions LocalClusterOptions(RecoveryOptions recovery, int32_t max_restarts,
                                   int32_t metrics_port) {
  ClusterOptions options;
  options.out_dir = absl::GetFlag(FLAGS_out_dir);
  options.metrics_out = MetricsOutFlag();
  options.max_restarts = static_cast<uint32_t>(max_restarts);
  options.metrics_port = metrics_port;
  if (recovery.checkpoint_dir.empty()) {
    // A directory of this run's own, so that it never mixes with another run's checkpoints.
    recovery.checkpoint_dir = absl::StrCat(
        options.out_dir, "/checkpoints/run-",
        absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()), "-", ::getpid());
  }
  const std::vector<std::string> timeouts = {
      absl::StrCat("--rpc_timeout=", absl::FormatDuration(RpcTimeoutFlag())),
      absl::StrCat("--register_timeout=", absl::FormatDuration(RegisterTimeoutFlag())),
      absl::StrCat("--fail_after=", absl::FormatDuration(recovery.fail_after))};
  const std::vector<std::string> security = SecurityFlagsForChildren();
  options.ps_flags = {"--checkpoint_dir=" + recovery.checkpoint_dir};
  options.coordinator_flags = RecoveryFlagsForChild(recovery);
  options.coordinator_flags.insert(options.coordinator_flags.end(), timeouts.begin(),
                                   timeouts.end());
  options.worker_flags = timeouts;
  for (auto* flags : {&options.ps_flags, &options.coordinator_flags, &options.worker_flags}) {
    flags->insert(flags->end(), security.begin(), security.end());
  }
  return options;
}

// The job in this process; prints the last epoch's line.
int RunInProcess(const JobConfig& config) {
  absl::StatusOr<std::vector<EpochRecord>> records = RunLocalJob(config, MetricsOutFlag());
  if (!records.ok()) return Exit("train", kExitFailed, records.status());
  const EpochRecord& last = records->back();
  std::printf("model=%s split=%s test_mae=%.4f test_rmse=%.4f%s\n",
              EnumFlagName(config.model()).c_str(), EnumFlagName(config.split()).c_str(),
              last.test.mae, last.test.rmse,
              config.loss() == BPR ? " (loss=bpr: of scores, not ratings; meaningless)" : "");
  return 0;
}

int RunTrain(const std::set<std::string>& specified) {
  SetLogRole("train");
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) return Exit("train", kExitUsage, config.status());
  if (config->loss() == BPR) {
    PSREC_LOG(INFO) << "--loss=bpr trains a ranking: the test MAE and RMSE below are of scores "
                       "clipped to [0.5, 5], not of ratings, and mean nothing; rank a checkpoint "
                       "with bench/recommend_bench --ranking";
  }
  absl::StatusOr<std::string> data_dir = FindDataDir(config->data_dir());
  if (!data_dir.ok()) return Exit("train", kExitFailed, data_dir.status());
  config->set_data_dir(*data_dir);
  const int32_t ps_shards = absl::GetFlag(FLAGS_ps_shards);
  if (ps_shards < 0) {
    return Exit("train", kExitUsage, absl::StrCat("--ps_shards=", ps_shards, " is negative"));
  }
  absl::StatusOr<RecoveryOptions> recovery = RecoveryOptionsFromFlags(*config);
  if (!recovery.ok()) return Exit("train", kExitUsage, recovery.status());
  if (absl::Status s = InitSecurityFromFlags(); !s.ok()) return Exit("train", kExitUsage, s);
  const int32_t max_restarts = absl::GetFlag(FLAGS_max_restarts);
  if (max_restarts < 0) {
    return Exit("train", kExitUsage, absl::StrCat("--max_restarts=", max_restarts, " is negative"));
  }
  const absl::StatusOr<bool> bind_cpus = CpuAffinityFromFlag();
  if (!bind_cpus.ok()) return Exit("train", kExitUsage, bind_cpus.status());
  const int32_t metrics_port = absl::GetFlag(FLAGS_cluster_metrics_port);
  const int64_t last_metrics_port =
      static_cast<int64_t>(metrics_port) + ps_shards + config->num_workers();
  if (metrics_port < 0 || (metrics_port > 0 && last_metrics_port > 65535)) {
    return Exit(
        "train", kExitUsage,
        absl::StrCat("--cluster_metrics_port=", metrics_port, ": the ", ps_shards, " + 1 + ",
                     config->num_workers(), " ports from it must lie in [1, 65535]"));
  }
  if (ps_shards == 0) {
    for (const char* flag : {"checkpoint_dir", "resume", "cluster_metrics_port"}) {
      if (specified.count(flag) > 0) {
        return Exit(
            "train", kExitUsage,
            absl::StrCat("--", flag,
                         " needs --ps_shards: the in-process trainer keeps no checkpoints and "
                         "serves no metrics"));
      }
    }
    return RunInProcess(*config);
  }
  config->set_num_shards(static_cast<uint32_t>(ps_shards));
  // Prepared here, once, so that the children find fresh shares and start at once.
  const std::string shares_dir = SharesDirFor(config->data_dir(), SharesDirFlag());
  if (absl::StatusOr<SharesManifest> m =
          EnsurePrepared(config->data_dir(), shares_dir, PrepareOptions());
      !m.ok()) {
    return Exit("train", kExitFailed, m.status());
  }
  ClusterOptions options = LocalClusterOptions(*recovery, max_restarts, metrics_port);
  if (*bind_cpus) {
    options.cpus = PlaceChildren(AllowedCpus(), config->num_shards(), config->num_workers(),
                                 config->consistency());
  }
  options.coordinator_flags.push_back("--shares_dir=" + shares_dir);
  const absl::Status status = RunLocalCluster(*config, options);
  const ProcessReport self = SelfReport("launcher", "train");
  PSREC_LOG(INFO) << absl::StrFormat("this launcher (pid %d): peak RSS %.1f MB, %.2f s CPU",
                                     getpid(), static_cast<double>(self.peak_rss_bytes) / 1e6,
                                     self.cpu_seconds);
  if (!status.ok()) return Exit("train", kExitFailed, status);
  return 0;
}

}  // namespace

Subcommand TrainSubcommand() {
  return Subcommand{
      "train",
      "train a model on MovieLens and report test MAE and RMSE after every epoch",
      "Reads the ratings, splits them, trains with the parameter tables in this process and\n"
      "evaluates on the test split after every epoch. Progress goes to stderr; the final line on\n"
      "stdout is 'model=... split=... test_mae=... test_rmse=...'. The ratings are read through\n"
      "their prepared shares (--shares_dir), made from the ratings file the first time and\n"
      "whenever it changes (see psrec prepare --help); later runs map them instead of parsing.\n"
      "The end of the run logs each process's peak memory and CPU time (also in --metrics_out).\n"
      "With --loss=bpr the model learns a ranking, not ratings: its test MAE and RMSE mean\n"
      "nothing (the final line says so); rank its checkpoint with recommend_bench --ranking.\n\n"
      "With --ps_shards=N (N >= 1) the same job runs as separate processes on this machine: N\n"
      "parameter servers, --workers workers and a coordinator, on 127.0.0.1 with free ports. "
      "Their\n"
      "log lines are prefixed with their role, OUT/cluster.json lists them, and all of them are\n"
      "stopped when the job ends, when one fails, or on Ctrl-C. The job survives a parameter "
      "server\n"
      "that dies (it is restarted and the job rolls back to the last checkpoint) and a worker "
      "that\n"
      "is killed (the others redo its work from the last checkpoint).",
      {JobFlagsFile(), DataFlagsFile(), MetricsFlagFile(), RecoveryFlagsFile(), PeerFlagsFile(),
       SecurityFlagsFile(), CpuPlacementFlagsFile(), __FILE__},
      &RunTrain,
  };
}

}  // namespace psrec

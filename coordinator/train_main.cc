#include "coordinator/train_main.h"

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "coordinator/job.h"
#include "coordinator/job_config.h"
#include "coordinator/launcher.h"
#include "coordinator/metrics_flag.h"

ABSL_FLAG(int32_t, ps_shards, 0,
          "Parameter-server processes to start on this machine (with --workers workers and a "
          "coordinator). 0 trains in this process.");
ABSL_FLAG(std::string, out_dir, "out/cluster",
          "With --ps_shards: where job.textproto, cluster.json and the port files go.");

namespace psrec {
namespace {

int RunTrain(const std::set<std::string>& specified) {
  SetLogRole("train");
  absl::StatusOr<JobConfig> config = JobConfigFromFlags(specified);
  if (!config.ok()) {
    std::fprintf(stderr, "psrec train: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::string> data_dir = FindDataDir(config->data_dir());
  if (!data_dir.ok()) {
    std::fprintf(stderr, "psrec train: %s\n", std::string(data_dir.status().message()).c_str());
    return 1;
  }
  config->set_data_dir(*data_dir);
  const int32_t ps_shards = absl::GetFlag(FLAGS_ps_shards);
  if (ps_shards < 0) {
    std::fprintf(stderr, "psrec train: --ps_shards=%d is negative\n", ps_shards);
    return 2;
  }
  if (ps_shards > 0) {
    config->set_num_shards(static_cast<uint32_t>(ps_shards));
    const absl::Status status =
        RunLocalCluster(*config, ClusterOptions{absl::GetFlag(FLAGS_out_dir), MetricsOutFlag()});
    if (!status.ok()) {
      std::fprintf(stderr, "psrec train: %s\n", std::string(status.message()).c_str());
      return 1;
    }
    return 0;
  }
  absl::StatusOr<std::vector<EpochRecord>> records = RunLocalJob(*config, MetricsOutFlag());
  if (!records.ok()) {
    std::fprintf(stderr, "psrec train: %s\n", std::string(records.status().message()).c_str());
    return 1;
  }
  const EpochRecord& last = records->back();
  std::printf("model=%s split=%s test_mae=%.4f test_rmse=%.4f\n",
              EnumFlagName(config->model()).c_str(), EnumFlagName(config->split()).c_str(),
              last.test.mae, last.test.rmse);
  return 0;
}

}  // namespace

Subcommand TrainSubcommand() {
  return Subcommand{
      "train",
      "train a model on MovieLens and report test MAE and RMSE after every epoch",
      "Reads the ratings, splits them, trains with the parameter tables in this process and\n"
      "evaluates on the test split after every epoch. Progress goes to stderr; the final line on\n"
      "stdout is 'model=... split=... test_mae=... test_rmse=...'.\n\n"
      "With --ps_shards=N (N >= 1) the same job runs as separate processes on this machine: N\n"
      "parameter servers, --workers workers and a coordinator, on 127.0.0.1 with free ports. "
      "Their\n"
      "log lines are prefixed with their role, OUT/cluster.json lists them, and all of them are\n"
      "stopped when the job ends, when one fails, or on Ctrl-C.",
      {JobFlagsFile(), MetricsFlagFile(), __FILE__},
      &RunTrain,
  };
}

}  // namespace psrec

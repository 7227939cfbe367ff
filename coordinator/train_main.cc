#include "coordinator/train_main.h"

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "coordinator/job.h"
#include "coordinator/job_config.h"

ABSL_FLAG(std::string, metrics_out, "",
          "Write the resolved config and every epoch's train loss, test MAE, test RMSE and seconds "
          "to this JSON file.");

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
  absl::StatusOr<std::vector<EpochRecord>> records =
      RunLocalJob(*config, absl::GetFlag(FLAGS_metrics_out));
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
      "stdout is 'model=... split=... test_mae=... test_rmse=...'.",
      {JobFlagsFile(), __FILE__},
      &RunTrain,
  };
}

}  // namespace psrec

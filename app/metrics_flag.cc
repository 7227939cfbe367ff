#include "app/metrics_flag.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, metrics_out, "",
          "Write the resolved config and every epoch's train loss, test MAE, test RMSE and seconds "
          "to this JSON file, ending with \"final\": {\"test_mae\", \"test_rmse\"}.");

namespace psrec {

const char* MetricsFlagFile() { return __FILE__; }
std::string MetricsOutFlag() { return absl::GetFlag(FLAGS_metrics_out); }

}  // namespace psrec

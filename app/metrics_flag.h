// --metrics_out, shared by `psrec train` and `psrec coordinator`.
#ifndef PSREC_APP_METRICS_FLAG_H_
#define PSREC_APP_METRICS_FLAG_H_

#include <string>

namespace psrec {

const char* MetricsFlagFile();
std::string MetricsOutFlag();

}  // namespace psrec

#endif  // PSREC_APP_METRICS_FLAG_H_

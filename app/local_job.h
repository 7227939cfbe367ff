// The in-process job: read and split the data, train every epoch with the parameter tables in this
// process, and evaluate after each. It is the reference every distributed run must reproduce.
#ifndef PSREC_APP_LOCAL_JOB_H_
#define PSREC_APP_LOCAL_JOB_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_report.h"
#include "proto/config.pb.h"

namespace psrec {

// Trains config.epochs epochs in this process and evaluates after each. `metrics_out` may be empty.
absl::StatusOr<std::vector<EpochRecord>> RunLocalJob(JobConfig config,
                                                     const std::string& metrics_out);

}  // namespace psrec

#endif  // PSREC_APP_LOCAL_JOB_H_

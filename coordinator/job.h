// Running a job: reading and splitting the data, the epoch schedule, evaluation, and the metrics
// file. The in-process trainer (RunLocalJob) is the reference every distributed run must reproduce.
#ifndef PSREC_COORDINATOR_JOB_H_
#define PSREC_COORDINATOR_JOB_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/job_data.h"
#include "proto/config.pb.h"

namespace psrec {

struct EpochRecord {
  uint32_t epoch = 0;  // 1-based
  double train_loss = 0;
  TestMetrics test;
  double seconds = 0;        // the whole epoch, evaluation included
  double train_seconds = 0;  // training alone
  uint64_t examples = 0;     // ratings trained on
};

// Logs one line with the epoch's loss, test metrics and training speed. Fails, naming the epoch, if
// the loss or a metric is not finite: the run diverged, and its numbers must not be reported.
absl::Status FinishEpoch(const EpochRecord& record, uint32_t epochs);

// Writes {"config": ..., "epochs": [...], "final": {"test_mae", "test_rmse"}} to `path` through a
// temporary file and a rename, so a reader never sees half a file.
absl::Status WriteMetricsJson(const std::string& path, const JobConfig& config,
                              absl::Span<const EpochRecord> epochs);

// Trains config.epochs epochs in this process and evaluates after each. `metrics_out` may be empty.
absl::StatusOr<std::vector<EpochRecord>> RunLocalJob(JobConfig config,
                                                     const std::string& metrics_out);

}  // namespace psrec

#endif  // PSREC_COORDINATOR_JOB_H_

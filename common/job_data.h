// The data of a job, as every role sees it: the ratings read and split, the order each epoch visits
// them in, and the test metrics. Every process that reads the same file with the same config
// computes the same rows, offsets and orders, so none of it needs to travel.
#ifndef PSREC_COMMON_JOB_DATA_H_
#define PSREC_COMMON_JOB_DATA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/movielens.h"
#include "common/split.h"
#include "proto/config.pb.h"

namespace psrec {

struct JobData {
  Dataset data;
  SplitRows split;
};

// Reads config->data_dir and splits it. Sets config->rating_offset to the mean training rating.
absl::StatusOr<JobData> PrepareData(JobConfig* config);

// The order in which epoch `epoch` (0-based) visits the training rows: a shuffle seeded by
// (seed, epoch), so any process can recompute it.
std::vector<uint32_t> EpochOrder(absl::Span<const uint32_t> train, uint64_t seed, uint32_t epoch);

struct TestMetrics {
  double mae = 0;
  double rmse = 0;
};

// MAE and RMSE of `pred` against the ratings of `rows`, accumulated in double in row order.
TestMetrics Score(const Dataset& data, absl::Span<const uint32_t> rows,
                  absl::Span<const float> pred);

}  // namespace psrec

#endif  // PSREC_COMMON_JOB_DATA_H_

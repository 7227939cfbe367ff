#include "common/job_data.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/rng.h"

namespace psrec {

absl::StatusOr<JobData> PrepareData(JobConfig* config) {
  JobData job;
  absl::StatusOr<Dataset> data = ReadMovieLens(config->data_dir());
  if (!data.ok()) return data.status();
  job.data = *std::move(data);
  absl::StatusOr<SplitRows> split =
      SplitDataset(job.data, config->split(), config->test_fraction(), config->seed());
  if (!split.ok()) return split.status();
  job.split = *std::move(split);
  if (job.split.train.empty() || job.split.test.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(job.data.path, ": the ", EnumFlagName(config->split()), " split leaves ",
                     job.split.train.size(), " training and ", job.split.test.size(),
                     " test ratings; both must be non-empty"));
  }
  double sum = 0;
  for (uint32_t row : job.split.train) sum += job.data.ratings[row].rating;
  config->set_rating_offset(static_cast<float>(sum / static_cast<double>(job.split.train.size())));
  return job;
}

std::vector<uint32_t> EpochOrder(absl::Span<const uint32_t> train, uint64_t seed, uint32_t epoch) {
  std::vector<uint32_t> order(train.begin(), train.end());
  Shuffle(&order, HashCombine(HashCombine(seed, 0x5eed0fe90c4ULL), epoch));
  return order;
}

TestMetrics Score(const Dataset& data, absl::Span<const uint32_t> rows,
                  absl::Span<const float> pred) {
  double abs_sum = 0, sq_sum = 0;
  for (size_t k = 0; k < rows.size(); ++k) {
    const double err = static_cast<double>(pred[k]) - data.ratings[rows[k]].rating;
    abs_sum += std::fabs(err);
    sq_sum += err * err;
  }
  const double n = static_cast<double>(rows.size());
  return TestMetrics{abs_sum / n, std::sqrt(sq_sum / n)};
}

}  // namespace psrec

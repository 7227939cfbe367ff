// Train/test splits of a Dataset. Each returns row indices into Dataset::ratings, ascending (file
// order).
#ifndef PSREC_COMMON_SPLIT_H_
#define PSREC_COMMON_SPLIT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/movielens.h"
#include "proto/config.pb.h"

namespace psrec {

struct SplitRows {
  std::vector<uint32_t> train;
  std::vector<uint32_t> test;
};

// q in [0, 100]; numpy.percentile's default ("linear") interpolation. `values` need not be sorted.
// Requires a non-empty span.
double Percentile(absl::Span<const int64_t> values, double q);

// SEED_TIME: train = timestamp < Percentile(all timestamps, 100 * (1 - test_fraction)); test = the
// rest. USER_TIME: for each user, ratings sorted by timestamp (ties keep file order); the first
//            floor((1 - test_fraction) * n) train, the rest test.
// RANDOM:    a seeded shuffle; test = the first ceil(test_fraction * n) of it (sklearn's rounding).
// Fails on an empty dataset, an unspecified split, or test_fraction outside (0, 1).
absl::StatusOr<SplitRows> SplitDataset(const Dataset& data, Split split, double test_fraction,
                                       uint64_t seed);

}  // namespace psrec

#endif  // PSREC_COMMON_SPLIT_H_

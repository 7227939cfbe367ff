#include "common/job_data.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/rng.h"

namespace psrec {
namespace {

constexpr double kAbsUnit = 0x1p-24;  // |error| = abs_units * 2^-24
constexpr double kSqUnit = 0x1p-48;   // error^2 = sq_units * 2^-48

}  // namespace

std::vector<uint32_t> EpochOrder(absl::Span<const uint32_t> train, uint64_t seed, uint32_t epoch) {
  std::vector<uint32_t> order(train.begin(), train.end());
  Shuffle(&order, HashCombine(HashCombine(seed, 0x5eed0fe90c4ULL), epoch));
  return order;
}

void ErrorSums::Add(float prediction, float rating) {
  ++count_;
  if (!std::isfinite(prediction)) {
    ++non_finite_;
    return;
  }
  // Exact in double: both are floats, and a clipped prediction is at least 0.5, so the difference
  // is a multiple of 2^-24 below 2^3; llround only guards predictions outside the contract.
  const double error = std::fabs(static_cast<double>(prediction) - static_cast<double>(rating));
  const auto units = static_cast<uint64_t>(std::llround(error / kAbsUnit));
  abs_ += units;
  sq_ += static_cast<unsigned __int128>(units) * units;
}

void ErrorSums::Merge(const ErrorSums& other) {
  count_ += other.count_;
  abs_ += other.abs_;
  sq_ += other.sq_;
  non_finite_ += other.non_finite_;
}

TestMetrics ErrorSums::Metrics() const {
  if (non_finite_ > 0 || count_ == 0) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return TestMetrics{nan, nan};
  }
  const double n = static_cast<double>(count_);
  return TestMetrics{static_cast<double>(abs_) * kAbsUnit / n,
                     std::sqrt(static_cast<double>(sq_) * kSqUnit / n)};
}

ErrorSums ErrorSums::FromWire(uint64_t count, uint64_t abs_units, uint64_t sq_hi, uint64_t sq_lo,
                              uint64_t non_finite) {
  ErrorSums sums;
  sums.count_ = count;
  sums.abs_ = abs_units;
  sums.sq_ = (static_cast<unsigned __int128>(sq_hi) << 64) | sq_lo;
  sums.non_finite_ = non_finite;
  return sums;
}

ErrorSums ScoreRows(const RatingTable& table, absl::Span<const uint32_t> rows,
                    absl::Span<const float> pred) {
  ErrorSums sums;
  for (size_t k = 0; k < rows.size(); ++k) sums.Add(pred[k], table.Get(rows[k]).rating);
  return sums;
}

float SplitTotals::MeanTrainRating() const {
  // The sum of half stars halved is the sum of the ratings, exactly: the same double as adding the
  // float ratings one by one, so the offset is the one the whole-file reader gave.
  const double sum = static_cast<double>(train_half_stars) / 2.0;
  return static_cast<float>(sum / static_cast<double>(train));
}

PercentileSearch SeedTimeSearch(const SharesManifest& manifest, double test_fraction) {
  int64_t min = std::numeric_limits<int64_t>::max(), max = std::numeric_limits<int64_t>::min();
  for (const ShareInfo& share : manifest.shares()) {
    if (share.rows() == 0) continue;
    min = std::min(min, share.min_time());
    max = std::max(max, share.max_time());
  }
  return PercentileSearch(manifest.num_ratings(), 100.0 * (1.0 - test_fraction), min, max);
}

size_t BucketCount(absl::Span<const TimeBuckets> query) {
  size_t n = 0;
  for (const TimeBuckets& range : query) n += range.count;
  return n;
}

absl::Status CheckSplitTotals(const SplitTotals& totals, Split split, const std::string& what) {
  if (totals.train > 0 && totals.test > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": the ", EnumFlagName(split),
                                                 " split leaves ", totals.train, " training and ",
                                                 totals.test,
                                                 " test ratings; both must be "
                                                 "non-empty"));
}

absl::StatusOr<std::unique_ptr<ShareSet>> HoldAllShares(const std::string& shares_dir,
                                                        JobConfig* config) {
  absl::StatusOr<std::unique_ptr<ShareSet>> set = ShareSet::Open(shares_dir);
  if (!set.ok()) return set.status();
  const SharesManifest& manifest = (*set)->manifest();
  const std::vector<uint32_t> all = (*set)->AllShares();
  SplitSpec spec = SplitSpec::Of(*config);
  if (absl::Status s = CheckSplitArguments(spec.split, spec.test_fraction); !s.ok()) return s;
  if (spec.split == SEED_TIME) {
    PercentileSearch search = SeedTimeSearch(manifest, spec.test_fraction);
    while (!search.done()) {
      const std::vector<TimeBuckets> query = search.Query();
      std::vector<uint64_t> counts(BucketCount(query));
      if (absl::Status s = (*set)->CountTimes(all, query, absl::MakeSpan(counts)); !s.ok()) {
        return s;
      }
      if (absl::Status s = search.Add(counts); !s.ok()) return s;
    }
    spec.threshold = search.value();
  }
  absl::StatusOr<std::vector<ShareSummary>> summaries = (*set)->Split(all, spec);
  if (!summaries.ok()) return summaries.status();
  SplitTotals totals;
  for (const ShareSummary& s : *summaries) totals.Add(s);
  if (absl::Status s = CheckSplitTotals(totals, spec.split, manifest.source().path()); !s.ok()) {
    return s;
  }
  config->set_rating_offset(totals.MeanTrainRating());
  if (absl::Status s = (*set)->Hold(all, spec); !s.ok()) return s;
  return set;
}

}  // namespace psrec

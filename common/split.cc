#include "common/split.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/rng.h"

namespace psrec {
namespace {

// ceil(fraction * n) for the decimal the caller wrote. In doubles 0.1 * 30 is 3.0000000000000004,
// and a plain ceil would move a whole row; a product within a relative 1e-12 of an integer is that
// integer.
size_t CeilFraction(double fraction, size_t n) {
  double x = fraction * static_cast<double>(n);
  double nearest = std::round(x);
  if (std::abs(x - nearest) <= 1e-12 * std::max(1.0, x)) return static_cast<size_t>(nearest);
  return static_cast<size_t>(std::ceil(x));
}

SplitRows SeedTimeSplit(const Dataset& data, double test_fraction) {
  std::vector<int64_t> timestamps;
  timestamps.reserve(data.ratings.size());
  for (const Rating& r : data.ratings) timestamps.push_back(r.timestamp);
  double threshold = Percentile(timestamps, 100.0 * (1.0 - test_fraction));
  SplitRows rows;
  for (uint32_t i = 0; i < data.ratings.size(); ++i) {
    bool train = static_cast<double>(data.ratings[i].timestamp) < threshold;
    (train ? rows.train : rows.test).push_back(i);
  }
  return rows;
}

SplitRows UserTimeSplit(const Dataset& data, double test_fraction) {
  // Counting sort of the rows by user keeps file order inside each user. The user count comes from
  // the rows rather than user_ids, so a hand-built Dataset cannot index out of range.
  size_t num_users = 0;
  for (const Rating& r : data.ratings) num_users = std::max<size_t>(num_users, size_t{r.user} + 1);
  std::vector<uint32_t> begin(num_users + 1, 0);
  for (const Rating& r : data.ratings) ++begin[r.user + 1];
  std::partial_sum(begin.begin(), begin.end(), begin.begin());
  std::vector<uint32_t> by_user(data.ratings.size());
  std::vector<uint32_t> next(begin.begin(), begin.end() - 1);
  for (uint32_t i = 0; i < data.ratings.size(); ++i) by_user[next[data.ratings[i].user]++] = i;

  std::vector<uint8_t> is_test(data.ratings.size(), 0);
  for (size_t u = 0; u < num_users; ++u) {
    auto first = by_user.begin() + begin[u];
    auto last = by_user.begin() + begin[u + 1];
    std::stable_sort(first, last, [&data](uint32_t a, uint32_t b) {
      return data.ratings[a].timestamp < data.ratings[b].timestamp;
    });
    const size_t num_train = UserTrainCount(test_fraction, static_cast<size_t>(last - first));
    for (auto it = first + static_cast<std::ptrdiff_t>(num_train); it != last; ++it) {
      is_test[*it] = 1;
    }
  }
  SplitRows rows;
  for (uint32_t i = 0; i < data.ratings.size(); ++i) {
    (is_test[i] ? rows.test : rows.train).push_back(i);
  }
  return rows;
}

SplitRows RandomSplit(const Dataset& data, double test_fraction, uint64_t seed) {
  SplitRows rows;
  for (uint32_t i = 0; i < data.ratings.size(); ++i) {
    const Rating& r = data.ratings[i];
    const bool test =
        RandomSplitIsTest(seed, data.user_ids[r.user], data.item_ids[r.item], test_fraction);
    (test ? rows.test : rows.train).push_back(i);
  }
  return rows;
}

}  // namespace

// Follows numpy's _lerp so results agree to the last bit: index (n - 1) * q, and the interpolation
// anchored at the nearer neighbour.
PercentileRanks RanksOf(uint64_t n, double q) {
  PercentileRanks r;
  const double index = static_cast<double>(n - 1) * (q / 100.0);
  r.below = std::min(static_cast<uint64_t>(std::floor(index)), n - 1);
  r.above = std::min(r.below + 1, n - 1);
  r.gamma = index - static_cast<double>(r.below);
  return r;
}

double Interpolate(double a, double b, double gamma) {
  const double diff = b - a;
  return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

// Out of contract (empty span, q outside [0, 100]) gives NaN.
double Percentile(absl::Span<const int64_t> values, double q) {
  if (values.empty() || !(q >= 0.0 && q <= 100.0)) return std::numeric_limits<double>::quiet_NaN();
  std::vector<int64_t> work(values.begin(), values.end());  // partially ordered by nth_element
  const PercentileRanks ranks = RanksOf(work.size(), q);
  auto nth = work.begin() + static_cast<std::ptrdiff_t>(ranks.below);
  std::nth_element(work.begin(), nth, work.end());
  double a = static_cast<double>(*nth);
  // After nth_element everything past `nth` is >= it, so the next order statistic is their minimum.
  double b =
      ranks.above == ranks.below ? a : static_cast<double>(*std::min_element(nth + 1, work.end()));
  return Interpolate(a, b, ranks.gamma);
}

bool RandomSplitIsTest(uint64_t seed, int64_t user_id, int64_t item_id, double test_fraction) {
  const uint64_t h =
      HashCombine(HashCombine(seed, 0x72616e646f6d5f73ULL),
                  HashCombine(static_cast<uint64_t>(user_id), static_cast<uint64_t>(item_id)));
  // The top 53 bits as a double in [0, 1): exact, so the comparison is the same everywhere.
  return static_cast<double>(h >> 11) * 0x1p-53 < test_fraction;
}

uint64_t UserTrainCount(double test_fraction, uint64_t n) {
  // floor((1 - f) * n) == n - ceil(f * n) for integer n, and the right side rounds robustly.
  return n - CeilFraction(test_fraction, n);
}

absl::Status CheckSplitArguments(Split split, double test_fraction) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("test_fraction ", test_fraction, " is not in the open interval (0, 1)"));
  }
  if (split != SEED_TIME && split != USER_TIME && split != RANDOM) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported split ", Split_Name(split), " (", static_cast<int>(split), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SplitRows> SplitDataset(const Dataset& data, Split split, double test_fraction,
                                       uint64_t seed) {
  if (data.ratings.empty()) return absl::InvalidArgumentError("cannot split an empty dataset");
  if (data.ratings.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("cannot split more than 2^32 - 1 ratings into uint32 rows");
  }
  if (absl::Status s = CheckSplitArguments(split, test_fraction); !s.ok()) return s;
  switch (split) {
    case SEED_TIME:
      return SeedTimeSplit(data, test_fraction);
    case USER_TIME:
      return UserTimeSplit(data, test_fraction);
    case RANDOM:
      return RandomSplit(data, test_fraction, seed);
    default:
      return absl::InvalidArgumentError("unsupported split");
  }
}

void CountIntoBuckets(absl::Span<const int64_t> times, absl::Span<const TimeBuckets> ranges,
                      absl::Span<uint64_t> counts) {
  size_t base = 0;
  for (const TimeBuckets& range : ranges) {
    uint64_t* c = counts.data() + base;
    const uint64_t lo = static_cast<uint64_t>(range.lo);
    for (const int64_t t : times) {
      // Below lo wraps to a huge offset, so one comparison keeps each range.
      const uint64_t bucket = (static_cast<uint64_t>(t) - lo) >> range.shift;
      if (t >= range.lo && bucket < range.count) ++c[bucket];
    }
    base += range.count;
  }
}

PercentileSearch::PercentileSearch(uint64_t n, double q, int64_t min, int64_t max) : n_(n) {
  const PercentileRanks ranks = RanksOf(n, q);
  gamma_ = ranks.gamma;
  const uint64_t last = static_cast<uint64_t>(max) - static_cast<uint64_t>(min);
  targets_.push_back(Target{ranks.below, min, last});
  if (ranks.above != ranks.below) targets_.push_back(Target{ranks.above, min, last});
}

bool PercentileSearch::done() const {
  return std::all_of(targets_.begin(), targets_.end(), [](const Target& t) { return t.found; });
}

TimeBuckets PercentileSearch::Range(const Target& t) {
  // The smallest power-of-two bucket that covers [lo, lo + last] in kBuckets buckets.
  uint32_t shift = 0;
  while (shift < 64 && (t.last >> shift) >= kBuckets) ++shift;
  return TimeBuckets{t.lo, shift, static_cast<uint32_t>((t.last >> shift) + 1)};
}

std::vector<TimeBuckets> PercentileSearch::Query() const {
  std::vector<TimeBuckets> ranges;
  for (const Target& t : targets_) ranges.push_back(Range(t));
  return ranges;
}

absl::Status PercentileSearch::Add(absl::Span<const uint64_t> counts) {
  size_t base = 0;
  for (Target& t : targets_) {
    const TimeBuckets range = Range(t);
    if (base + range.count > counts.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("timestamp counts: ", counts.size(), " buckets where more were asked for"));
    }
    uint64_t before = 0;
    uint32_t i = 0;
    while (i < range.count && before + counts[base + i] <= t.rank) before += counts[base + i++];
    if (i == range.count) {
      return absl::InvalidArgumentError(
          absl::StrCat("timestamp counts hold ", before, " values in the range of rank ", t.rank,
                       " of ", n_, ": the holders counted other data"));
    }
    base += range.count;
    if (t.found) continue;
    t.rank -= before;
    t.lo = static_cast<int64_t>(static_cast<uint64_t>(t.lo) + (uint64_t{i} << range.shift));
    t.last = std::min(t.last - (uint64_t{i} << range.shift), (uint64_t{1} << range.shift) - 1);
    t.found = range.shift == 0;
  }
  return absl::OkStatus();
}

double PercentileSearch::value() const {
  const double a = static_cast<double>(targets_.front().lo);
  return Interpolate(a, static_cast<double>(targets_.back().lo), gamma_);
}

}  // namespace psrec

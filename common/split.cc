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
    // floor((1 - f) * n) == n - ceil(f * n) for integer n, and the right side rounds robustly.
    size_t n = static_cast<size_t>(last - first);
    size_t num_train = n - CeilFraction(test_fraction, n);
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
  std::vector<uint32_t> order(data.ratings.size());
  std::iota(order.begin(), order.end(), 0u);
  Shuffle(&order, seed);
  auto cut = order.begin() + static_cast<std::ptrdiff_t>(CeilFraction(test_fraction, order.size()));
  SplitRows rows;
  rows.test.assign(order.begin(), cut);
  rows.train.assign(cut, order.end());
  std::sort(rows.test.begin(), rows.test.end());
  std::sort(rows.train.begin(), rows.train.end());
  return rows;
}

}  // namespace

// Follows numpy's _lerp so results agree to the last bit: index (n - 1) * q, and the interpolation
// anchored at the nearer neighbour. Out of contract (empty span, q outside [0, 100]) gives NaN.
double Percentile(absl::Span<const int64_t> values, double q) {
  if (values.empty() || !(q >= 0.0 && q <= 100.0)) return std::numeric_limits<double>::quiet_NaN();
  std::vector<int64_t> work(values.begin(), values.end());  // partially ordered by nth_element
  const size_t n = work.size();
  double index = static_cast<double>(n - 1) * (q / 100.0);
  size_t below = std::min(static_cast<size_t>(std::floor(index)), n - 1);
  size_t above = std::min(below + 1, n - 1);
  double gamma = index - static_cast<double>(below);
  auto nth = work.begin() + static_cast<std::ptrdiff_t>(below);
  std::nth_element(work.begin(), nth, work.end());
  double a = static_cast<double>(*nth);
  // After nth_element everything past `nth` is >= it, so the next order statistic is their minimum.
  double b = above == below ? a : static_cast<double>(*std::min_element(nth + 1, work.end()));
  double diff = b - a;
  return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

absl::StatusOr<SplitRows> SplitDataset(const Dataset& data, Split split, double test_fraction,
                                       uint64_t seed) {
  if (data.ratings.empty()) return absl::InvalidArgumentError("cannot split an empty dataset");
  if (data.ratings.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("cannot split more than 2^32 - 1 ratings into uint32 rows");
  }
  if (!(test_fraction > 0.0 && test_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("test_fraction ", test_fraction, " is not in the open interval (0, 1)"));
  }
  switch (split) {
    case SEED_TIME:
      return SeedTimeSplit(data, test_fraction);
    case USER_TIME:
      return UserTimeSplit(data, test_fraction);
    case RANDOM:
      return RandomSplit(data, test_fraction, seed);
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported split ", Split_Name(split), " (",
                                                     static_cast<int>(split), ")"));
  }
}

}  // namespace psrec

#include "synth/synth_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace psrec {
namespace synth {
namespace {

constexpr double kTwoPi = 6.283185307179586;

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Walker's alias table for `weights`, in Vose's order: column j keeps j when the low 32 bits of a
// draw fall below threshold[j] and gives alias[j] otherwise.
void BuildAlias(const std::vector<double>& weights, std::vector<uint32_t>* threshold,
                std::vector<uint32_t>* alias) {
  const size_t n = weights.size();
  double total = 0;
  for (double w : weights) total += w;
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t j = 0; j < n; ++j) {
    scaled[j] = weights[j] * static_cast<double>(n) / total;
    (scaled[j] < 1 ? small : large).push_back(static_cast<uint32_t>(j));
  }
  threshold->assign(n, std::numeric_limits<uint32_t>::max());
  alias->resize(n);
  for (size_t j = 0; j < n; ++j) (*alias)[j] = static_cast<uint32_t>(j);
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back(), l = large.back();
    small.pop_back();
    (*threshold)[s] = static_cast<uint32_t>(std::min(scaled[s] * 4294967296.0, 4294967295.0));
    (*alias)[s] = l;
    scaled[l] -= 1 - scaled[s];
    if (scaled[l] < 1) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left is 1 up to rounding: those columns keep themselves.
}

}  // namespace

double Normal::Next(Rng* rng) {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double radius = std::sqrt(-2.0 * std::log(OpenUnit(rng)));
  const double angle = kTwoPi * static_cast<double>(rng->Next() >> 11) * 0x1p-53;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

StarScale::StarScale(bool half_stars) {
  const float step = half_stars ? 0.5f : 1.0f;
  for (float v = step; v <= 5.0f; v += step) values_.push_back(v);
  for (size_t b = 0; b + 1 < values_.size(); ++b) {
    const double lo = values_[b], hi = values_[b + 1];
    if (!half_stars) {
      thresholds_.push_back((lo + hi) / 2);
    } else if (hi == std::floor(hi)) {
      thresholds_.push_back(hi - kWholeStarReach);  // a whole star takes what is this close
    } else {
      thresholds_.push_back(lo + kWholeStarReach);
    }
  }
}

int StarScale::Bin(double score) const {
  int bin = 0;
  for (double t : thresholds_) bin += score >= t ? 1 : 0;
  return bin;
}

ExpectedRating::ExpectedRating(const StarScale& scale, double noise_sd) {
  const int steps = static_cast<int>((kHigh - kLow) * kStepsPerUnit);
  const std::vector<double>& t = scale.thresholds();
  table_.resize(steps + 1);
  for (int i = 0; i <= steps; ++i) {
    const double s = kLow + i / kStepsPerUnit;
    double below = 0, mean = 0;  // below: P(score + noise < the bin's upper threshold)
    for (int b = 0; b < scale.size(); ++b) {
      const double upto = b < static_cast<int>(t.size()) ? NormalCdf((t[b] - s) / noise_sd) : 1.0;
      mean += (upto - below) * scale.value(b);
      below = upto;
    }
    table_[i] = mean;
  }
}

double ExpectedRating::operator()(double score) const {
  const double x = (std::clamp(score, kLow, kHigh) - kLow) * kStepsPerUnit;
  const size_t i = std::min(static_cast<size_t>(x), table_.size() - 2);
  const double frac = x - static_cast<double>(i);
  return table_[i] + frac * (table_[i + 1] - table_[i]);
}

Movies::Movies(uint64_t seed, uint32_t count, const Shape& shape)
    : bias_(count), factors_(size_t{count} * Shape::kRank) {
  std::vector<double> popularity(count);
  for (uint32_t j = 0; j < count; ++j) {
    Rng rng(Key(seed, kMovieStream, j));
    Normal normal;
    const double z = normal.Next(&rng);
    popularity[j] = std::exp(shape.popularity_sigma * z);
    const double skew = normal.Next(&rng);
    bias_[j] =
        static_cast<float>(shape.item_bias_sd * normal.Next(&rng) + shape.popularity_bias * z -
                           shape.item_bias_skew * (skew * skew - 1));
    for (int k = 0; k < Shape::kRank; ++k) {
      factors_[size_t{j} * Shape::kRank + k] =
          static_cast<float>(shape.factor_sd * normal.Next(&rng));
    }
  }
  BuildAlias(popularity, &threshold_, &alias_);
}

uint32_t Movies::Sample(Rng* rng) const {
  const uint64_t bits = rng->Next();
  const auto column = static_cast<uint32_t>(((bits >> 32) * threshold_.size()) >> 32);
  return static_cast<uint32_t>(bits) < threshold_[column] ? column : alias_[column];
}

User DrawUser(const Shape& shape, Normal* normal, Rng* rng) {
  User user;
  const double skew = normal->Next(rng);
  user.bias = static_cast<float>(shape.user_bias_sd * normal->Next(rng) -
                                 shape.user_bias_skew * (skew * skew - 1));
  for (float& f : user.factors) f = static_cast<float>(shape.factor_sd * normal->Next(rng));
  return user;
}

std::vector<uint32_t> UserCounts(uint64_t seed, uint32_t users, uint64_t total, uint32_t cap,
                                 const Shape& shape) {
  std::vector<uint32_t> counts(users, Shape::kMinPerUser);
  std::vector<double> weight(users);
  for (uint32_t u = 0; u < users; ++u) {
    Rng rng(Key(seed, kUserCountStream, u));
    Normal normal;
    weight[u] = std::exp(shape.user_count_sigma * normal.Next(&rng));
  }
  // Hand out what is left in proportion to the weights of the users below the cap, by cumulative
  // rounding (each user gets floor(left * W_<=u / W) - floor(left * W_<u / W), which sums to
  // `left` exactly), clamp at the cap, and hand out the clamped excess again.
  uint64_t left = total - uint64_t{Shape::kMinPerUser} * users;
  while (left > 0) {
    double sum = 0;
    uint32_t last_open = 0;
    for (uint32_t u = 0; u < users; ++u) {
      if (counts[u] < cap) {
        sum += weight[u];
        last_open = u;
      }
    }
    if (sum == 0) break;  // every user at the cap: only when total > cap * users, refused earlier
    double running = 0;
    uint64_t given = 0, excess = 0;
    for (uint32_t u = 0; u < users; ++u) {
      if (counts[u] >= cap) continue;
      running += weight[u];
      const uint64_t upto =
          u == last_open
              ? left
              : std::min(left, static_cast<uint64_t>(static_cast<double>(left) * (running / sum)));
      const uint64_t share = upto - given;
      given = upto;
      const uint64_t room = cap - counts[u];
      counts[u] += static_cast<uint32_t>(std::min(share, room));
      excess += share > room ? share - room : 0;
    }
    left = excess;
  }
  return counts;
}

std::vector<uint32_t> MovieIds(uint64_t seed, uint32_t count) {
  std::vector<uint32_t> ids(count);
  uint32_t id = 0;
  for (uint32_t j = 0; j < count; ++j) {
    Rng rng(Key(seed, kMovieIdStream, j));
    const double along = static_cast<double>(j) / count;
    id += 1 + static_cast<uint32_t>(-std::log(OpenUnit(&rng)) * 6.0 * along * along);
    ids[j] = id;
  }
  return ids;
}

}  // namespace synth
}  // namespace psrec

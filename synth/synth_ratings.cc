#include "synth/synth_ratings.h"

#include <algorithm>
#include <bitset>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace psrec {
namespace synth {
namespace {

constexpr double kSecondsPerDay = 86400;
// A user's history spans about 3 days at the median, with a log-sd of 2: many users rate
// everything in a sitting, a few over years.
constexpr double kMedianSpanDays = 3;
constexpr double kSpanLogSd = 2.0;
// Between two ratings, an exponential gap; one gap in 12 is 300 times longer (a new session).
constexpr double kSessionBreak = 1.0 / 12;
constexpr double kSessionGap = 300;

// The gap before the next rating, in arbitrary units (only ratios matter).
double Spacing(Rng* rng) {
  const double gap = -std::log(OpenUnit(rng));
  return rng->Unit() < kSessionBreak ? gap * kSessionGap : gap;
}

char* AppendText(char* p, const std::string& text) {
  return std::copy(text.begin(), text.end(), p);
}

}  // namespace

UserWriter::UserWriter(const SynthOptions& options, const Shape& shape, const Movies& movies,
                       const std::vector<uint32_t>& movie_ids)
    : options_(options),
      shape_(shape),
      movies_(movies),
      movie_ids_(movie_ids),
      scale_(options.half_stars),
      expected_(scale_, shape.noise_sd),
      taken_((movies.size() + 63) / 64),
      rated_((movies.size() + 63) / 64) {
  switch (options.layout) {
    case Layout::kCsv:
      separator_ = ",";
      break;
    case Layout::kDat:
      separator_ = "::";
      break;
    case Layout::kUData:
      separator_ = "\t";
      break;
  }
  for (int b = 0; b < scale_.size(); ++b) {
    // ratings.csv prints "4.0" as MovieLens does; ratings.dat and u.data print "4" and "3.5".
    const float v = scale_.value(b);
    rating_text_.push_back(options.layout == Layout::kCsv || v != std::floor(v)
                               ? absl::StrFormat("%.1f", v)
                               : absl::StrCat(static_cast<int>(v)));
  }
  tally_.histogram.assign(scale_.size(), 0);
}

void UserWriter::DrawMovies(uint32_t count, Rng* rng) {
  picks_.clear();
  while (picks_.size() < count) {
    const uint32_t j = movies_.Sample(rng);
    uint64_t& word = taken_[j / 64];
    const uint64_t bit = uint64_t{1} << (j % 64);
    if (word & bit) continue;  // rated already: draw again, so every pair is unique
    word |= bit;
    rated_[j / 64] |= bit;
    picks_.push_back(j);
  }
  for (uint32_t j : picks_) taken_[j / 64] = 0;
}

// Timestamps t_k = start + k + floor(slack * S_k / S), where S_k sums the first k gaps and S all of
// them: strictly increasing, first at `start`, last at start + span - 1, and within the window.
void UserWriter::DrawTimes(uint32_t u, uint32_t count) {
  Rng rng(Key(options_.seed, kTimeStream, u));
  Normal normal;
  const int64_t window = options_.last_timestamp - options_.first_timestamp + 1;
  const double drawn =
      std::exp(std::log(kMedianSpanDays * kSecondsPerDay) + kSpanLogSd * normal.Next(&rng));
  const int64_t span =
      std::clamp<int64_t>(static_cast<int64_t>(drawn), count, std::max<int64_t>(window, count));
  const int64_t start = options_.first_timestamp +
                        static_cast<int64_t>(rng.Below(std::max<int64_t>(window - span, 0) + 1));
  Rng replay = rng;  // the gaps are drawn twice: once for their sum, once to place each rating
  double total = 0;
  for (uint32_t k = 1; k < count; ++k) total += Spacing(&replay);
  const double slack = static_cast<double>(span - count);
  times_.resize(count);
  double running = 0;
  for (uint32_t k = 0; k < count; ++k) {
    if (k > 0) running += Spacing(&rng);
    const double offset = total > 0 ? std::min(slack, std::floor(slack * (running / total))) : 0;
    times_[k] = start + k + static_cast<int64_t>(offset);
  }
}

void UserWriter::Write(uint32_t u, uint32_t count, FileSink* out) {
  Rng rng(Key(options_.seed, kUserStream, u));
  Normal normal;
  const User user = DrawUser(shape_, &normal, &rng);
  DrawMovies(count, &rng);
  DrawTimes(u, count);
  constexpr uint32_t kAhead = 8;
  for (uint32_t k = 0; k < count; ++k) {
    if (k + kAhead < count) {
      movies_.Prefetch(picks_[k + kAhead]);
      __builtin_prefetch(&movie_ids_[picks_[k + kAhead]]);
    }
    WriteRating(u + 1, picks_[k], times_[k], user, &normal, &rng, out);
  }
}

void UserWriter::WriteRating(uint32_t user_id, uint32_t movie, int64_t timestamp, const User& user,
                             Normal* normal, Rng* rng, FileSink* out) {
  const float* q = movies_.factors(movie);
  double score = shape_.global_mean + user.bias + movies_.bias(movie);
  for (int k = 0; k < Shape::kRank; ++k) score += user.factors[k] * q[k];
  const int bin = scale_.Bin(score + shape_.noise_sd * normal->Next(rng));
  const double rating = scale_.value(bin);

  ++tally_.histogram[bin];
  ++tally_.ratings;
  tally_.sum += rating;
  const double median_error = rating - scale_.value(scale_.Bin(score));
  const double mean_error = rating - expected_(score);
  const double noiseless_error = rating - std::clamp<double>(score, scale_.min(), scale_.max());
  tally_.floor_abs += std::abs(median_error);
  tally_.floor_sq += mean_error * mean_error;
  tally_.noiseless_abs += std::abs(noiseless_error);
  tally_.noiseless_sq += noiseless_error * noiseless_error;

  constexpr size_t kMaxLine = 80;  // two 10-digit ids, a 20-digit timestamp, 3 separators
  char* const begin = out->Reserve(kMaxLine);
  char* p = std::to_chars(begin, begin + 10, user_id).ptr;
  p = AppendText(p, separator_);
  p = std::to_chars(p, p + 10, movie_ids_[movie]).ptr;
  p = AppendText(p, separator_);
  p = AppendText(p, rating_text_[bin]);
  p = AppendText(p, separator_);
  p = std::to_chars(p, p + 20, timestamp).ptr;
  *p++ = '\n';
  out->Advance(static_cast<size_t>(p - begin));
}

uint32_t UserWriter::MoviesRated() const {
  uint32_t n = 0;
  for (uint64_t word : rated_) n += static_cast<uint32_t>(std::bitset<64>(word).count());
  return n;
}

}  // namespace synth
}  // namespace psrec

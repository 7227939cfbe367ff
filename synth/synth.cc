#include "synth/synth.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "synth/file_sink.h"
#include "synth/synth_catalog.h"
#include "synth/synth_model.h"
#include "synth/synth_ratings.h"

namespace psrec {
namespace {

using synth::Shape;

struct Preset {
  const char* name;
  uint64_t ratings;
  int64_t users;
  int64_t movies;
  Layout layout;
  bool half_stars;
  int64_t first_timestamp, last_timestamp;  // about the release's span
};

// Counts as ../shared/data/README.md publishes them (ml-1m lists only its rated movies there).
// Time spans are only roughly the releases': ml-20m, ml-25m and ml-32m end on the last day their
// READMEs give; the spans of ml-100k (1997-98), ml-1m (2000-03) and ml-10m (to 2009) are the
// years those releases cover, to a day chosen within them.
constexpr int64_t kDay = 86'400;
constexpr int64_t kJan1995 = 789'609'600;  // 1995-01-09
constexpr Preset kPresets[] = {
    {"ml-100k", 100'000, 943, 1'682, Layout::kUData, false, 874'627'200, 893'203'200 + kDay - 1},
    {"ml-1m", 1'000'209, 6'040, 3'706, Layout::kDat, false, 956'620'800, 1'046'390'400 + kDay - 1},
    {"ml-10m", 10'000'054, 69'878, 10'681, Layout::kDat, true, kJan1995, 1'231'113'600 + kDay - 1},
    {"ml-20m", 20'000'263, 138'493, 27'278, Layout::kCsv, true, kJan1995, 1'427'760'000 + kDay - 1},
    {"ml-25m", 25'000'095, 162'541, 62'423, Layout::kCsv, true, kJan1995, 1'574'294'400 + kDay - 1},
    {"ml-32m", 32'000'204, 200'948, 87'585, Layout::kCsv, true, kJan1995, 1'697'068'800 + kDay - 1},
};

// Sizes the 32-bit ids and a user's movie bitset allow, with room to spare.
constexpr int64_t kMaxUsers = int64_t{1} << 31;
constexpr int64_t kMaxMovies = int64_t{1} << 26;

int YearOf(int64_t timestamp) { return 1970 + static_cast<int>(timestamp / 31'556'952); }

// The rating files the reader would take before `layout`'s, in its order of preference.
std::vector<Layout> Preferred(Layout layout) {
  std::vector<Layout> before;
  for (Layout l : {Layout::kCsv, Layout::kDat, Layout::kUData}) {
    if (l == layout) break;
    before.push_back(l);
  }
  return before;
}

absl::Status PrepareDir(const std::string& dir, Layout layout) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  for (Layout other : Preferred(layout)) {
    const std::string path = absl::StrCat(dir, "/", LayoutName(other));
    struct stat st;
    if (stat(path.c_str(), &st) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " exists, and the reader takes it before ", LayoutName(layout),
                       ": remove it or choose another --out"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteMovies(const SynthOptions& options, const std::vector<uint32_t>& ids,
                         const std::string& path) {
  absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open(path);
  if (!sink.ok()) return sink.status();
  (*sink)->Append(synth::kMoviesHeader);
  std::string line;
  const int first_year = 1910, last_year = YearOf(options.last_timestamp);
  for (uint32_t j = 0; j < ids.size(); ++j) {
    line.clear();
    synth::AppendMovieLine(options.seed, j, static_cast<uint32_t>(ids.size()), ids[j], first_year,
                           last_year, &line);
    (*sink)->Append(line);
  }
  return (*sink)->Finish();
}

std::string Json(const SynthSummary& s, const Shape& shape, const synth::StarScale& scale) {
  const SynthOptions& o = s.options;
  std::vector<std::string> histogram;
  histogram.reserve(scale.size());
  for (int b = 0; b < scale.size(); ++b) {
    histogram.push_back(absl::StrFormat("\"%.1f\": %u", scale.value(b), s.histogram[b]));
  }
  return absl::StrCat(
      "{\n  \"generator\": \"psrec synth\",\n",
      absl::StrFormat("  \"like\": \"%s\",\n  \"seed\": %u,\n  \"layout\": \"%s\",\n", o.like,
                      o.seed, LayoutName(o.layout)),
      absl::StrFormat("  \"ratings\": %u,\n  \"users\": %d,\n  \"movies_listed\": %d,\n", s.ratings,
                      s.users, o.movies),
      absl::StrFormat("  \"movies_rated\": %d,\n  \"max_movie_id\": %d,\n", s.movies_rated,
                      s.max_movie_id),
      absl::StrFormat("  \"first_timestamp\": %d,\n  \"last_timestamp\": %d,\n", o.first_timestamp,
                      o.last_timestamp),
      absl::StrFormat("  \"rating_mean\": %.6f,\n  \"rating_histogram\": {%s},\n", s.rating_mean,
                      absl::StrJoin(histogram, ", ")),
      absl::StrFormat("  \"model\": {\"rank\": %d, \"global_mean\": %g, \"user_bias_sd\": %g, "
                      "\"item_bias_sd\": %g, \"user_bias_skew\": %g, \"item_bias_skew\": %g, "
                      "\"popularity_bias\": %g, \"factor_sd\": %g, "
                      "\"noise_sd\": %g, \"popularity_sigma\": %g, \"user_count_sigma\": %g, "
                      "\"half_stars\": %s},\n",
                      Shape::kRank, shape.global_mean, shape.user_bias_sd, shape.item_bias_sd,
                      shape.user_bias_skew, shape.item_bias_skew, shape.popularity_bias,
                      shape.factor_sd, shape.noise_sd, shape.popularity_sigma,
                      shape.user_count_sigma, o.half_stars ? "true" : "false"),
      "  \"noise_floor\": {\n",
      "    \"definition\": \"over every rating written: mae is the MAE of the planted noiseless "
      "score rounded onto the star grid by the ratings' own rule (the median of each rating's "
      "distribution, the best MAE any predictor knowing the planted model can expect); rmse is "
      "the RMSE of each rating's expected value given its planted score (the best RMSE); "
      "noiseless_mae and noiseless_rmse are the errors of the planted score clamped to the "
      "grid's range, unrounded\",\n",
      absl::StrFormat("    \"mae\": %.6f,\n    \"rmse\": %.6f,\n", s.floor_mae, s.floor_rmse),
      absl::StrFormat("    \"noiseless_mae\": %.6f,\n    \"noiseless_rmse\": %.6f\n  }\n}\n",
                      s.noiseless_mae, s.noiseless_rmse));
}

// Streams every user's ratings into `path` and fills the summary's counts.
absl::Status WriteRatings(const Shape& shape, const synth::Movies& movies,
                          const std::vector<uint32_t>& ids, const std::string& path,
                          const SynthProgress& progress, SynthSummary* summary) {
  const SynthOptions& o = summary->options;
  const std::vector<uint32_t> counts =
      synth::UserCounts(o.seed, static_cast<uint32_t>(o.users), o.ratings,
                        static_cast<uint32_t>(o.movies / 2), shape);
  synth::UserWriter writer(o, shape, movies, ids);
  absl::StatusOr<std::unique_ptr<FileSink>> sink = FileSink::Open(path);
  if (!sink.ok()) return sink.status();
  if (o.layout == Layout::kCsv) (*sink)->Append("userId,movieId,rating,timestamp\n");
  constexpr uint64_t kProgressEvery = uint64_t{1} << 20;
  uint64_t reported = 0;
  for (uint32_t u = 0; u < counts.size(); ++u) {
    writer.Write(u, counts[u], sink->get());
    if (progress && writer.tally().ratings - reported >= kProgressEvery) {
      reported = writer.tally().ratings;
      progress(reported, o.ratings);
    }
  }
  if (absl::Status s = (*sink)->Finish(); !s.ok()) return s;
  const synth::Tally& t = writer.tally();
  const auto n = static_cast<double>(t.ratings);
  summary->ratings = t.ratings;
  summary->users = static_cast<int64_t>(counts.size());
  summary->movies_rated = writer.MoviesRated();
  summary->rating_mean = t.sum / n;
  summary->histogram = t.histogram;
  summary->floor_mae = t.floor_abs / n;
  summary->floor_rmse = std::sqrt(t.floor_sq / n);
  summary->noiseless_mae = t.noiseless_abs / n;
  summary->noiseless_rmse = std::sqrt(t.noiseless_sq / n);
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> SynthPresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

absl::StatusOr<SynthOptions> SynthPreset(absl::string_view like) {
  for (const Preset& p : kPresets) {
    if (like != p.name) continue;
    SynthOptions o;
    o.like = p.name;
    o.ratings = p.ratings;
    o.users = p.users;
    o.movies = p.movies;
    o.layout = p.layout;
    o.half_stars = p.half_stars;
    o.first_timestamp = p.first_timestamp;
    o.last_timestamp = p.last_timestamp;
    return o;
  }
  return absl::NotFoundError(
      absl::StrCat("--like=", like, " is not one of ", absl::StrJoin(SynthPresetNames(), ", ")));
}

SynthOptions WithDefaults(SynthOptions o) {
  const double n = static_cast<double>(o.ratings);
  if (o.users == 0) o.users = std::max<int64_t>(1, std::llround(n / 154));
  if (o.movies == 0) o.movies = std::max<int64_t>(100, std::llround(62'423 * std::sqrt(n / 25e6)));
  return o;
}

absl::Status ValidateSynthOptions(const SynthOptions& o) {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  if (o.users < 1 || o.users > kMaxUsers) {
    return bad("--users=", o.users, " must be in [1, ", kMaxUsers, "]");
  }
  if (o.movies < 2 * Shape::kMinPerUser || o.movies > kMaxMovies) {
    return bad("--movies=", o.movies, " must be in [", 2 * Shape::kMinPerUser, ", ", kMaxMovies,
               "]: a user rates at least ", Shape::kMinPerUser, " and at most half of them");
  }
  const uint64_t users = static_cast<uint64_t>(o.users), cap = static_cast<uint64_t>(o.movies) / 2;
  if (o.ratings < Shape::kMinPerUser * users) {
    return bad("--ratings=", o.ratings, " gives fewer than ", Shape::kMinPerUser,
               " per user: --users=", o.users, " needs at least ", Shape::kMinPerUser * users);
  }
  if (o.ratings / users > cap || (o.ratings / users == cap && o.ratings % users != 0)) {
    return bad("--ratings=", o.ratings, " is more than --users=", o.users,
               " can give when each rates at most half of --movies=", o.movies, " (", cap * users,
               ")");
  }
  if (o.last_timestamp - o.first_timestamp < static_cast<int64_t>(cap)) {
    return bad("the time window [", o.first_timestamp, ", ", o.last_timestamp,
               "] is too short for one rating a second");
  }
  return absl::OkStatus();
}

absl::StatusOr<SynthSummary> WriteSynth(const SynthOptions& options, const std::string& dir,
                                        const SynthProgress& progress) {
  SynthSummary summary;
  summary.options = WithDefaults(options);
  const SynthOptions& o = summary.options;
  if (absl::Status s = ValidateSynthOptions(o); !s.ok()) return s;
  if (absl::Status s = PrepareDir(dir, o.layout); !s.ok()) return s;
  const Shape shape;
  const std::vector<uint32_t> ids = synth::MovieIds(o.seed, static_cast<uint32_t>(o.movies));
  summary.max_movie_id = ids.back();
  if (absl::Status s = WriteMovies(o, ids, dir + "/movies.csv"); !s.ok()) return s;
  const synth::Movies movies(o.seed, static_cast<uint32_t>(o.movies), shape);
  summary.ratings_path = absl::StrCat(dir, "/", LayoutName(o.layout));
  if (absl::Status s = WriteRatings(shape, movies, ids, summary.ratings_path, progress, &summary);
      !s.ok()) {
    return s;
  }
  const synth::StarScale scale(o.half_stars);
  if (absl::Status s = WriteFileAtomically(dir + "/synth.json", Json(summary, shape, scale));
      !s.ok()) {
    return s;
  }
  return summary;
}

}  // namespace psrec

#include "synth/synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/movielens.h"
#include "gtest/gtest.h"
#include "synth/synth_model.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using testing_util::FreshDir;
using testing_util::ReadFile;
using testing_util::RunPsrec;

SynthOptions Small(uint64_t seed = 7) {
  SynthOptions o;
  o.ratings = 30'000;
  o.users = 300;
  o.movies = 2'000;
  o.seed = seed;
  return o;
}

SynthSummary Write(const SynthOptions& o, const fs::path& dir) {
  absl::StatusOr<SynthSummary> s = WriteSynth(o, dir.string());
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : SynthSummary{};
}

Dataset Read(const fs::path& dir) {
  absl::StatusOr<Dataset> data = ReadMovieLens(dir.string());
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : Dataset{};
}

TEST(SynthTest, SameSeedSameBytesDifferentSeedDifferentBytes) {
  const fs::path a = FreshDir("synth_a"), b = FreshDir("synth_b"), c = FreshDir("synth_c");
  Write(Small(7), a);
  uint64_t calls = 0;  // the second run is watched: that must not change a byte
  ASSERT_TRUE(WriteSynth(Small(7), b.string(), [&](uint64_t, uint64_t) { ++calls; }).ok());
  Write(Small(8), c);
  for (const char* file : {"ratings.csv", "movies.csv", "synth.json"}) {
    SCOPED_TRACE(file);
    EXPECT_FALSE(ReadFile(a / file).empty());
    EXPECT_EQ(ReadFile(a / file), ReadFile(b / file));
    EXPECT_NE(ReadFile(a / file), ReadFile(c / file));
  }
}

TEST(SynthTest, TheCommandWritesWhatTheLibraryWrites) {
  const fs::path lib = FreshDir("synth_lib"), cli = FreshDir("synth_cli");
  SynthOptions o = Small(11);
  o.layout = Layout::kDat;
  Write(o, lib);
  const testing_util::Result r =
      RunPsrec({"synth", "--out=" + cli.string(), "--ratings=30000", "--users=300", "--movies=2000",
                "--seed=11", "--layout=dat"},
               FreshDir("synth_cli_logs"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "ratings=30000 users=300 movies=2000")) << r.out;
  for (const char* file : {"ratings.dat", "movies.csv", "synth.json"}) {
    EXPECT_EQ(ReadFile(lib / file), ReadFile(cli / file)) << file;
  }
}

TEST(SynthTest, ShapeIsMovieLensLike) {
  const fs::path dir = FreshDir("synth_shape");
  const SynthOptions o = Small();
  const SynthSummary summary = Write(o, dir);
  const Dataset data = Read(dir);
  ASSERT_EQ(data.ratings.size(), o.ratings);
  ASSERT_EQ(data.user_ids.size(), static_cast<size_t>(o.users));
  EXPECT_EQ(data.item_ids.size(), static_cast<size_t>(summary.movies_rated));
  EXPECT_LE(summary.movies_rated, o.movies);

  std::vector<int> per_user(data.user_ids.size()), per_movie(data.item_ids.size());
  std::set<std::pair<uint32_t, uint32_t>> pairs;
  std::map<uint32_t, int64_t> last_time;
  std::map<float, int> histogram;
  for (const Rating& r : data.ratings) {
    ++per_user[r.user];
    ++per_movie[r.item];
    EXPECT_TRUE(pairs.insert({r.user, r.item}).second) << "pair repeated";
    auto [it, first] = last_time.try_emplace(r.user, r.timestamp);
    if (!first) {
      EXPECT_GT(r.timestamp, it->second) << "user " << data.user_ids[r.user];
      it->second = r.timestamp;
    }
    EXPECT_EQ(r.rating * 2, std::round(r.rating * 2)) << r.rating;
    ++histogram[r.rating];
  }
  for (size_t u = 0; u < per_user.size(); ++u) EXPECT_EQ(data.user_ids[u], int64_t(u) + 1);
  std::sort(per_user.begin(), per_user.end());
  EXPECT_GE(per_user.front(), 20);
  EXPECT_GT(per_user.back(), 5 * per_user[per_user.size() / 2]) << "no long tail of users";

  // Long-tailed popularity: the top 1% of the movies listed hold a large share of the ratings.
  std::sort(per_movie.rbegin(), per_movie.rend());
  int64_t top = 0;
  for (int64_t i = 0; i < o.movies / 100; ++i) top += per_movie[i];
  EXPECT_GT(static_cast<double>(top) / o.ratings, 0.08);

  // MovieLens's histogram: mean near 3.5, 4 the most common rating, whole stars more common.
  EXPECT_NEAR(summary.rating_mean, 3.5, 0.15);
  const auto mode = std::max_element(histogram.begin(), histogram.end(),
                                     [](auto& a, auto& b) { return a.second < b.second; });
  EXPECT_EQ(mode->first, 4.0f);
  EXPECT_EQ(histogram.begin()->first, 0.5f);
  EXPECT_EQ(histogram.rbegin()->first, 5.0f);
  int half = 0;
  for (const auto& [rating, n] : histogram) half += rating != std::floor(rating) ? n : 0;
  EXPECT_GT(half, 0.15 * o.ratings);
  EXPECT_LT(half, 0.45 * o.ratings);
}

TEST(SynthTest, EveryLayoutReadsBackTheSameRatings) {
  SynthOptions o = Small(3);
  const fs::path csv_dir = FreshDir("synth_csv");
  Write(o, csv_dir);
  const Dataset csv = Read(csv_dir);
  for (Layout layout : {Layout::kDat, Layout::kUData}) {
    SCOPED_TRACE(std::string(LayoutName(layout)));
    o.layout = layout;
    const fs::path dir = FreshDir(absl::StrCat("synth_layout", static_cast<int>(layout)));
    Write(o, dir);
    const Dataset data = Read(dir);
    EXPECT_EQ(data.layout, layout);
    ASSERT_EQ(data.ratings.size(), csv.ratings.size());
    EXPECT_EQ(data.user_ids, csv.user_ids);
    EXPECT_EQ(data.item_ids, csv.item_ids);
    for (size_t i = 0; i < data.ratings.size(); ++i) {
      ASSERT_EQ(data.ratings[i].rating, csv.ratings[i].rating) << i;
      ASSERT_EQ(data.ratings[i].timestamp, csv.ratings[i].timestamp) << i;
    }
  }
}

TEST(SynthTest, WholeStarsLikeMl1m) {
  absl::StatusOr<SynthOptions> o = SynthPreset("ml-1m");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->layout, Layout::kDat);
  o->ratings = 20'000;
  o->users = 200;
  const fs::path dir = FreshDir("synth_ml1m");
  Write(*o, dir);
  EXPECT_TRUE(absl::StartsWith(ReadFile(dir / "ratings.dat"), "1::"));
  std::set<float> seen;
  for (const Rating& r : Read(dir).ratings) seen.insert(r.rating);
  EXPECT_EQ(seen, (std::set<float>{1, 2, 3, 4, 5}));
}

// movies.csv as a CSV reader sees it: quoted fields with doubled quotes.
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      fields.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

TEST(SynthTest, MoviesCsvListsEveryMovieWithTitleAndGenres) {
  const fs::path dir = FreshDir("synth_movies");
  const SynthOptions o = Small();
  const SynthSummary summary = Write(o, dir);
  const std::set<std::string> genres = {
      "Action",  "Adventure", "Animation", "Children", "Comedy", "Crime",   "Documentary",
      "Drama",   "Fantasy",   "Film-Noir", "Horror",   "IMAX",   "Musical", "Mystery",
      "Romance", "Sci-Fi",    "Thriller",  "War",      "Western"};
  std::vector<std::string> lines = absl::StrSplit(ReadFile(dir / "movies.csv"), '\n');
  ASSERT_EQ(lines.front(), "movieId,title,genres");
  ASSERT_EQ(lines.back(), "");
  lines = std::vector<std::string>(lines.begin() + 1, lines.end() - 1);
  ASSERT_EQ(lines.size(), static_cast<size_t>(o.movies));
  int64_t previous = 0, no_genres = 0, with_comma = 0, with_quote = 0;
  for (const std::string& line : lines) {
    const std::vector<std::string> f = CsvFields(line);
    ASSERT_EQ(f.size(), 3u) << line;
    const int64_t id = std::stoll(f[0]);
    EXPECT_GT(id, previous);
    previous = id;
    EXPECT_TRUE(absl::EndsWith(f[1], ")") && f[1].size() > 6 && f[1][f[1].size() - 6] == '(')
        << f[1];
    with_comma += absl::StrContains(f[1], ",");
    with_quote += absl::StrContains(f[1], "\"");
    if (f[2] == "(no genres listed)") {
      ++no_genres;
      continue;
    }
    for (absl::string_view g : absl::StrSplit(f[2], '|')) {
      EXPECT_EQ(genres.count(std::string(g)), 1u) << line;
    }
  }
  EXPECT_EQ(previous, summary.max_movie_id);
  EXPECT_GT(previous, 2 * o.movies) << "ids are not sparse";
  EXPECT_GT(no_genres, 0);
  EXPECT_GT(with_comma, 0);
  EXPECT_GT(with_quote, 0);
  // Every rated movie is listed.
  std::set<int64_t> listed;
  for (const std::string& line : lines) listed.insert(std::stoll(CsvFields(line)[0]));
  for (int64_t id : Read(dir).item_ids) EXPECT_EQ(listed.count(id), 1u) << id;
}

TEST(SynthTest, NoiseFloorIsBelowWhatTheDataAloneGives) {
  const fs::path dir = FreshDir("synth_floor");
  const SynthSummary s = Write(Small(), dir);
  EXPECT_GT(s.floor_mae, 0.3);
  EXPECT_LE(s.floor_mae, s.noiseless_mae);
  EXPECT_LE(s.floor_rmse, s.noiseless_rmse);
  EXPECT_LT(s.floor_rmse, 0.8);
  // Predicting the global median, which needs no model, must do worse.
  std::vector<float> ratings;
  for (const Rating& r : Read(dir).ratings) ratings.push_back(r.rating);
  std::nth_element(ratings.begin(), ratings.begin() + ratings.size() / 2, ratings.end());
  const float median = ratings[ratings.size() / 2];
  double abs = 0;
  for (float r : ratings) abs += std::abs(r - median);
  EXPECT_GT(abs / ratings.size(), s.floor_mae + 0.1);
  const std::string json = ReadFile(dir / "synth.json");
  EXPECT_TRUE(absl::StrContains(json, absl::StrFormat("\"mae\": %.6f", s.floor_mae))) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"ratings\": 30000")) << json;
}

TEST(SynthModelTest, UserCountsSumExactlyWithinBounds) {
  const synth::Shape shape;
  for (const auto& [users, total, cap] :
       std::vector<std::tuple<uint32_t, uint64_t, uint32_t>>{{1, 20, 20},
                                                             {1, 57, 100},
                                                             {500, 10'000, 1000},
                                                             {500, 99'999, 200},
                                                             {1000, 500'000, 10'000}}) {
    SCOPED_TRACE(absl::StrCat(users, " users, ", total, " ratings, cap ", cap));
    const std::vector<uint32_t> counts = synth::UserCounts(9, users, total, cap, shape);
    ASSERT_EQ(counts.size(), users);
    uint64_t sum = 0;
    for (uint32_t c : counts) {
      EXPECT_GE(c, 20u);
      EXPECT_LE(c, cap);
      sum += c;
    }
    EXPECT_EQ(sum, total);
  }
}

TEST(SynthModelTest, StarScaleFavoursWholeStars) {
  const synth::StarScale half(true), whole(false);
  auto value = [](const synth::StarScale& s, double x) { return s.value(s.Bin(x)); };
  const double reach = synth::StarScale::kWholeStarReach, e = 0.001;
  ASSERT_GT(reach, 0.25);  // whole stars take more than their share
  ASSERT_LT(reach, 0.5);
  EXPECT_EQ(value(half, -9), 0.5f);
  EXPECT_EQ(value(half, 1 - reach - e), 0.5f);
  EXPECT_EQ(value(half, 1 - reach + e), 1.0f);
  EXPECT_EQ(value(half, 4 + reach - e), 4.0f);
  EXPECT_EQ(value(half, 4 + reach + e), 4.5f);
  EXPECT_EQ(value(half, 5 - reach - e), 4.5f);
  EXPECT_EQ(value(half, 5 - reach + e), 5.0f);
  EXPECT_EQ(value(half, 9), 5.0f);
  for (int b = 0; b < half.size(); ++b) EXPECT_EQ(half.value(b), 0.5f * (b + 1));
  EXPECT_EQ(value(whole, 1.49), 1.0f);
  EXPECT_EQ(value(whole, 1.5), 2.0f);
  EXPECT_EQ(value(whole, -3), 1.0f);
  const synth::ExpectedRating expected(half, 0.7);
  EXPECT_NEAR(expected(-20), 0.5, 1e-9);
  EXPECT_NEAR(expected(20), 5.0, 1e-9);
  double previous = 0;
  for (double s = -1; s < 7; s += 0.01) {
    EXPECT_GT(expected(s), previous) << s;
    previous = expected(s);
  }
}

TEST(SynthOptionsTest, PresetsAndLimits) {
  absl::StatusOr<SynthOptions> o = SynthPreset("ml-25m");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->ratings, 25'000'095u);
  EXPECT_EQ(o->users, 162'541);
  EXPECT_EQ(o->movies, 62'423);
  EXPECT_TRUE(ValidateSynthOptions(*o).ok());
  for (const std::string& name : SynthPresetNames()) {
    EXPECT_TRUE(ValidateSynthOptions(*SynthPreset(name)).ok()) << name;
  }
  EXPECT_EQ(SynthPreset("ml-99m").status().code(), absl::StatusCode::kNotFound);
  SynthOptions bad = Small();
  bad.ratings = 300 * 20 - 1;
  EXPECT_TRUE(absl::StrContains(ValidateSynthOptions(bad).message(), "--ratings=5999"));
  bad.ratings = 300 * 1000 + 1;
  EXPECT_TRUE(absl::StrContains(ValidateSynthOptions(bad).message(), "more than --users=300"));
  bad = Small();
  bad.movies = 39;
  EXPECT_TRUE(absl::StrContains(ValidateSynthOptions(bad).message(), "--movies=39"));
  const SynthOptions filled = WithDefaults(SynthOptions{});
  EXPECT_EQ(filled.users, 6'494);  // 1M / 154
  EXPECT_TRUE(ValidateSynthOptions(filled).ok());
}

TEST(SynthTest, RefusesADirectoryWhoseRatingsTheReaderWouldTakeFirst) {
  const fs::path dir = FreshDir("synth_refuse");
  Write(Small(), dir);  // ratings.csv
  SynthOptions o = Small();
  o.layout = Layout::kUData;
  absl::StatusOr<SynthSummary> s = WriteSynth(o, dir.string());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "ratings.csv exists")) << s.status();
  EXPECT_FALSE(fs::exists(dir / "u.data"));
}

TEST(SynthCommandTest, BadFlagsExitTwoNamingTheFlag) {
  const fs::path dir = FreshDir("synth_flags");
  const std::string out = "--out=" + (dir / "data").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"synth", out, "--layout=xml"}, "--layout=xml"},
      {{"synth", out, "--like=ml-99m"}, "--like=ml-99m"},
      {{"synth", out, "--ratings=100", "--users=10"}, "--ratings=100"},
      {{"synth", out, "--ratings=0"}, "--ratings=0"},
      {{"synth", out, "--users=-3"}, "--users=-3"},
      {{"synth", out, "--users=abc"}, "--users=abc is not a whole number"},
      {{"synth", out, "--ratings=x"}, "--ratings"},
      {{"synth", out, "--model=mlp"}, "--model"},
      {{"synth"}, "--out"},
  };
  for (const auto& [args, named] : cases) {
    const testing_util::Result r = RunPsrec(args, dir);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, named)) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir / "data" / "ratings.csv"));
  // An output path that cannot be a directory is an I/O failure, exit 1, naming it.
  const testing_util::Result r =
      RunPsrec({"synth", "--out=" + (dir / "stdout.txt" / "sub").string(), "--ratings=2000"}, dir);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "stdout.txt")) << r.err;
  const testing_util::Result help = RunPsrec({"synth", "--help"}, dir);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "noise floor")) << help.out;
  EXPECT_TRUE(absl::StrContains(help.out, "--seed")) << help.out;
}

}  // namespace
}  // namespace psrec

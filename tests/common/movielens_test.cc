#include "common/movielens.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/rng.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

// gmock is not linked into the tests, so a small stand-in for HasSubstr.
::testing::AssertionResult HasSubstr(const absl::Status& status, absl::string_view needle) {
  if (absl::string_view(status.message()).find(needle) != absl::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "'" << status.message() << "' lacks '" << needle << "'";
}

constexpr char kHeader[] = "userId,movieId,rating,timestamp\n";

void ExpectRating(const Dataset& data, size_t row, int64_t user_id, int64_t item_id, float rating,
                  int64_t timestamp) {
  SCOPED_TRACE(absl::StrCat("row ", row));
  ASSERT_LT(row, data.ratings.size());
  const Rating& r = data.ratings[row];
  ASSERT_LT(r.user, data.user_ids.size());
  ASSERT_LT(r.item, data.item_ids.size());
  EXPECT_EQ(data.user_ids[r.user], user_id);
  EXPECT_EQ(data.item_ids[r.item], item_id);
  EXPECT_EQ(r.rating, rating);
  EXPECT_EQ(r.timestamp, timestamp);
}

// The same four ratings in each layout: users 7, 3, 7, 9 and movies 50, 20, 20, 50.
void ExpectSample(const Dataset& data) {
  ASSERT_EQ(data.ratings.size(), 4u);
  EXPECT_EQ(data.user_ids, (std::vector<int64_t>{7, 3, 9}));
  EXPECT_EQ(data.item_ids, (std::vector<int64_t>{50, 20}));
  EXPECT_EQ(data.ratings[0].user, 0u);
  EXPECT_EQ(data.ratings[1].user, 1u);
  EXPECT_EQ(data.ratings[2].user, 0u);
  EXPECT_EQ(data.ratings[3].user, 2u);
  EXPECT_EQ(data.ratings[2].item, 1u);
  ExpectRating(data, 0, 7, 50, 4.0f, 964982703);
  ExpectRating(data, 1, 3, 20, 3.5f, 964981247);
  ExpectRating(data, 2, 7, 20, 5.0f, 1);
  ExpectRating(data, 3, 9, 50, 0.5f, 1493846415);
}

// The sample of ExpectSample as a file of each layout spells it, in the order ReadMovieLens prefers
// the files.
struct SampleFile {
  Layout layout;
  std::string name;
  std::string text;
};

const std::vector<SampleFile>& SampleFiles() {
  static const auto* files = new std::vector<SampleFile>{
      {Layout::kCsv, "ratings.csv",
       absl::StrCat(kHeader,
                    "7,50,4.0,964982703\n3,20,3.5,964981247\n7,20,5,1\n9,50,0.50,1493846415\n")},
      {Layout::kDat, "ratings.dat",
       "7::50::4::964982703\n3::20::3.5::964981247\n7::20::5::1\n9::50::.5::1493846415\n"},
      {Layout::kUData, "u.data",
       "7\t50\t4\t964982703\n3\t20\t3.5\t964981247\n7\t20\t5\t1\n9\t50\t0.5\t1493846415\n"},
  };
  return *files;
}

// `data` parsed without error, from `path` in `layout`, and holds the sample.
void ExpectSampleFrom(const absl::StatusOr<Dataset>& data, Layout layout, const std::string& path) {
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->path, path);
  EXPECT_EQ(data->layout, layout);
  ExpectSample(*data);
}

TEST(ParseRatingsTest, EachLayout) {
  for (const SampleFile& file : SampleFiles()) {
    SCOPED_TRACE(file.name);
    ExpectSampleFrom(ParseRatings(file.text, file.layout, file.name), file.layout, file.name);
  }
}

TEST(ParseRatingsTest, CrlfBlankLinesAndNoFinalNewline) {
  const std::vector<std::pair<std::string, Layout>> texts = {
      {"userId,movieId,rating,timestamp\r\n7,50,4.0,964982703\r\n\r\n3,20,3.5,964981247\r\n"
       "7,20,5.0,1\r\n9,50,0.5,1493846415",
       Layout::kCsv},
      {"7::50::4::964982703\r\n3::20::3.5::964981247\r\n7::20::5::1\r\n"
       "9::50::0.5::1493846415\r\n\r\n\n",
       Layout::kDat},
  };
  for (const auto& [text, layout] : texts) {
    ExpectSampleFrom(ParseRatings(text, layout, "crlf"), layout, "crlf");
  }
}

// Feeds `text` to a RatingParser in pieces cut at seeded random places, as the prepare step feeds
// a file through its fixed buffer, and returns what it parsed.
absl::StatusOr<std::vector<ScannedRating>> ParseInPieces(absl::string_view text, Layout layout,
                                                         uint64_t seed) {
  RatingParser parser(layout, "pieces");
  Rng rng(seed);
  std::vector<ScannedRating> out;
  std::string pending;
  size_t pos = 0;
  while (true) {
    const size_t take = std::min<size_t>(text.size() - pos, rng.Below(24));
    pending.append(text.data() + pos, take);
    pos += take;
    const bool last = pos == text.size();
    absl::StatusOr<size_t> used = parser.Parse(pending, last, &out);
    if (!used.ok()) return used.status();
    pending.erase(0, *used);
    if (last) {
      if (!pending.empty()) return absl::InternalError("bytes left over at the end");
      return out;
    }
  }
}

// Issue 9: however the file is cut into pieces (CRLF, blank lines, no final newline, cuts inside a
// line ending), every line is parsed exactly once, exactly as the whole-text parser parses it.
TEST(RatingParserTest, PiecesAtRandomBoundariesParseEveryLineOnce) {
  const std::vector<std::pair<std::string, Layout>> texts = {
      {"userId,movieId,rating,timestamp\r\n7,50,4.0,964982703\r\n\r\n3,20,3.5,964981247\r\n"
       "7,20,5.0,1\r\n9,50,0.5,1493846415",
       Layout::kCsv},
      {"\xEF\xBB\xBFuserId,movieId,rating,timestamp\n7,50,4.0,964982703\n3,20,3.5,964981247\n"
       "7,20,5.0,1\n9,50,0.5,1493846415\n",
       Layout::kCsv},
      {"7::50::4::964982703\r\n3::20::3.5::964981247\r\n7::20::5::1\r\n9::50::0.5::1493846415"
       "\r\n\r\n\n",
       Layout::kDat},
      {"7\t50\t4\t964982703\n3\t20\t3.5\t964981247\n7\t20\t5\t1\n9\t50\t0.5\t1493846415",
       Layout::kUData},
  };
  for (const auto& [text, layout] : texts) {
    absl::StatusOr<Dataset> whole = ParseRatings(text, layout, "whole");
    ASSERT_TRUE(whole.ok()) << whole.status();
    for (uint64_t seed = 1; seed <= 200; ++seed) {
      absl::StatusOr<std::vector<ScannedRating>> pieces = ParseInPieces(text, layout, seed);
      ASSERT_TRUE(pieces.ok()) << pieces.status() << " seed " << seed;
      ASSERT_EQ(pieces->size(), whole->ratings.size()) << "seed " << seed;
      for (size_t i = 0; i < pieces->size(); ++i) {
        const Rating& want = whole->ratings[i];
        const ScannedRating& got = (*pieces)[i];
        EXPECT_EQ(got.user_id, whole->user_ids[want.user]) << "seed " << seed << " row " << i;
        EXPECT_EQ(got.item_id, whole->item_ids[want.item]) << "seed " << seed << " row " << i;
        EXPECT_EQ(got.rating, want.rating) << "seed " << seed << " row " << i;
        EXPECT_EQ(got.timestamp, want.timestamp) << "seed " << seed << " row " << i;
      }
    }
  }
}

// A bad line is refused with the same file:line message however the text is cut.
TEST(RatingParserTest, PiecesReportTheBadLineAsTheWholeParserDoes) {
  const std::string text = "userId,movieId,rating,timestamp\n7,50,4.0,1\n3,20,x,2\n9,50,0.5,3\n";
  absl::StatusOr<Dataset> whole = ParseRatings(text, Layout::kCsv, "pieces");
  ASSERT_FALSE(whole.ok());
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    absl::StatusOr<std::vector<ScannedRating>> pieces = ParseInPieces(text, Layout::kCsv, seed);
    ASSERT_FALSE(pieces.ok()) << "seed " << seed;
    EXPECT_EQ(pieces.status().message(), whole.status().message()) << "seed " << seed;
  }
}

TEST(ParseRatingsTest, RatingSpellings) {
  const std::vector<std::pair<std::string, float>> cases = {
      {"4.0", 4.0f},
      {"3.5", 3.5f},
      {"5", 5.0f},
      {"0.5", 0.5f},
      {"4.50", 4.5f},
      {"5.", 5.0f},
      {"1.25", 1.25f},
      {"2.1", 2.1f},
      {"3.141592", 3.141592f},
      {"5e0", 5.0f},
      {"3.14159265358979", 3.14159265358979f},
      {".5", 0.5f},
      {"004.000", 4.0f},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<Dataset> data =
        ParseRatings(absl::StrCat("1\t2\t", text, "\t3\n"), Layout::kUData, "u.data");
    ASSERT_TRUE(data.ok()) << text << ": " << data.status();
    EXPECT_EQ(data->ratings[0].rating, expected) << text;
  }
}

// The short-decimal fast path must round exactly as strtof does.
TEST(ParseRatingsTest, RatingsMatchStrtof) {
  Rng rng(7);
  for (int trial = 0; trial < 20000; ++trial) {
    int decimals = static_cast<int>(rng.Below(8));
    uint64_t scale = 1;
    for (int i = 0; i < decimals; ++i) scale *= 10;
    const uint64_t lo = (scale + 1) / 2, hi = 5 * scale;  // [0.5, 5] * scale
    uint64_t mantissa = lo + rng.Below(hi - lo + 1);
    std::string text = absl::StrCat(mantissa / scale);
    if (decimals > 0) {
      std::string frac = absl::StrCat(scale + mantissa % scale);
      absl::StrAppend(&text, ".", frac.substr(1));
    }
    absl::StatusOr<Dataset> data =
        ParseRatings(absl::StrCat("1\t2\t", text, "\t3\n"), Layout::kUData, "u.data");
    ASSERT_TRUE(data.ok()) << text << ": " << data.status();
    ASSERT_EQ(data->ratings[0].rating, std::strtof(text.c_str(), nullptr)) << text;
  }
}

TEST(ParseRatingsTest, LargeIdsAndTimestamps) {
  absl::StatusOr<Dataset> data =
      ParseRatings("9223372036854775807::0::1::-5\n", Layout::kDat, "ratings.dat");
  ASSERT_TRUE(data.ok()) << data.status();
  ExpectRating(*data, 0, 9223372036854775807, 0, 1.0f, -5);
}

struct BadInput {
  Layout layout;
  std::string text;
  int line;
  std::string message;
};

void PrintTo(const BadInput& bad, std::ostream* os) {
  *os << LayoutName(bad.layout) << " '" << absl::CEscape(bad.text) << "'";
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, FailsNamingFileAndLine) {
  const BadInput& bad = GetParam();
  absl::StatusOr<Dataset> data = ParseRatings(bad.text, bad.layout, "dir/f.txt");
  ASSERT_FALSE(data.ok()) << bad.text;
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string where =
      bad.line > 0 ? absl::StrCat("dir/f.txt:", bad.line, ": ") : std::string("dir/f.txt: ");
  EXPECT_TRUE(absl::StartsWith(data.status().message(), where)) << data.status();
  EXPECT_TRUE(HasSubstr(data.status(), bad.message));
}

std::string Csv(absl::string_view rows) { return absl::StrCat(kHeader, "1,2,3.0,4\n", rows); }

// Every bad input: first one bad row after the header and a good row (line 3 of a CSV file), then
// the rest.
std::vector<BadInput> BadInputs() {
  const std::vector<std::pair<std::string, std::string>> csv_rows = {
      // Wrong field counts.
      {"1,2,3.0", "expected 4 fields separated by ',' but found 3"},
      {"1,2,3.0,4,5", "but found 5"},
      {"1;2;3.0;4", "but found 1"},
      // Non-numeric and trailing garbage.
      {"abc,2,3.0,4", "userId 'abc' is not an integer"},
      {"1,,3.0,4", "movieId '' is not an integer"},
      {"12a,2,3.0,4", "userId '12a' is not an integer"},
      {" 1,2,3.0,4", "userId ' 1' is not an integer"},
      {"1,2,4.0x,4", "rating '4.0x' is not a number"},
      {"1,2,,4", "rating '' is not a number"},
      {"1,2,.,4", "rating '.' is not a number"},
      {"1,2,4..0,4", "rating '4..0' is not a number"},
      {"1,2,3.0,1.5e9", "timestamp '1.5e9' is not an integer"},
      {"1,2,3.0,", "timestamp '' is not an integer"},
      // Negative and overflowing ids.
      {"-3,2,3.0,4", "userId -3 is negative"},
      {"99999999999999999999,2,3.0,4", "userId '99999999999999999999' is out of range"},
      {"1,2,3.0,99999999999999999999", "timestamp '99999999999999999999' is out of range"},
      // Ratings out of range or not finite.
      {"1,2,7,4", "rating 7 is outside [0.5, 5]"},
      {"1,2,0,4", "rating 0 is outside [0.5, 5]"},
      {"1,2,5.5,4", "rating 5.5 is outside"},
      {"1,2,0.49,4", "rating 0.49 is outside"},
      {"1,2,-1,4", "rating -1 is outside"},
      {"1,2,nan,4", "rating 'nan' is not a finite number"},
      {"1,2,NaN,4", "rating 'NaN' is not a finite number"},
      {"1,2,inf,4", "rating 'inf' is not a finite number"},
      {"1,2,-infinity,4", "not a finite number"},
  };
  std::vector<BadInput> inputs;
  for (const auto& [row, message] : csv_rows) {
    inputs.push_back({Layout::kCsv, Csv(row + "\n"), 3, message});
  }
  const std::vector<BadInput> rest = {
      // Wrong field counts and a bad field in the other layouts.
      {Layout::kDat, "1::2::3::4\n1:2:3:4\n", 2, "expected 4 fields separated by '::' but found 1"},
      {Layout::kDat, "1::2::3::4::\n", 1, "but found 5"},
      {Layout::kUData, "1\t2\t3\t4\n\n1 2 3 4\n", 3,
       "expected 4 fields separated by '\\t' but found 1"},
      {Layout::kUData, "1,2,3.0,4\n", 1, "separated by '\\t'"},
      {Layout::kDat, "1::2::3::4\n1::2::3::x4\n", 2, "timestamp 'x4' is not an integer"},
      {Layout::kUData, "1\t-2\t3\t4\n", 1, "movieId -2 is negative"},
      // Line numbers count CRLF lines and skipped blank lines.
      {Layout::kCsv, Csv("\r\n\r\n1,2,3.0,4\r\nx,2,3.0,4\r\n"), 6, "userId 'x'"},
      // Headers, empty files.
      {Layout::kCsv, "user,movie,rating,timestamp\n1,2,3.0,4\n", 1,
       "expected the header 'userId,movieId,rating,timestamp' but found "
       "'user,movie,rating,timestamp'"},
      {Layout::kCsv, "1,2,3.0,4\n", 1, "expected the header"},
      {Layout::kCsv, "", 1, "expected the header"},
      {Layout::kCsv, kHeader, 0, "no ratings"},
      {Layout::kCsv, "userId,movieId,rating,timestamp", 0, "no ratings"},
      {Layout::kCsv, "userId,movieId,rating,timestamp\r\n\r\n", 0, "no ratings"},
      {Layout::kDat, "", 0, "no ratings"},
      {Layout::kUData, "\n\n", 0, "no ratings"},
  };
  inputs.insert(inputs.end(), rest.begin(), rest.end());
  return inputs;
}

INSTANTIATE_TEST_SUITE_P(AllClasses, BadInputTest, ::testing::ValuesIn(BadInputs()));

// Random byte damage to a valid file must give either a Dataset or an InvalidArgument, never a
// crash.
TEST(ParseRatingsTest, SurvivesCorruption) {
  const std::string valid = Csv("7,50,4.0,964982703\n3,20,3.5,964981247\n");
  constexpr char kAlphabet[] = "0123456789,:.\t\r\n-e+xn ";
  Rng rng(42);
  for (int trial = 0; trial < 5000; ++trial) {
    std::string text = valid;
    int edits = 1 + static_cast<int>(rng.Below(4));
    for (int e = 0; e < edits; ++e) {
      size_t at = rng.Below(text.size());
      if (rng.Below(4) == 0) {
        text.erase(at, 1 + rng.Below(3));
      } else {
        text[at] = kAlphabet[rng.Below(sizeof(kAlphabet) - 1)];
      }
    }
    for (Layout layout : {Layout::kCsv, Layout::kDat, Layout::kUData}) {
      absl::StatusOr<Dataset> data = ParseRatings(text, layout, "fuzz");
      if (!data.ok()) {
        EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << data.status();
        continue;
      }
      for (const Rating& r : data->ratings) {
        EXPECT_LT(r.user, data->user_ids.size());
        EXPECT_LT(r.item, data->item_ids.size());
        EXPECT_TRUE(r.rating >= kMinRating && r.rating <= kMaxRating) << r.rating;
      }
    }
  }
}

class ReadMovieLensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/psrec_movielens_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const char* name : {"ratings.csv", "ratings.dat", "u.data"}) {
      std::remove((dir_ + "/" + name).c_str());
    }
    rmdir(dir_.c_str());
  }
  void Write(const std::string& name, absl::string_view text) {
    FILE* f = std::fopen((dir_ + "/" + name).c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
    std::fclose(f);
  }
  std::string dir_;
};

// Each file written wins over those written before it: ratings.csv over ratings.dat over u.data.
// A trailing '/' on the directory is read too.
TEST_F(ReadMovieLensTest, ReadsEachLayout) {
  const std::vector<SampleFile>& files = SampleFiles();
  for (auto file = files.rbegin(); file != files.rend(); ++file) {
    SCOPED_TRACE(file->name);
    Write(file->name, file->text);
    ExpectSampleFrom(ReadMovieLens(file->layout == Layout::kDat ? dir_ + "/" : dir_), file->layout,
                     dir_ + "/" + file->name);
  }
}

TEST_F(ReadMovieLensTest, ErrorsNameTheFile) {
  Write("ratings.dat", "1::2::3::4\n1::2::9::4\n");
  absl::StatusOr<Dataset> data = ReadMovieLens(dir_);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(data.status(), dir_ + "/ratings.dat:2: rating 9 is outside [0.5, 5]"));
}

TEST_F(ReadMovieLensTest, NoRatingFile) {
  Write("ratings.txt", "1,2,3,4\n");
  absl::StatusOr<Dataset> data = ReadMovieLens(dir_);
  std::remove((dir_ + "/ratings.txt").c_str());
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(data.status(), dir_));
  EXPECT_TRUE(HasSubstr(data.status(), "ratings.csv, ratings.dat, u.data"));
}

TEST_F(ReadMovieLensTest, MissingDirectory) {
  const std::string missing = dir_ + "/nope";
  absl::StatusOr<Dataset> data = ReadMovieLens(missing);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(data.status(), "'" + missing + "'"));
  EXPECT_TRUE(HasSubstr(data.status(), "ratings.csv, ratings.dat, u.data"));
}

TEST_F(ReadMovieLensTest, NotADirectory) {
  Write("ratings.csv", kHeader);
  absl::StatusOr<Dataset> data = ReadMovieLens(dir_ + "/ratings.csv");
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(HasSubstr(data.status(), "is not a directory"));
}

TEST(ReadMovieLensRealTest, MovieLensLatestSmall) {
  if (!testing_util::HasMovieLensSmall("ratings.csv")) GTEST_SKIP() << "no ml-latest-small";
  absl::StatusOr<Dataset> data = ReadMovieLens(testing_util::MovieLensSmallDir());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->layout, Layout::kCsv);
  EXPECT_EQ(data->ratings.size(), 100836u);
  EXPECT_EQ(data->user_ids.size(), 610u);
  EXPECT_EQ(data->item_ids.size(), 9724u);
  // First and last lines of the file.
  ExpectRating(*data, 0, 1, 1, 4.0f, 964982703);
  ExpectRating(*data, 100835, 610, 170875, 3.0f, 1493846415);
  float min = 5, max = 0;
  for (const Rating& r : data->ratings) {
    min = std::min(min, r.rating);
    max = std::max(max, r.rating);
  }
  EXPECT_EQ(min, 0.5f);
  EXPECT_EQ(max, 5.0f);
}

}  // namespace
}  // namespace psrec

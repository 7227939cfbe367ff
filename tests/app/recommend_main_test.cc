// `psrec recommend` as a process, over a checkpoint of planted rows
// (tests/app/recommend_test_util.h): the table and the CSV, the fallbacks it announces, a Latin-1
// movies file, and the exit codes of bad flags and files.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/movies.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/app/recommend_test_util.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace testing_util;  // NOLINT(google-build-using-namespace): the tests' own helpers

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class RecommendMainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new fs::path(FreshDir("data"));
    WritePlantedRatings(*data_);
    WritePlantedMoviesCsv(*data_);
    root_ = new fs::path(FreshDir("checkpoints"));
    const PlantedJob planted = MakePlantedJob(*data_);
    WritePlantedCheckpoint(planted, *root_);
  }
  static void TearDownTestSuite() {
    fs::remove_all(TestRoot());
    delete data_;
    delete root_;
  }

  // `psrec recommend --checkpoint=ROOT` plus `args`, run in a fresh directory.
  static Result Recommend(const std::string& name, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"recommend", "--checkpoint=" + root_->string()};
    all.insert(all.end(), args.begin(), args.end());
    return RunPsrec(all, FreshDir(name));
  }

  // What a Recommend() that must exit 0 printed: its result, and its stdout as lines.
  struct Printed {
    Result result;
    std::vector<std::string> lines;
  };
  static Printed RecommendOk(const std::string& name, const std::vector<std::string>& args) {
    Printed printed{Recommend(name, args), {}};
    EXPECT_EQ(printed.result.exit_code, 0) << printed.result.err;
    printed.lines = Lines(printed.result.out);
    return printed;
  }

  // A copy of the ratings with `movies` (a file name and its bytes) beside them, or none.
  static fs::path DataWith(const std::string& name, const std::string& file,
                           const std::string& bytes) {
    fs::path dir = FreshDir(name);
    fs::copy_file(*data_ / "ratings.csv", dir / "ratings.csv");
    if (!file.empty()) std::ofstream(dir / file, std::ios::binary) << bytes;
    return dir;
  }

  static fs::path* data_;
  static fs::path* root_;
};

fs::path* RecommendMainTest::data_ = nullptr;
fs::path* RecommendMainTest::root_ = nullptr;

TEST_F(RecommendMainTest, PrintsTheTopKWithTitlesLeavingOutTrainingItems) {
  const Printed p = RecommendOk("one", {"--user=1", "--k=3", "--data=" + data_->string()});
  ASSERT_EQ(p.lines.size(), 4u) << p.result.out;
  EXPECT_EQ(p.lines[0], "rank\tmovie_id\ttitle\tgenres\tpredicted_rating\tscore");
  EXPECT_THAT(p.lines[1],
              StartsWith("1\t17\tAmerican President, The (1995)\tComedy|Drama|Romance\t"));
  EXPECT_THAT(p.lines[2], StartsWith("2\t16\tAm\xC3\xA9lie (2001)\tComedy|Romance\t"));
  EXPECT_THAT(p.lines[3], StartsWith("3\t15\t\"Great Performances\" Cats (1998)\tMusical\t"));
  EXPECT_THAT(p.result.err, Not(HasSubstr("most-rated")));
}

TEST_F(RecommendMainTest, UnknownUserGetsPopularMoviesAndIsTold) {
  const Printed p = RecommendOk("unknown", {"--user=999", "--k=3", "--data=" + data_->string()});
  EXPECT_THAT(p.result.err,
              HasSubstr("user 999 is not in the ratings file; these are the 3 most-rated "
                        "training movies"));
  ASSERT_EQ(p.lines.size(), 4u) << p.result.out;
  EXPECT_THAT(p.lines[1], StartsWith("1\t19\t"));
  EXPECT_THAT(p.lines[2], StartsWith("2\t10\t"));
  EXPECT_THAT(p.lines[3], StartsWith("3\t11\t"));
}

TEST_F(RecommendMainTest, MissingMoviesFileGivesIdsAndSaysSo) {
  const fs::path dir = DataWith("no_movies", "", "");
  const Printed p = RecommendOk("no_movies_run", {"--user=1", "--k=2", "--data=" + dir.string()});
  EXPECT_THAT(p.result.err,
              HasSubstr("holds none of movies.csv, movies.dat or u.item; printing movie "
                        "ids without titles"));
  ASSERT_EQ(p.lines.size(), 3u) << p.result.out;
  EXPECT_THAT(p.lines[1], StartsWith("1\t17\t\t\t"));
}

TEST_F(RecommendMainTest, Latin1MoviesFilePrintsUtf8) {
  const fs::path dir = DataWith("latin1", "movies.dat",
                                "16::Am\xE9lie (2001)::Comedy|Romance\n"
                                "17::Pr\xE9sident, Le (1995)::Drama\n");
  const Result r = Recommend("latin1_run", {"--user=1", "--k=2", "--data=" + dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(IsValidUtf8(r.out)) << r.out;
  EXPECT_THAT(r.out, HasSubstr("1\t17\tPr\xC3\xA9sident, Le (1995)\tDrama\t"));
  EXPECT_THAT(r.out, HasSubstr("2\t16\tAm\xC3\xA9lie (2001)\tComedy|Romance\t"));
}

TEST_F(RecommendMainTest, BadMoviesFileExitsOneNamingFileAndLine) {
  const fs::path dir = DataWith("bad_movies", "movies.csv", "movieId,title,genres\n1,A,B\nx,C,D\n");
  const Result r = Recommend("bad_movies_run", {"--user=1", "--data=" + dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr((dir / "movies.csv").string() + ":3: movie id 'x'"));
  EXPECT_EQ(r.out, "");
}

TEST_F(RecommendMainTest, UsersFileWritesCsv) {
  const fs::path work = FreshDir("users_file");
  std::ofstream(work / "users.txt") << "userId\n1\n\n# a comment\n999\n";
  const Printed p = RecommendOk("users_run", {"--users=" + (work / "users.txt").string(), "--k=2",
                                              "--data=" + data_->string()});
  ASSERT_EQ(p.lines.size(), 5u) << p.result.out;
  EXPECT_EQ(p.lines[0], "user_id,rank,movie_id,title,genres,predicted_rating,score,source");
  EXPECT_THAT(p.lines[1],
              StartsWith("1,1,17,\"American President, The (1995)\",Comedy|Drama|Romance,"));
  EXPECT_THAT(p.lines[1], testing::EndsWith(",model"));
  EXPECT_THAT(p.lines[2], StartsWith("1,2,16,Am\xC3\xA9lie (2001),Comedy|Romance,"));
  EXPECT_THAT(p.lines[3], StartsWith("999,1,19,Movie 19 (2000),Drama,"));
  EXPECT_THAT(p.lines[4], testing::EndsWith(",popular"));
  EXPECT_THAT(p.result.err, HasSubstr("1 of 2 users have no training rating"));
  std::ofstream(work / "bad.txt") << "1\n2\nthree\n";
  const Result bad = Recommend("users_bad", {"--users=" + (work / "bad.txt").string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr((work / "bad.txt").string() + ":3: 'three' is not a user id"));
}

TEST_F(RecommendMainTest, BadFlagsExitTwoNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::string checkpoint = "--checkpoint=" + root_->string();
  for (const Case& c : std::vector<Case>{
           {{"recommend", "--user=1"}, "--checkpoint=DIR is required"},
           {{"recommend", checkpoint}, "--user=ID or --users=FILE is required"},
           {{"recommend", checkpoint, "--user=1", "--users=u.txt"}, "--user and --users"},
           {{"recommend", checkpoint, "--user=1", "--k=0"}, "--k=0 is not in [1, 100000]"},
           {{"recommend", checkpoint, "--user=x"}, "--user=x"},
           {{"recommend", checkpoint, "--user=1", "--dim=4"}, "--dim is not a flag"},
           {{"recommend", checkpoint, "--user=1", "stray"}, "unexpected argument 'stray'"},
       }) {
    const Result r = RunPsrec(c.args, FreshDir("flags"));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.want));
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(RecommendMainTest, MissingCheckpointExitsOneNamingIt) {
  const fs::path work = FreshDir("missing");
  const Result r =
      RunPsrec({"recommend", "--checkpoint=" + (work / "none").string(), "--user=1"}, work);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr((work / "none").string()));
}

TEST_F(RecommendMainTest, HelpExplainsItself) {
  const Result r = RunPsrec({"recommend", "--help"}, FreshDir("help"));
  EXPECT_EQ(r.exit_code, 0);
  for (const char* text : {"--checkpoint", "--user ", "--users", "--k ", "--data", "tab-separated",
                           "most-rated", "exit 2: bad flags"}) {
    EXPECT_THAT(r.out, HasSubstr(text));
  }
}

}  // namespace
}  // namespace psrec

// The three movie-file layouts, UTF-8 and Latin-1 text, and errors that name the file and line.
#include "common/movies.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(MoviesCsvTest, QuotedTitlesAndGenres) {
  const std::string text =
      "movieId,title,genres\r\n"
      "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\r\n"
      "11,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
      "7,\"\"\"Great Performances\"\" Cats (1998)\",Musical\n"
      "4,Amélie (2001),(no genres listed)\n"
      "\n";
  absl::StatusOr<MovieCatalog> movies = ParseMovies(text, MoviesLayout::kCsv, "movies.csv");
  ASSERT_TRUE(movies.ok()) << movies.status();
  EXPECT_FALSE(movies->latin1);
  ASSERT_EQ(movies->movies.size(), 4u);
  EXPECT_EQ(movies->Find(1)->title, "Toy Story (1995)");
  EXPECT_THAT(movies->Find(1)->genres,
              ElementsAre("Adventure", "Animation", "Children", "Comedy", "Fantasy"));
  EXPECT_EQ(movies->Find(11)->title, "American President, The (1995)");
  EXPECT_EQ(movies->Find(7)->title, "\"Great Performances\" Cats (1998)");
  EXPECT_EQ(movies->Find(4)->title, "Amélie (2001)");
  EXPECT_TRUE(movies->Find(4)->genres.empty());
  EXPECT_EQ(JoinGenres(movies->Find(4)->genres), "(no genres listed)");
  EXPECT_EQ(JoinGenres(movies->Find(11)->genres), "Comedy|Drama|Romance");
  EXPECT_EQ(movies->Find(99), nullptr);
}

TEST(MoviesCsvTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string text, want;
  };
  for (const Case& c : {
           Case{"movieId,name,genres\n1,A,B\n", "m.csv:1: expected the header"},
           Case{"movieId,title,genres\n1,A,B\nx2,B,C\n", "m.csv:3: movie id 'x2' is not"},
           Case{"movieId,title,genres\n1,A,B,C\n", "m.csv:2: expected 3 fields"},
           Case{"movieId,title,genres\n1,\"A, B,C\n", "m.csv:2: a quoted field does not end"},
           Case{"movieId,title,genres\n1,\"A\"x,C\n", "m.csv:2: text follows a closing quote"},
           Case{"movieId,title,genres\n5,A,B\n\n5,C,D\n", "m.csv:4: movie id 5 is listed twice"},
       }) {
    absl::StatusOr<MovieCatalog> movies = ParseMovies(c.text, MoviesLayout::kCsv, "m.csv");
    ASSERT_FALSE(movies.ok()) << c.text;
    EXPECT_THAT(Message(movies.status()), HasSubstr(c.want)) << c.text;
  }
}

TEST(MoviesDatTest, Latin1IsConvertedToUtf8) {
  // ml-1m's movies.dat is Latin-1: 0xE9 is é, 0xF1 is ñ.
  const std::string text =
      "1::Toy Story (1995)::Animation|Children's|Comedy\n"
      "2::Mis\xE9rables, Les (1995)::Drama|Musical\n"
      "3::A::B::C (2000)::Drama\n"
      "4::Ni\xF1o (1990)::\n";
  ASSERT_FALSE(IsValidUtf8(text));
  absl::StatusOr<MovieCatalog> movies = ParseMovies(text, MoviesLayout::kDat, "movies.dat");
  ASSERT_TRUE(movies.ok()) << movies.status();
  EXPECT_TRUE(movies->latin1);
  EXPECT_EQ(movies->Find(2)->title, "Misérables, Les (1995)");
  EXPECT_THAT(movies->Find(2)->genres, ElementsAre("Drama", "Musical"));
  EXPECT_EQ(movies->Find(3)->title, "A::B::C (2000)") << "the title lies between the outer '::'";
  EXPECT_EQ(movies->Find(4)->title, "Niño (1990)");
  EXPECT_TRUE(movies->Find(4)->genres.empty());
  for (const Movie& m : movies->movies) EXPECT_TRUE(IsValidUtf8(m.title)) << m.title;
  absl::StatusOr<MovieCatalog> bad = ParseMovies("1::A::B\n2 A B\n", MoviesLayout::kDat, "d");
  EXPECT_THAT(Message(bad.status()), HasSubstr("d:2: expected MovieID::Title::Genres"));
}

TEST(MoviesDatTest, Utf8FileIsKeptAsIs) {
  absl::StatusOr<MovieCatalog> movies = ParseMovies(
      "\xEF\xBB\xBF"
      "1::Mis\xC3\xA9rables (1995)::Drama\n",
      MoviesLayout::kDat, "m");
  ASSERT_TRUE(movies.ok()) << movies.status();
  EXPECT_FALSE(movies->latin1);
  EXPECT_EQ(movies->Find(1)->title, "Misérables (1995)") << "the BOM is dropped, the text kept";
}

std::string UItemLine(const std::string& id, const std::string& title, const std::string& flags) {
  return id + "|" + title + "|01-Jan-1995||http://us.imdb.com/x|" + flags + "\n";
}

TEST(UItemTest, Latin1TitlesAndGenreFlags) {
  const std::string text =
      UItemLine("1", "Toy Story (1995)", "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0") +
      UItemLine("2", "Cit\xE9 des enfants perdus, La (1995)",
                "0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|1|0|0|0") +
      UItemLine("267", "unknown", "1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0");
  absl::StatusOr<MovieCatalog> movies = ParseMovies(text, MoviesLayout::kUItem, "u.item");
  ASSERT_TRUE(movies.ok()) << movies.status();
  EXPECT_TRUE(movies->latin1);
  EXPECT_THAT(movies->Find(1)->genres, ElementsAre("Animation", "Children's", "Comedy"));
  EXPECT_EQ(movies->Find(2)->title, "Cité des enfants perdus, La (1995)");
  EXPECT_THAT(movies->Find(2)->genres, ElementsAre("Drama", "Sci-Fi"));
  EXPECT_THAT(movies->Find(267)->genres, ElementsAre("unknown"));
  absl::StatusOr<MovieCatalog> short_line =
      ParseMovies(UItemLine("1", "A", "0|0|0"), MoviesLayout::kUItem, "u.item");
  EXPECT_THAT(Message(short_line.status()), HasSubstr("u.item:1: expected 24 '|'-separated"));
  absl::StatusOr<MovieCatalog> bad_flag =
      ParseMovies(text + UItemLine("5", "B", "0|0|0|0|0|0|0|0|0|0|0|0|0|0|2|0|0|0|0"),
                  MoviesLayout::kUItem, "u.item");
  EXPECT_THAT(Message(bad_flag.status()),
              HasSubstr("u.item:4: genre flag 15 (Romance) is '2', not 0 or 1"));
}

TEST(Utf8Test, ValidityAndConversion) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x8E\xAC"));  // é € 🎬
  EXPECT_FALSE(IsValidUtf8("\xE9t\xE9"));                            // Latin-1 été
  EXPECT_FALSE(IsValidUtf8("\xC3"));                                 // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));                             // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));                         // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));                     // above U+10FFFF
  EXPECT_EQ(Latin1ToUtf8("\xE9t\xE9 \xFF"), "\xC3\xA9t\xC3\xA9 \xC3\xBF");
  EXPECT_TRUE(IsValidUtf8(Latin1ToUtf8(std::string("\x80\x9F\xA0\xFF", 4))));
}

TEST(ReadMoviesTest, FindsTheFileAndSaysWhenThereIsNone) {
  const fs::path dir = testing_util::FreshDir("movies");
  absl::StatusOr<MovieCatalog> none = ReadMovies(dir.string());
  EXPECT_TRUE(absl::IsNotFound(none.status()));
  EXPECT_THAT(Message(none.status()), HasSubstr("none of movies.csv, movies.dat or u.item"));
  std::ofstream(dir / "u.item") << UItemLine("3", "C", "0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0");
  absl::StatusOr<MovieCatalog> uitem = ReadMovies(dir.string());
  ASSERT_TRUE(uitem.ok()) << uitem.status();
  EXPECT_EQ(uitem->path, (dir / "u.item").string());
  std::ofstream(dir / "movies.csv") << "movieId,title,genres\n1,A,Drama\n2,B\n";
  absl::StatusOr<MovieCatalog> csv = ReadMovies(dir.string());
  EXPECT_THAT(Message(csv.status()), HasSubstr((dir / "movies.csv").string() + ":3:"));
}

TEST(ReadMoviesRealTest, MovieLensLatestSmall) {
  if (!testing_util::HasMovieLensSmall("movies.csv")) GTEST_SKIP() << "no ml-latest-small";
  const std::string dir = testing_util::MovieLensSmallDir();
  absl::StatusOr<MovieCatalog> movies = ReadMovies(dir);
  ASSERT_TRUE(movies.ok()) << movies.status();
  EXPECT_EQ(movies->movies.size(), 9742u);
  EXPECT_FALSE(movies->latin1);
  EXPECT_EQ(movies->Find(1)->title, "Toy Story (1995)");
  EXPECT_EQ(movies->Find(11)->title, "American President, The (1995)");
}

}  // namespace
}  // namespace psrec

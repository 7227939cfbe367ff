// MovieLens movie files: titles and genres by movie id.
//
// Layouts, detected from the files in a directory (the first present wins):
//   movies.csv  movieId,title,genres with a header; a title holding a comma is quoted, a quote
//               inside it doubled (ml-latest*, ml-20m and later, psrec synth)
//   movies.dat  MovieID::Title::Genres, no header (ml-1m, ml-10m)
//   u.item      id|title|release date|video release date|IMDb URL|19 genre flags, no header
//               (ml-100k)
// Genres are '|'-separated names in the first two; in u.item, each flag set to 1 names one of
// ml-100k's 19 genres (u.genre's names, in its order). "(no genres listed)" reads as no genre.
//
// Text: a file that is valid UTF-8 is read as UTF-8; any other is Latin-1 throughout (as u.item and
// ml-1m's movies.dat are) and converted, so titles are always valid UTF-8. The choice is made per
// file, not per line, because a Latin-1 line can pass for UTF-8 by chance while a file rarely does.
// Every failure is a Status naming the file and the 1-based line.
#ifndef PSREC_COMMON_MOVIES_H_
#define PSREC_COMMON_MOVIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psrec {

enum class MoviesLayout { kCsv, kDat, kUItem };

struct Movie {
  int64_t id = 0;
  std::string title;                // valid UTF-8
  std::vector<std::string> genres;  // in the file's order; empty when none is listed
};

struct MovieCatalog {
  std::string path;                              // the file read
  bool latin1 = false;                           // the file was not UTF-8 and was converted
  std::vector<Movie> movies;                     // in file order
  absl::flat_hash_map<int64_t, uint32_t> index;  // movie id -> position in `movies`

  // nullptr for an id the file does not list.
  const Movie* Find(int64_t id) const;
};

// Finds movies.csv, movies.dat or u.item in `dir` and reads it. NotFound (naming `dir` and the
// three names) when none is there; otherwise errors name the file and line: a missing header, a
// line with the wrong number of fields, an unterminated quote, a non-numeric or repeated movie id,
// an empty title, or a genre flag other than 0 or 1.
absl::StatusOr<MovieCatalog> ReadMovies(const std::string& dir);

// Parses the full text of a movies file. `name` prefixes error messages ("name:line: ...").
absl::StatusOr<MovieCatalog> ParseMovies(absl::string_view text, MoviesLayout layout,
                                         const std::string& name);

// Whether `text` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool IsValidUtf8(absl::string_view text);

// `text` read as Latin-1 (ISO 8859-1), written as UTF-8.
std::string Latin1ToUtf8(absl::string_view text);

// The genres as the files write them: joined by '|', or "(no genres listed)" when there are none.
std::string JoinGenres(const std::vector<std::string>& genres);

}  // namespace psrec

#endif  // PSREC_COMMON_MOVIES_H_

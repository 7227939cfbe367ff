// MovieLens rating files in every published layout, read into one in-memory table.
//
// Layouts, detected from the files in a directory:
//   ratings.csv  userId,movieId,rating,timestamp with a header line
//                (ml-latest*, ml-20m, ml-25m, ml-32m)
//   ratings.dat  userId::movieId::rating::timestamp, no header (ml-1m, ml-10m)
//   u.data       user<TAB>item<TAB>rating<TAB>timestamp, no header (ml-100k)
//
// Every failure is a Status naming the file and the 1-based line: a missing file, an unknown
// layout, a malformed line, a non-numeric field, or a rating outside [0.5, 5]. Nothing here aborts
// on input.
#ifndef PSREC_COMMON_MOVIELENS_H_
#define PSREC_COMMON_MOVIELENS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psrec {

enum class Layout { kCsv, kDat, kUData };

// One rating. `user` and `item` are dense indices into Dataset::user_ids / item_ids.
struct Rating {
  uint32_t user;
  uint32_t item;
  float rating;
  int64_t timestamp;
};

struct Dataset {
  std::string path;  // the file that was read
  Layout layout = Layout::kCsv;
  std::vector<Rating> ratings;  // in file order
  // Dense index -> original MovieLens id. Indices are given in order of first appearance in the
  // file, so every process that reads the same file gets the same mapping.
  std::vector<int64_t> user_ids;
  std::vector<int64_t> item_ids;
};

constexpr float kMinRating = 0.5f;
constexpr float kMaxRating = 5.0f;

// Finds the rating file in `dir` (ratings.csv, then ratings.dat, then u.data) and reads it.
absl::StatusOr<Dataset> ReadMovieLens(const std::string& dir);

// Parses the full text of a rating file in `layout`. `name` is used in error messages ("file:line:
// ..."). Exposed for tests and fuzzers.
absl::StatusOr<Dataset> ParseRatings(absl::string_view text, Layout layout,
                                     const std::string& name);

absl::string_view LayoutName(Layout layout);

}  // namespace psrec

#endif  // PSREC_COMMON_MOVIELENS_H_

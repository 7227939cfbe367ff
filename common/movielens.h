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

// The rating file in `dir` and its layout, looked for as ReadMovieLens does. NOT_FOUND naming the
// directory and the names looked for; INVALID_ARGUMENT when `dir` is not a directory.
struct RatingFile {
  std::string path;
  Layout layout = Layout::kCsv;
};
absl::StatusOr<RatingFile> FindRatingFile(const std::string& dir);

// One parsed line: original ids, as in the file.
struct ScannedRating {
  int64_t user_id;
  int64_t item_id;
  float rating;
  int64_t timestamp;
};

// Parses a rating file's text piece by piece, in order, so that a file of any size can pass
// through a buffer of fixed size. Accepts and refuses exactly what ParseRatings does, with the
// same messages ("name:line: ..."). With `half_stars` it also refuses a rating that is not a whole
// number of half stars (3.7), as compact ratings cannot hold one. Not thread-safe.
class RatingParser {
 public:
  RatingParser(Layout layout, std::string name, bool half_stars = false);

  // Parses the complete lines at the start of `text`, the file's next bytes, and appends their
  // ratings to `out`. Returns how many bytes it consumed: through the last '\n' of `text`, or all
  // of it when `last` says that the file ends there (its last line may lack a newline). The caller
  // passes the bytes not consumed again, followed by the next ones; a line longer than `text`
  // consumes nothing, so the caller must then pass more at once. INVALID_ARGUMENT for a bad line
  // or header; nothing after it is parsed.
  absl::StatusOr<size_t> Parse(absl::string_view text, bool last, std::vector<ScannedRating>* out);

  // Lines seen so far, the header included.
  int64_t lines() const { return line_no_; }

 private:
  // Consumes the byte order mark and the csv header at the start of the file; false when `text`
  // does not hold them whole yet.
  absl::StatusOr<bool> Start(absl::string_view text, bool last, size_t* pos);

  Layout layout_;
  std::string name_;
  bool half_stars_;
  bool started_ = false;
  int64_t line_no_ = 0;
};

// Parses the full text of a rating file in `layout`. `name` is used in error messages ("file:line:
// ..."). Exposed for tests and fuzzers.
absl::StatusOr<Dataset> ParseRatings(absl::string_view text, Layout layout,
                                     const std::string& name);

absl::string_view LayoutName(Layout layout);

}  // namespace psrec

#endif  // PSREC_COMMON_MOVIELENS_H_

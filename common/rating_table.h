// Compact ratings as the trainer reads them: for each row a 32-bit user index, a 32-bit movie
// index and the rating in half stars (9 bytes), and the original ids of the indices. The columns
// are not the table's own: they are runs of arrays that live elsewhere (the mapped columns of the
// shares a process holds, common/share_set.h), each run taking a range of row numbers that starts
// at a multiple of 2^16, so that finding a row's run is one array lookup.
#ifndef PSREC_COMMON_RATING_TABLE_H_
#define PSREC_COMMON_RATING_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/movielens.h"

namespace psrec {

class RatingTable {
 public:
  static constexpr int kBlockBits = 16;

  struct Row {
    uint32_t user;  // dense index: user_id(user) is its original id
    uint32_t item;
    float rating;
  };

  RatingTable() = default;
  RatingTable(const RatingTable&) = delete;
  RatingTable& operator=(const RatingTable&) = delete;

  // A table that owns a compact copy of `data` (row i is data.ratings[i]), for tests and
  // benchmarks. INVALID_ARGUMENT naming the row when a rating is not a whole number of half stars.
  static absl::StatusOr<std::unique_ptr<RatingTable>> CopyOf(const Dataset& data);

  // Forgets every run; the id tables stay.
  void Clear();
  // Adds `n` rows whose columns are these arrays, which must outlive their use through the table.
  // Returns the row number of the first; the run's rows are numbered consecutively from it.
  uint32_t AddRun(const uint32_t* user, const uint32_t* item, const uint8_t* half_stars, size_t n);
  // Original ids by dense index; the spans must outlive the table.
  void SetIds(absl::Span<const int64_t> user_ids, absl::Span<const int64_t> item_ids) {
    user_ids_ = user_ids;
    item_ids_ = item_ids;
  }

  // REQUIRES: `row` was handed out by AddRun's numbering.
  Row Get(uint32_t row) const {
    const Run& r = runs_[block_run_[row >> kBlockBits]];
    const uint32_t i = row - r.first;
    // Half stars * 0.5f is exact, and equals the float the reader parses from "3.5".
    return Row{r.user[i], r.item[i], 0.5f * static_cast<float>(r.half_stars[i])};
  }

  int64_t user_id(uint32_t user) const { return user_ids_[user]; }
  int64_t item_id(uint32_t item) const { return item_ids_[item]; }
  size_t num_users() const { return user_ids_.size(); }
  size_t num_items() const { return item_ids_.size(); }
  // Rows added since the last Clear.
  uint64_t rows() const { return rows_; }

 private:
  struct Run {
    uint32_t first;
    const uint32_t* user;
    const uint32_t* item;
    const uint8_t* half_stars;
  };
  struct Owned;  // CopyOf's columns

  std::vector<Run> runs_;
  std::vector<uint32_t> block_run_;  // the run of each 2^16-row block
  uint64_t rows_ = 0;
  absl::Span<const int64_t> user_ids_, item_ids_;
  std::shared_ptr<Owned> owned_;
};

}  // namespace psrec

#endif  // PSREC_COMMON_RATING_TABLE_H_

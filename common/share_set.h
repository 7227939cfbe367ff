// The shares of prepared ratings (common/prepare.h) that one process holds: a worker holds those
// the coordinator assigns it, the in-process trainer and `psrec eval` hold all of them, and each
// does the same with them. A share's columns are mapped, not read: what a process holds in memory
// is the pages of the user, movie and rating columns of its shares, a bit per rating for the split,
// and the row lists below. Timestamps and file positions are mapped only while a share is split or
// its rows are ordered, and unmapped after.
//
// Row numbers are those of table(): the held shares' rows, share after share in ascending share
// order. train_rows() and test_rows() list them in the order of the original file, so that a
// process holding every share visits exactly the rows, in exactly the order, that one reading the
// whole file would.
//
// Not thread-safe.
#ifndef PSREC_COMMON_SHARE_SET_H_
#define PSREC_COMMON_SHARE_SET_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/rating_table.h"
#include "common/share_files.h"
#include "common/split.h"
#include "proto/config.pb.h"
#include "proto/shares.pb.h"

namespace psrec {

// How a job splits: the config's split, test_fraction and seed, and for SEED_TIME the threshold
// (train = timestamp < threshold) once it is known.
struct SplitSpec {
  Split split = SPLIT_UNSPECIFIED;
  double test_fraction = 0.2;
  uint64_t seed = 1;
  double threshold = 0;

  static SplitSpec Of(const JobConfig& config, double threshold = 0) {
    return SplitSpec{config.split(), config.test_fraction(), config.seed(), threshold};
  }
  bool operator==(const SplitSpec& o) const {
    return split == o.split && test_fraction == o.test_fraction && seed == o.seed &&
           threshold == o.threshold;
  }
};

// What a share's split gives, as the coordinator adds it up.
struct ShareSummary {
  uint32_t share = 0;
  uint64_t train = 0, test = 0;
  uint64_t train_half_stars = 0;  // the sum of the training ratings, in half stars
};

// An item's first training rating in (user id, timestamp, file position) order: the popularity
// baseline's tie order (common/ranking_data.h). The default is after every rating.
struct FirstRating {
  int64_t user_id = INT64_MAX;
  int64_t timestamp = INT64_MAX;
  uint32_t pos = UINT32_MAX;
  bool operator<(const FirstRating& o) const {
    return user_id != o.user_id       ? user_id < o.user_id
           : timestamp != o.timestamp ? timestamp < o.timestamp
                                      : pos < o.pos;
  }
};

// Per item of the id table (by dense index): its training ratings, and the first of them. Those of
// disjoint sets of shares merge exactly, in any order.
struct ItemTrainStats {
  std::vector<uint64_t> count;
  std::vector<FirstRating> first;

  explicit ItemTrainStats(size_t items = 0) : count(items, 0), first(items) {}
  size_t size() const { return count.size(); }
  // REQUIRES: item < size().
  void Add(uint32_t item, uint64_t n, const FirstRating& f) {
    count[item] += n;
    if (f < first[item]) first[item] = f;
  }
};

class ShareSet {
 public:
  // Reads DIR's manifest and maps its id tables. The manifest's errors (prepare.h); NOT_FOUND or
  // DATA_LOSS naming an id table that is missing or damaged.
  static absl::StatusOr<std::unique_ptr<ShareSet>> Open(const std::string& dir);
  ~ShareSet();

  const SharesManifest& manifest() const { return manifest_; }
  uint64_t fingerprint() const { return fingerprint_; }
  const std::string& dir() const { return dir_; }
  // 0 .. num_shares-1.
  std::vector<uint32_t> AllShares() const;

  // Adds the timestamps of `shares` (the ranges' layout: CountIntoBuckets) to `counts`, which
  // must hold sum(ranges.count) entries.
  absl::Status CountTimes(absl::Span<const uint32_t> shares, absl::Span<const TimeBuckets> ranges,
                          absl::Span<uint64_t> counts);

  // Splits `shares` as `spec` says (a share already split so is not split again) and returns what
  // each gives, in the order of `shares`.
  absl::StatusOr<std::vector<ShareSummary>> Split(absl::Span<const uint32_t> shares,
                                                  const SplitSpec& spec);

  // Adds the training ratings of `shares`, split already by Split or Hold, to `stats` (sized to
  // the id table's items). FAILED_PRECONDITION for a share not split; the column errors below.
  absl::Status AddItemTrainStats(absl::Span<const uint32_t> shares, ItemTrainStats* stats);

  // Makes `shares` the ones held: splits them as `spec` says where needed, drops every other share,
  // and numbers the held rows afresh (table, train_rows, test_rows). Holding the shares already
  // held with the same spec changes nothing.
  absl::Status Hold(absl::Span<const uint32_t> shares, const SplitSpec& spec);

  // The held rows: valid until the next Hold.
  const RatingTable& table() const { return table_; }
  absl::Span<const uint32_t> train_rows() const { return train_rows_; }
  absl::Span<const uint32_t> test_rows() const { return test_rows_; }
  const std::vector<uint32_t>& held() const { return held_; }

  // Every error of this class names the file at fault: a column that is missing, damaged
  // (DATA_LOSS: size, header, checksum) or holds values the manifest rules out (an index past the
  // tables, a rating outside 1..10 half stars, positions out of order, a timestamp outside the
  // share's range).

 private:
  struct Share;  // one share's mapped columns and split

  ShareSet() = default;
  absl::StatusOr<Share*> Load(uint32_t share);
  // Maps column `column` (kTime or kPos) of `share` for the caller's while, checked in full the
  // first time.
  absl::StatusOr<MappedColumn> MapTransient(Share& share, Column column);
  absl::Status SplitShare(Share& share, const SplitSpec& spec);
  // Fills train_rows_ and test_rows_ from the held shares in file order.
  absl::Status OrderRows();

  std::string dir_;
  SharesManifest manifest_;
  uint64_t fingerprint_ = 0;
  MappedColumn user_ids_, item_ids_;
  std::map<uint32_t, std::unique_ptr<Share>> shares_;  // loaded, by share number
  std::vector<uint32_t> held_;
  SplitSpec held_spec_;
  RatingTable table_;
  std::vector<uint32_t> train_rows_, test_rows_;
};

}  // namespace psrec

#endif  // PSREC_COMMON_SHARE_SET_H_

// Top-K ranking metrics over the full catalogue: Recall@K, NDCG@K and catalogue coverage.
//
// For one user, every catalogue item the user did not rate in training is ranked by score, highest
// first; ties go to the item with the smaller tie key, a number per item that the caller gives. A
// model's ranking uses the MovieLens movie ids, so its order depends on neither the file order nor
// how the users are shared out; the popularity baseline, whose scores tie often, uses its own
// (common/ranking_data.h). A NaN score ranks below every number. With R the user's
// relevant items (test items rated at least the threshold, less any training item) and H of them in
// the top K:
//
//   Recall@K = H / R
//   NDCG@K   = sum over ranks r = 1..K holding a relevant item of 1 / log2(r + 1),
//              divided by the same sum over r = 1..min(K, R) (the ideal order)
//
// A user with R = 0 is not counted. Both are averaged over the counted users. Coverage@K is the
// number of distinct items in the counted users' top-K lists over the catalogue size. When fewer
// than K items remain to rank (K larger than the catalogue), the list is all of them.
//
// Sums add exactly: per-user values are summed as integers in units of 2^-36 (each rounded by at
// most 2^-37, exact for up to 2^27 users), and the recommended items as a bitmap, so merging the
// sums of any split of the users in any order gives the same bits.
#ifndef PSREC_COMMON_RANKING_H_
#define PSREC_COMMON_RANKING_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace psrec {

// A test rating at least this is relevant (the data README's ranking reference).
constexpr float kRelevantMinRating = 4.0f;

// What a set of users contributed to the metrics; merge the sums of disjoint sets of users.
struct RankingSums {
  uint64_t catalogue_size = 0;
  int64_t users = 0;                  // users with at least one relevant item
  int64_t hits = 0;                   // relevant items in their top K
  int64_t relevant = 0;               // their relevant items
  int64_t recall_units = 0;           // sum of per-user Recall@K in units of kRankingUnit
  int64_t ndcg_units = 0;             // sum of per-user NDCG@K, likewise
  std::vector<uint64_t> recommended;  // bit i: item i is in some counted top K

  static constexpr double kRankingUnit = 1.0 / (uint64_t{1} << 36);

  // Adds `other` in. InvalidArgument, changing nothing, when both have a catalogue and the sizes
  // differ; an empty RankingSums (catalogue_size 0) merges with anything.
  absl::Status Merge(const RankingSums& other);

  // Means over the counted users; 0 when there are none.
  double recall() const;
  double ndcg() const;
  // Distinct recommended items / catalogue_size; 0 for an empty catalogue.
  double coverage() const;
};

// Ranks one catalogue for user after user and accumulates their metrics. Not thread-safe: use one
// per thread and merge their sums().
class RankingEvaluator {
 public:
  // `tie_keys`: one per catalogue index (its size is the catalogue's); of two items with the same
  // score the one with the smaller key ranks first. Models pass the movie ids. InvalidArgument for
  // k < 1.
  static absl::StatusOr<RankingEvaluator> Create(std::vector<int64_t> tie_keys, int k);

  int k() const { return k_; }
  size_t catalogue_size() const { return ids_.size(); }

  // The catalogue indices of the user's top min(k, items left) items, best first, leaving out
  // `exclude` (any order, repeats allowed). The span lives until the next call. InvalidArgument
  // when scores.size() is not the catalogue size or an index is out of range.
  absl::StatusOr<absl::Span<const uint32_t>> TopK(absl::Span<const float> scores,
                                                  absl::Span<const uint32_t> exclude);

  // Ranks one user (scores over the catalogue, training items excluded) and adds the user's
  // metrics if any relevant item is not also a training item. Returns whether the user was counted.
  // Errors as TopK's, also for a relevant index out of range; the sums are then unchanged.
  absl::StatusOr<bool> AddUser(absl::Span<const float> scores, absl::Span<const uint32_t> train,
                               absl::Span<const uint32_t> relevant);

  const RankingSums& sums() const { return sums_; }

 private:
  RankingEvaluator(std::vector<int64_t> tie_keys, int k);
  absl::Status CheckIndices(absl::Span<const uint32_t> items, const char* what) const;
  // Whether a ranks above b.
  bool Better(absl::Span<const float> scores, uint32_t a, uint32_t b) const;

  std::vector<int64_t> ids_;  // tie keys
  int k_;
  std::vector<double> discount_;  // discount_[r] = 1 / log2(r + 2), r 0-based
  std::vector<uint8_t> mark_;     // per item: kExcluded | kRelevant, cleared after each call
  std::vector<uint32_t> top_;
  RankingSums sums_;
};

}  // namespace psrec

#endif  // PSREC_COMMON_RANKING_H_

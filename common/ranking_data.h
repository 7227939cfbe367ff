// What ranking needs from a split dataset: each user's training items (left out of their ranking)
// and relevant test items, the catalogue's movie ids, and each movie's training count, which is
// also the popularity baseline's score.
//
// The catalogue is every movie of the ratings file (Dataset::item_ids, by dense index), rated in
// training or not: a model scores all of them, and a movie seen only in test can be recommended.
#ifndef PSREC_COMMON_RANKING_DATA_H_
#define PSREC_COMMON_RANKING_DATA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/movielens.h"
#include "common/ranking.h"
#include "common/share_set.h"
#include "common/split.h"
#include "proto/config.pb.h"

namespace psrec {

// Every rating of a job's file with its ids and file order, split by the whole-data reference
// (SplitDataset, which the shares reproduce exactly: tests/common/share_set_test.cc). Ranking needs
// all of a user's ratings and every movie at once, so `psrec recommend` holds the whole file, where
// training holds shares (common/share_set.h).
struct WholeData {
  Dataset data;
  SplitRows split;
};

// Reads config->data_dir and splits it as config says. Sets config->rating_offset to the mean
// training rating, computed as the shares compute it (SplitTotals::MeanTrainRating), so that a
// checkpoint's recorded offset matches. Errors: the reader's (file and line), and
// CheckSplitTotals' for a split that leaves no training or no test rating.
absl::StatusOr<WholeData> ReadWholeData(JobConfig* config);

// Items grouped by user, in compressed rows: user u's items are items[offsets[u], offsets[u+1]),
// ascending and without repeats.
struct UserItems {
  std::vector<uint64_t> offsets;  // one more than the users
  std::vector<uint32_t> items;

  size_t num_users() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  absl::Span<const uint32_t> of(uint32_t user) const {
    return absl::MakeConstSpan(items).subspan(offsets[user], offsets[user + 1] - offsets[user]);
  }
};

// Sorts each user's items and drops the repeats, compacting the rows leftwards: what GroupItems
// does last.
void SortAndDropRepeats(UserItems* items);

// Items in `groups` compressed rows. `for_each(emit)` calls emit(group, item) for every pair, with
// group < groups, and must pass the same pairs each time: it is called twice, once to count them
// and once to place them. Each group's items come out ascending and without repeats.
template <typename ForEach>
UserItems GroupItems(size_t groups, const ForEach& for_each) {
  UserItems out;
  out.offsets.assign(groups + 1, 0);
  for_each([&](size_t group, uint32_t) { ++out.offsets[group + 1]; });
  for (size_t g = 0; g < groups; ++g) out.offsets[g + 1] += out.offsets[g];
  out.items.resize(out.offsets.back());
  std::vector<uint64_t> next(out.offsets.begin(), out.offsets.end() - 1);
  for_each([&](size_t group, uint32_t item) { out.items[next[group]++] = item; });
  SortAndDropRepeats(&out);
  return out;
}

// The items of `rows` (indices into data.ratings) rated at least `min_rating`, grouped by every
// user of `data`.
UserItems GroupItemsByUser(const Dataset& data, absl::Span<const uint32_t> rows,
                           float min_rating = kMinRating);

struct RankingData {
  std::vector<int64_t> item_ids;    // the catalogue: movie id by dense item index
  UserItems train;                  // every user's training items
  UserItems relevant;               // every user's test items rated >= kRelevantMinRating
  std::vector<float> train_counts;  // per item, its training ratings (exact in a float to 2^24)
  // Per item, its place in the order in which the training ratings, sorted by user id, then time,
  // then file order, first reach it; items without a training rating follow, by movie id. The
  // popularity baseline's tie keys (see EvaluatePopularity).
  std::vector<int64_t> first_rated;
};

RankingData MakeRankingData(const Dataset& data, const SplitRows& split);

// The items ranked by their first training rating (`first`, by dense index; FirstRating's order),
// those never rated in training last by movie id: RankingData::first_rated.
// REQUIRES: first.size() == item_ids.size().
std::vector<int64_t> RankFirstRated(absl::Span<const FirstRating> first,
                                    absl::Span<const int64_t> item_ids);

// The popularity baseline's scores and tie keys, by dense item index: RankingData's train_counts
// and first_rated, from the training statistics of shares (a distributed job merges the workers').
struct Popularity {
  std::vector<float> counts;
  std::vector<int64_t> tie_keys;
};
// REQUIRES: stats.size() == item_ids.size().
Popularity PopularityOf(const ItemTrainStats& stats, absl::Span<const int64_t> item_ids);

// Popularity scores each item by its training count, so its top K for a user are the K most-rated
// training movies the user did not rate. Counts tie often (on ml-latest-small, at the 10th place
// of most users' lists), and the tie order moves the metrics by a few percent: ties go to the
// movie first rated in `first_rated`'s order, the order a pandas value_counts over the training
// ratings sorted by user and time gives, which reproduces the data README's reference (smaller
// movie ids first would give Recall@10 0.0498 and NDCG@10 0.0756 there instead of 0.0484 and
// 0.0749). Ranks every user with a relevant item. InvalidArgument for k < 1.
absl::StatusOr<RankingSums> EvaluatePopularity(const RankingData& data, int k);

}  // namespace psrec

#endif  // PSREC_COMMON_RANKING_DATA_H_

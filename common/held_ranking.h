// Ranking metrics over the users whose shares a process holds, so that each worker of a distributed
// job ranks its own users and the coordinator adds up their exact sums (RankingSums): with the
// same rows, one process holding every share and any number of workers get the same bits.
//
// The catalogue is every movie of the id table (RatingTable::num_items; the same in every process,
// without talking), rated in training or not; for each held user with a relevant test rating
// (rated at least kRelevantMinRating and not also a training item), every catalogue item the user
// did not rate in training is ranked (common/ranking.h). A user without a training rating (cold,
// under seed_time) is ranked too, from the row the store gives it.
#ifndef PSREC_COMMON_HELD_RANKING_H_
#define PSREC_COMMON_HELD_RANKING_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/param_store.h"
#include "common/ranking.h"
#include "common/ranking_data.h"
#include "common/rating_table.h"
#include "common/share_set.h"
#include "proto/config.pb.h"
#include "proto/coordinator.pb.h"

namespace psrec {

// The metrics' K: Recall@10, NDCG@10, coverage of the top 10s.
constexpr int kRankingK = 10;

// With ranking_every 0, a job ranks every epoch up to this many user x item pairs, else only
// after its last epoch. ml-latest-small has 6e6 (a few ms); ml-25m 1e10 (minutes per evaluation).
constexpr double kRankEveryEpochPairs = 1e8;

// Whether the evaluation after epoch `epoch` (1-based; the last is config.epochs()) ranks, for a
// job of `users` and `items` (the id tables' sizes). See JobConfig.ranking_every.
bool RanksAfterEpoch(const JobConfig& config, uint32_t epoch, uint64_t users, uint64_t items);
// Whether the job ranks at all (so needs the popularity baseline's statistics).
inline bool RanksAtAll(const JobConfig& config) { return config.ranking_every() >= 0; }

// The held users with a relevant test rating (dense user indices, ascending), with their training
// items and their relevant test items (UserItems rows by position in `users`).
struct HeldUsers {
  std::vector<uint32_t> users;
  UserItems train;
  UserItems relevant;
};

// From the rows of `table` (train and test row numbers, as ShareSet gives them).
HeldUsers GroupHeldUsers(const RatingTable& table, absl::Span<const uint32_t> train_rows,
                         absl::Span<const uint32_t> test_rows);

// Ranks the catalogue for every user of `held` by the model whose rows `store` holds (config's
// model, with its rating_offset), ties by movie id, and returns their sums. Pulls the catalogue's
// item rows and the users' rows in chunks that stay within a server's request limits. Errors: the
// store's, or CatalogueScorer's for a config it refuses.
absl::StatusOr<RankingSums> RankHeldUsers(const JobConfig& config, const RatingTable& table,
                                          const HeldUsers& held, ParamStore* store, int k);

// The popularity baseline over the users of `held`, from the whole job's item statistics (common/
// ranking_data.h, PopularityOf). InvalidArgument when `stats` does not cover the catalogue of
// `table`.
absl::StatusOr<RankingSums> RankHeldPopularity(const RatingTable& table, const HeldUsers& held,
                                               const ItemTrainStats& stats, int k);

// The catalogue's movie ids by dense index.
std::vector<int64_t> CatalogueIds(const RatingTable& table);

// The same over the shares `data` holds, at K = kRankingK: RankHeldUsers and RankHeldPopularity
// of GroupHeldUsers(its rows).
absl::StatusOr<RankingSums> RankHeldShares(const JobConfig& config, const ShareSet& data,
                                           ParamStore* store);
absl::StatusOr<RankingSums> RankHeldSharesByPopularity(const ShareSet& data,
                                                       const ItemTrainStats& stats);

// The sums on the wire (proto/coordinator.proto), both ways. FromWire: InvalidArgument when the
// bitmap does not fit the catalogue.
void RankingToWire(const RankingSums& sums, RankingTotals* wire);
absl::StatusOr<RankingSums> RankingFromWire(const RankingTotals& wire);

// The sparse wire form of item statistics (the items with a training rating), and its merge into
// `stats`: InvalidArgument naming the item when it is outside the id table.
void ItemStatsToWire(const ItemTrainStats& stats,
                     google::protobuf::RepeatedPtrField<ItemTrain>* wire);
absl::Status MergeItemStats(const google::protobuf::RepeatedPtrField<ItemTrain>& wire,
                            ItemTrainStats* stats);

}  // namespace psrec

#endif  // PSREC_COMMON_HELD_RANKING_H_

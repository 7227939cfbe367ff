#include "common/held_ranking.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/catalogue_scorer.h"
#include "common/model.h"

namespace psrec {
namespace {

// Rows per pull: (4096 + 1) floats a row stays under the servers' 2^26 floats a request
// (ps/request_checks.h) at the widest model.
constexpr size_t kPullRows = 8192;

// Rows of `table` among `rows` that pass `keep`, grouped by their user's slot (UINT32_MAX: not
// wanted), each slot's items ascending and without repeats.
template <typename Keep>
UserItems GroupBySlot(const RatingTable& table, absl::Span<const uint32_t> rows,
                      absl::Span<const uint32_t> slot, size_t slots, Keep keep) {
  return GroupItems(slots, [&](const auto& emit) {
    for (const uint32_t row : rows) {
      const RatingTable::Row r = table.Get(row);
      if (slot[r.user] != UINT32_MAX && keep(r)) emit(slot[r.user], r.item);
    }
  });
}

bool IsRelevant(const RatingTable::Row& r) { return r.rating >= kRelevantMinRating; }

// Every catalogue item's rows and the dense row, pulled chunk by chunk.
absl::StatusOr<CatalogueScorer> PullCatalogue(const JobConfig& config, const RatingTable& table,
                                              ParamStore* store) {
  absl::StatusOr<Model> model = Model::Create(config);
  if (!model.ok()) return model.status();
  const size_t items = table.num_items();
  const size_t dim = config.dim();
  std::vector<uint64_t> keys(items);
  for (uint32_t i = 0; i < items; ++i) keys[i] = static_cast<uint64_t>(table.item_id(i));
  CatalogueRows rows;
  rows.item_emb.resize(items * dim);
  rows.item_bias.resize(items);
  rows.dense.resize(model->dense_rows().floats());
  const PullBlock dense[] = {{kDenseTable, model->dense_rows().keys, absl::MakeSpan(rows.dense)}};
  if (!rows.dense.empty()) {
    if (absl::Status s = store->Pull(dense); !s.ok()) return s;
  }
  for (size_t begin = 0; begin < items; begin += kPullRows) {
    const size_t n = std::min(kPullRows, items - begin);
    const absl::Span<const uint64_t> chunk = absl::MakeConstSpan(keys).subspan(begin, n);
    const PullBlock blocks[] = {
        {kItemEmbeddingTable, chunk, absl::MakeSpan(rows.item_emb).subspan(begin * dim, n * dim)},
        {kItemBiasTable, chunk, absl::MakeSpan(rows.item_bias).subspan(begin, n)}};
    if (absl::Status s = store->Pull(blocks); !s.ok()) return s;
  }
  return CatalogueScorer::Create(config, std::move(rows));
}

}  // namespace

bool RanksAfterEpoch(const JobConfig& config, uint32_t epoch, uint64_t users, uint64_t items) {
  const int32_t every = config.ranking_every();
  if (every < 0) return false;
  if (epoch >= config.epochs()) return true;
  if (every > 0) return epoch % static_cast<uint32_t>(every) == 0;
  return static_cast<double>(users) * static_cast<double>(items) <= kRankEveryEpochPairs;
}

HeldUsers GroupHeldUsers(const RatingTable& table, absl::Span<const uint32_t> train_rows,
                         absl::Span<const uint32_t> test_rows) {
  HeldUsers out;
  std::vector<uint32_t> slot(table.num_users(), UINT32_MAX);
  for (const uint32_t row : test_rows) {
    const RatingTable::Row r = table.Get(row);
    if (IsRelevant(r)) slot[r.user] = 0;
  }
  for (uint32_t u = 0; u < slot.size(); ++u) {
    if (slot[u] == 0) {
      slot[u] = static_cast<uint32_t>(out.users.size());
      out.users.push_back(u);
    }
  }
  out.train = GroupBySlot(table, train_rows, slot, out.users.size(),
                          [](const RatingTable::Row&) { return true; });
  out.relevant = GroupBySlot(table, test_rows, slot, out.users.size(), IsRelevant);
  return out;
}

absl::StatusOr<RankingSums> RankHeldUsers(const JobConfig& config, const RatingTable& table,
                                          const HeldUsers& held, ParamStore* store, int k) {
  absl::StatusOr<RankingEvaluator> eval = RankingEvaluator::Create(CatalogueIds(table), k);
  if (!eval.ok()) return eval.status();
  absl::StatusOr<CatalogueScorer> scorer = PullCatalogue(config, table, store);
  if (!scorer.ok()) return scorer.status();
  const size_t dim = config.dim();
  std::vector<uint64_t> keys;
  std::vector<float> emb, bias, scores(table.num_items());
  for (size_t begin = 0; begin < held.users.size(); begin += kPullRows) {
    const size_t n = std::min(kPullRows, held.users.size() - begin);
    keys.resize(n);
    for (size_t j = 0; j < n; ++j) {
      keys[j] = static_cast<uint64_t>(table.user_id(held.users[begin + j]));
    }
    emb.resize(n * dim);
    bias.resize(n);
    const PullBlock blocks[] = {{kUserEmbeddingTable, keys, absl::MakeSpan(emb)},
                                {kUserBiasTable, keys, absl::MakeSpan(bias)}};
    if (absl::Status s = store->Pull(blocks); !s.ok()) return s;
    for (size_t j = 0; j < n; ++j) {
      const auto slot = static_cast<uint32_t>(begin + j);
      if (absl::Status s = scorer->Score(absl::MakeConstSpan(emb).subspan(j * dim, dim), bias[j],
                                         absl::MakeSpan(scores));
          !s.ok()) {
        return s;
      }
      absl::StatusOr<bool> added =
          eval->AddUser(scores, held.train.of(slot), held.relevant.of(slot));
      if (!added.ok()) return added.status();
    }
  }
  return eval->sums();
}

std::vector<int64_t> CatalogueIds(const RatingTable& table) {
  std::vector<int64_t> ids(table.num_items());
  for (uint32_t i = 0; i < ids.size(); ++i) ids[i] = table.item_id(i);
  return ids;
}

absl::StatusOr<RankingSums> RankHeldPopularity(const RatingTable& table, const HeldUsers& held,
                                               const ItemTrainStats& stats, int k) {
  if (stats.size() != table.num_items()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item statistics of ", stats.size(), " items for a catalogue of ", table.num_items()));
  }
  const Popularity popularity = PopularityOf(stats, CatalogueIds(table));
  absl::StatusOr<RankingEvaluator> eval = RankingEvaluator::Create(popularity.tie_keys, k);
  if (!eval.ok()) return eval.status();
  for (uint32_t slot = 0; slot < held.users.size(); ++slot) {
    absl::StatusOr<bool> added =
        eval->AddUser(popularity.counts, held.train.of(slot), held.relevant.of(slot));
    if (!added.ok()) return added.status();
  }
  return eval->sums();
}

absl::StatusOr<RankingSums> RankHeldShares(const JobConfig& config, const ShareSet& data,
                                           ParamStore* store) {
  const HeldUsers held = GroupHeldUsers(data.table(), data.train_rows(), data.test_rows());
  return RankHeldUsers(config, data.table(), held, store, kRankingK);
}

absl::StatusOr<RankingSums> RankHeldSharesByPopularity(const ShareSet& data,
                                                       const ItemTrainStats& stats) {
  const HeldUsers held = GroupHeldUsers(data.table(), data.train_rows(), data.test_rows());
  return RankHeldPopularity(data.table(), held, stats, kRankingK);
}

void RankingToWire(const RankingSums& sums, RankingTotals* wire) {
  wire->set_catalogue_size(sums.catalogue_size);
  wire->set_users(sums.users);
  wire->set_hits(sums.hits);
  wire->set_relevant(sums.relevant);
  wire->set_recall_units(sums.recall_units);
  wire->set_ndcg_units(sums.ndcg_units);
  wire->mutable_recommended()->Assign(sums.recommended.begin(), sums.recommended.end());
}

absl::StatusOr<RankingSums> RankingFromWire(const RankingTotals& wire) {
  RankingSums sums;
  sums.catalogue_size = wire.catalogue_size();
  if (static_cast<uint64_t>(wire.recommended_size()) != (sums.catalogue_size + 63) / 64) {
    return absl::InvalidArgumentError(absl::StrCat("a ranking bitmap of ", wire.recommended_size(),
                                                   " words for a catalogue of ",
                                                   sums.catalogue_size, " items"));
  }
  sums.users = wire.users();
  sums.hits = wire.hits();
  sums.relevant = wire.relevant();
  sums.recall_units = wire.recall_units();
  sums.ndcg_units = wire.ndcg_units();
  sums.recommended.assign(wire.recommended().begin(), wire.recommended().end());
  return sums;
}

void ItemStatsToWire(const ItemTrainStats& stats,
                     google::protobuf::RepeatedPtrField<ItemTrain>* wire) {
  for (uint32_t i = 0; i < stats.size(); ++i) {
    if (stats.count[i] == 0) continue;
    ItemTrain* item = wire->Add();
    item->set_item(i);
    item->set_count(stats.count[i]);
    item->set_first_user_id(stats.first[i].user_id);
    item->set_first_timestamp(stats.first[i].timestamp);
    item->set_first_pos(stats.first[i].pos);
  }
}

absl::Status MergeItemStats(const google::protobuf::RepeatedPtrField<ItemTrain>& wire,
                            ItemTrainStats* stats) {
  for (const ItemTrain& item : wire) {
    if (item.item() >= stats->size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("item ", item.item(), " is outside the ", stats->size(), "-item id table"));
    }
  }
  for (const ItemTrain& item : wire) {
    stats->Add(item.item(), item.count(),
               FirstRating{item.first_user_id(), item.first_timestamp(), item.first_pos()});
  }
  return absl::OkStatus();
}

}  // namespace psrec

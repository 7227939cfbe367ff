#include "common/ranking_data.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "common/job_data.h"

namespace psrec {

absl::StatusOr<WholeData> ReadWholeData(JobConfig* config) {
  WholeData out;
  absl::StatusOr<Dataset> data = ReadMovieLens(config->data_dir());
  if (!data.ok()) return data.status();
  out.data = *std::move(data);
  absl::StatusOr<SplitRows> split =
      SplitDataset(out.data, config->split(), config->test_fraction(), config->seed());
  if (!split.ok()) return split.status();
  out.split = *std::move(split);
  SplitTotals totals;
  totals.train = out.split.train.size();
  totals.test = out.split.test.size();
  for (const uint32_t row : out.split.train) {
    totals.train_half_stars += static_cast<uint64_t>(std::lround(2 * out.data.ratings[row].rating));
  }
  if (absl::Status s = CheckSplitTotals(totals, config->split(), out.data.path); !s.ok()) return s;
  config->set_rating_offset(totals.MeanTrainRating());
  return out;
}

void SortAndDropRepeats(UserItems* items) {
  uint64_t write = 0;
  for (size_t u = 0; u < items->num_users(); ++u) {
    const auto begin = items->items.begin() + static_cast<ptrdiff_t>(items->offsets[u]);
    const auto end = items->items.begin() + static_cast<ptrdiff_t>(items->offsets[u + 1]);
    std::sort(begin, end);
    const auto unique_end = std::unique(begin, end);
    items->offsets[u] = write;
    for (auto it = begin; it != unique_end; ++it) items->items[write++] = *it;
  }
  items->offsets.back() = write;
  items->items.resize(write);
}

UserItems GroupItemsByUser(const Dataset& data, absl::Span<const uint32_t> rows, float min_rating) {
  return GroupItems(data.user_ids.size(), [&](const auto& emit) {
    for (const uint32_t row : rows) {
      const Rating& r = data.ratings[row];
      if (r.rating >= min_rating) emit(r.user, r.item);
    }
  });
}

namespace {

// RankingData::first_rated: each item's first (user id, time, row) over the training rows, ranked.
std::vector<int64_t> FirstRatedOrder(const Dataset& data, absl::Span<const uint32_t> train) {
  std::vector<FirstRating> first(data.item_ids.size());
  for (const uint32_t row : train) {
    const Rating& r = data.ratings[row];
    first[r.item] = std::min(first[r.item], FirstRating{data.user_ids[r.user], r.timestamp, row});
  }
  return RankFirstRated(first, data.item_ids);
}

}  // namespace

RankingData MakeRankingData(const Dataset& data, const SplitRows& split) {
  RankingData out;
  out.item_ids = data.item_ids;
  out.train = GroupItemsByUser(data, split.train);
  out.relevant = GroupItemsByUser(data, split.test, kRelevantMinRating);
  out.train_counts.assign(data.item_ids.size(), 0.0f);
  for (const uint32_t row : split.train) out.train_counts[data.ratings[row].item] += 1.0f;
  out.first_rated = FirstRatedOrder(data, split.train);
  return out;
}

std::vector<int64_t> RankFirstRated(absl::Span<const FirstRating> first,
                                    absl::Span<const int64_t> item_ids) {
  const size_t items = item_ids.size();
  std::vector<uint32_t> order(items);
  for (uint32_t i = 0; i < items; ++i) order[i] = i;
  // Rated items differ in their first rating; those never rated in training share the default.
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (first[a] < first[b] || first[b] < first[a]) return first[a] < first[b];
    return item_ids[a] < item_ids[b];
  });
  std::vector<int64_t> rank(items);
  for (uint32_t place = 0; place < items; ++place) rank[order[place]] = place;
  return rank;
}

Popularity PopularityOf(const ItemTrainStats& stats, absl::Span<const int64_t> item_ids) {
  Popularity out;
  out.counts.reserve(stats.size());
  for (const uint64_t n : stats.count) out.counts.push_back(static_cast<float>(n));
  out.tie_keys = RankFirstRated(stats.first, item_ids);
  return out;
}

absl::StatusOr<RankingSums> EvaluatePopularity(const RankingData& data, int k) {
  absl::StatusOr<RankingEvaluator> eval = RankingEvaluator::Create(data.first_rated, k);
  if (!eval.ok()) return eval.status();
  for (uint32_t u = 0; u < data.relevant.num_users(); ++u) {
    if (data.relevant.of(u).empty()) continue;
    absl::StatusOr<bool> added =
        eval->AddUser(data.train_counts, data.train.of(u), data.relevant.of(u));
    if (!added.ok()) return added.status();
  }
  return eval->sums();
}

}  // namespace psrec

#include "common/share_set.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <numeric>
#include <queue>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/prepare.h"

namespace psrec {
namespace {

// How often a front-to-back read gives back the pages it has passed.
constexpr uint64_t kReleaseEvery = uint64_t{1} << 20;

absl::Status BadValue(const MappedColumn& column, uint64_t row, const std::string& what) {
  return absl::DataLossError(absl::StrCat(column.path(), ": element ", row, " ", what));
}

// Every element of `values` below `limit`.
absl::Status CheckBelow(const MappedColumn& column, absl::Span<const uint32_t> values,
                        uint64_t limit, const char* what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] >= limit) {
      return BadValue(column, i,
                      absl::StrCat("is ", what, " ", values[i], ", but there are ", limit));
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct ShareSet::Share {
  uint32_t id = 0;
  uint64_t rows = 0;
  MappedColumn user, item, rating;
  bool time_checked = false, pos_checked = false;
  bool split = false;
  SplitSpec spec;
  std::vector<uint64_t> test_bits;  // bit r: row r is a test rating
  ShareSummary summary;
  uint32_t first_row = 0;  // in table_

  bool is_test(uint64_t r) const { return (test_bits[r >> 6] >> (r & 63)) & 1; }
};

ShareSet::~ShareSet() = default;

absl::StatusOr<std::unique_ptr<ShareSet>> ShareSet::Open(const std::string& dir) {
  absl::StatusOr<SharesManifest> manifest = ReadSharesManifest(dir);
  if (!manifest.ok()) return manifest.status();
  auto set = std::unique_ptr<ShareSet>(new ShareSet());
  set->dir_ = dir;
  set->manifest_ = *std::move(manifest);
  set->fingerprint_ = ManifestFingerprint(set->manifest_);
  for (auto [name, count, column] :
       {std::tuple{"users.ids", set->manifest_.num_users(), &set->user_ids_},
        std::tuple{"items.ids", set->manifest_.num_items(), &set->item_ids_}}) {
    absl::StatusOr<MappedColumn> ids =
        MappedColumn::Open(JoinPath(dir, name), Column::kIds, kNoShare, count, true);
    if (!ids.ok()) return ids.status();
    *column = *std::move(ids);
  }
  set->table_.SetIds(set->user_ids_.span<int64_t>(), set->item_ids_.span<int64_t>());
  return set;
}

std::vector<uint32_t> ShareSet::AllShares() const {
  std::vector<uint32_t> all(manifest_.num_shares());
  std::iota(all.begin(), all.end(), 0u);
  return all;
}

absl::StatusOr<ShareSet::Share*> ShareSet::Load(uint32_t id) {
  if (auto it = shares_.find(id); it != shares_.end()) return it->second.get();
  if (id >= manifest_.num_shares()) {
    return absl::InvalidArgumentError(
        absl::StrCat("share ", id, " of ", dir_, ", which has only ", manifest_.num_shares()));
  }
  auto share = std::make_unique<Share>();
  share->id = id;
  share->rows = manifest_.shares(static_cast<int>(id)).rows();
  for (auto [column, mapped] : {std::pair{Column::kUser, &share->user},
                                {Column::kItem, &share->item},
                                {Column::kRating, &share->rating}}) {
    absl::StatusOr<MappedColumn> m =
        MappedColumn::Open(ShareColumnPath(dir_, id, column), column, id, share->rows, true);
    if (!m.ok()) return m.status();
    *mapped = *std::move(m);
  }
  if (absl::Status s = CheckBelow(share->user, share->user.span<uint32_t>(), manifest_.num_users(),
                                  "user index");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBelow(share->item, share->item.span<uint32_t>(), manifest_.num_items(),
                                  "movie index");
      !s.ok()) {
    return s;
  }
  const absl::Span<const uint8_t> half = share->rating.span<uint8_t>();
  for (size_t r = 0; r < half.size(); ++r) {
    if (half[r] < 1 || half[r] > 10) {
      return BadValue(share->rating, r, absl::StrCat("is ", half[r], " half stars, not 1..10"));
    }
  }
  return shares_.emplace(id, std::move(share)).first->second.get();
}

absl::StatusOr<MappedColumn> ShareSet::MapTransient(Share& share, Column column) {
  const bool time = column == Column::kTime;
  bool& checked = time ? share.time_checked : share.pos_checked;
  absl::StatusOr<MappedColumn> m = MappedColumn::Open(ShareColumnPath(dir_, share.id, column),
                                                      column, share.id, share.rows, !checked);
  if (!m.ok() || checked) return m;
  const ShareInfo& info = manifest_.shares(static_cast<int>(share.id));
  if (time) {
    const absl::Span<const int64_t> t = m->span<int64_t>();
    for (size_t r = 0; r < t.size(); ++r) {
      if (t[r] < info.min_time() || t[r] > info.max_time()) {
        return BadValue(*m, r,
                        absl::StrCat("is ", t[r], ", outside the share's [", info.min_time(), ", ",
                                     info.max_time(), "]"));
      }
    }
  } else {
    const absl::Span<const uint32_t> p = m->span<uint32_t>();
    for (size_t r = 0; r < p.size(); ++r) {
      if (p[r] >= manifest_.num_ratings() || (r > 0 && p[r] <= p[r - 1])) {
        return BadValue(*m, r,
                        absl::StrCat("is position ", p[r], ", out of order or past ",
                                     manifest_.num_ratings(), " ratings"));
      }
    }
  }
  checked = true;
  return m;
}

absl::Status ShareSet::CountTimes(absl::Span<const uint32_t> shares,
                                  absl::Span<const TimeBuckets> ranges,
                                  absl::Span<uint64_t> counts) {
  for (const uint32_t id : shares) {
    absl::StatusOr<Share*> share = Load(id);
    if (!share.ok()) return share.status();
    absl::StatusOr<MappedColumn> times = MapTransient(**share, Column::kTime);
    if (!times.ok()) return times.status();
    CountIntoBuckets(times->span<int64_t>(), ranges, counts);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ShareSummary>> ShareSet::Split(absl::Span<const uint32_t> shares,
                                                          const SplitSpec& spec) {
  std::vector<ShareSummary> out;
  for (const uint32_t id : shares) {
    absl::StatusOr<Share*> share = Load(id);
    if (!share.ok()) return share.status();
    if (absl::Status s = SplitShare(**share, spec); !s.ok()) return s;
    out.push_back((*share)->summary);
  }
  return out;
}

absl::Status ShareSet::SplitShare(Share& share, const SplitSpec& spec) {
  if (share.split && share.spec == spec) return absl::OkStatus();
  if (absl::Status s = CheckSplitArguments(spec.split, spec.test_fraction); !s.ok()) return s;
  const uint64_t n = share.rows;
  const absl::Span<const uint32_t> user = share.user.span<uint32_t>();
  const absl::Span<const uint32_t> item = share.item.span<uint32_t>();
  share.test_bits.assign((n + 63) / 64, 0);
  auto mark = [&share](uint64_t r) { share.test_bits[r >> 6] |= uint64_t{1} << (r & 63); };
  if (spec.split == RANDOM) {
    const absl::Span<const int64_t> users = user_ids_.span<int64_t>();
    const absl::Span<const int64_t> items = item_ids_.span<int64_t>();
    for (uint64_t r = 0; r < n; ++r) {
      if (RandomSplitIsTest(spec.seed, users[user[r]], items[item[r]], spec.test_fraction)) {
        mark(r);
      }
    }
  } else {
    absl::StatusOr<MappedColumn> mapped = MapTransient(share, Column::kTime);
    if (!mapped.ok()) return mapped.status();
    const absl::Span<const int64_t> time = mapped->span<int64_t>();
    if (spec.split == SEED_TIME) {
      for (uint64_t r = 0; r < n; ++r) {
        if (!(static_cast<double>(time[r]) < spec.threshold)) mark(r);
      }
    } else {
      // USER_TIME: each user's rows by time, ties in file order (which is row order here).
      std::vector<uint32_t> order(n);
      std::iota(order.begin(), order.end(), 0u);
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return user[a] != user[b] ? user[a] < user[b] : time[a] < time[b];
      });
      for (size_t begin = 0, end; begin < n; begin = end) {
        for (end = begin + 1; end < n && user[order[end]] == user[order[begin]];) ++end;
        for (size_t k = begin + UserTrainCount(spec.test_fraction, end - begin); k < end; ++k) {
          mark(order[k]);
        }
      }
    }
  }
  ShareSummary summary{share.id, 0, 0, 0};
  const absl::Span<const uint8_t> half = share.rating.span<uint8_t>();
  for (uint64_t r = 0; r < n; ++r) {
    if (share.is_test(r)) {
      ++summary.test;
    } else {
      ++summary.train;
      summary.train_half_stars += half[r];
    }
  }
  share.summary = summary;
  share.spec = spec;
  share.split = true;
  return absl::OkStatus();
}

absl::Status ShareSet::AddItemTrainStats(absl::Span<const uint32_t> shares, ItemTrainStats* stats) {
  if (stats->size() != manifest_.num_items()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item statistics for ", stats->size(), " items; ", dir_, " has ", manifest_.num_items()));
  }
  const absl::Span<const int64_t> user_ids = user_ids_.span<int64_t>();
  for (const uint32_t id : shares) {
    absl::StatusOr<Share*> loaded = Load(id);
    if (!loaded.ok()) return loaded.status();
    Share& share = **loaded;
    if (!share.split) {
      return absl::FailedPreconditionError(
          absl::StrCat("item statistics of share ", id, " of ", dir_, " before its split"));
    }
    absl::StatusOr<MappedColumn> time = MapTransient(share, Column::kTime);
    if (!time.ok()) return time.status();
    absl::StatusOr<MappedColumn> pos = MapTransient(share, Column::kPos);
    if (!pos.ok()) return pos.status();
    const absl::Span<const uint32_t> user = share.user.span<uint32_t>();
    const absl::Span<const uint32_t> item = share.item.span<uint32_t>();
    const absl::Span<const int64_t> times = time->span<int64_t>();
    const absl::Span<const uint32_t> positions = pos->span<uint32_t>();
    for (uint64_t r = 0; r < share.rows; ++r) {
      if (!share.is_test(r)) {
        stats->Add(item[r], 1, FirstRating{user_ids[user[r]], times[r], positions[r]});
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ShareSet::Hold(absl::Span<const uint32_t> shares, const SplitSpec& spec) {
  std::vector<uint32_t> wanted(shares.begin(), shares.end());
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  if (wanted == held_ && spec == held_spec_ && !held_.empty()) return absl::OkStatus();
  for (const uint32_t id : wanted) {
    absl::StatusOr<Share*> share = Load(id);
    if (!share.ok()) return share.status();
    if (absl::Status s = SplitShare(**share, spec); !s.ok()) return s;
  }
  for (auto it = shares_.begin(); it != shares_.end();) {  // a share not held is unmapped
    it = std::binary_search(wanted.begin(), wanted.end(), it->first) ? std::next(it)
                                                                     : shares_.erase(it);
  }
  held_ = std::move(wanted);
  held_spec_ = spec;
  table_.Clear();
  for (const uint32_t id : held_) {
    Share& s = *shares_[id];
    s.first_row = table_.AddRun(s.user.span<uint32_t>().data(), s.item.span<uint32_t>().data(),
                                s.rating.span<uint8_t>().data(), s.rows);
  }
  return OrderRows();
}

// A merge of the held shares by file position: each share's rows are in file order already.
absl::Status ShareSet::OrderRows() {
  std::vector<MappedColumn> pos(held_.size());
  std::vector<const Share*> held(held_.size());
  uint64_t train = 0, test = 0;
  for (size_t k = 0; k < held_.size(); ++k) {
    Share& share = *shares_[held_[k]];
    held[k] = &share;
    absl::StatusOr<MappedColumn> m = MapTransient(share, Column::kPos);
    if (!m.ok()) return m.status();
    pos[k] = *std::move(m);
    pos[k].Release(share.rows);  // the check read all of it; the merge reads it again in order
    train += share.summary.train;
    test += share.summary.test;
  }
  train_rows_.clear();
  test_rows_.clear();
  train_rows_.reserve(train);
  test_rows_.reserve(test);
  struct Head {
    uint32_t pos;
    uint32_t k;
    uint64_t r;
    bool operator>(const Head& o) const { return pos > o.pos; }
  };
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;
  for (size_t k = 0; k < held_.size(); ++k) {
    if (pos[k].count() > 0) heads.push({pos[k].span<uint32_t>()[0], static_cast<uint32_t>(k), 0});
  }
  while (!heads.empty()) {
    const Head h = heads.top();
    heads.pop();
    const Share& share = *held[h.k];
    (share.is_test(h.r) ? test_rows_ : train_rows_)
        .push_back(share.first_row + static_cast<uint32_t>(h.r));
    if (h.r + 1 < share.rows) heads.push({pos[h.k].span<uint32_t>()[h.r + 1], h.k, h.r + 1});
    if ((h.r + 1) % kReleaseEvery == 0) pos[h.k].Release(h.r + 1);
  }
  return absl::OkStatus();
}

}  // namespace psrec

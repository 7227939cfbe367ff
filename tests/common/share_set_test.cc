// ShareSet, and the property the whole design rests on: however the shares are dealt out, the
// holders together split the data exactly as one reader of the whole file does.
#include "common/share_set.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/job_data.h"
#include "common/prepare.h"
#include "common/rng.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using testing_util::FreshDir;

// (user id, movie id, rating): a rating, wherever it is held (pairs are unique).
using Key = std::tuple<int64_t, int64_t, float>;

// Ratings in no order of user, with timestamps that tie within and across users, and unique
// (user, movie) pairs; CRLF line ends when `crlf`.
fs::path WriteShuffledRatings(const std::string& name, uint64_t seed, bool crlf) {
  const fs::path dir = FreshDir(name);
  Rng rng(seed);
  std::vector<std::string> lines;
  const int users = 5 + static_cast<int>(rng.Below(40));
  for (int u = 0; u < users; ++u) {
    const int64_t user = 1 + static_cast<int64_t>(rng.Below(100000));
    std::set<int64_t> movies;
    const int n = 1 + static_cast<int>(rng.Below(30));
    while (static_cast<int>(movies.size()) < n) movies.insert(1 + rng.Below(200));
    for (const int64_t movie : movies) {
      lines.push_back(absl::StrCat(user, ",", movie, ",", 0.5 * (1 + rng.Below(10)), ",",
                                   1000 + rng.Below(50)));
    }
  }
  Shuffle(&lines, seed + 1);
  std::ofstream out(dir / "ratings.csv", std::ios::binary);
  out << "userId,movieId,rating,timestamp" << (crlf ? "\r\n" : "\n");
  for (const std::string& line : lines) out << line << (crlf ? "\r\n" : "\n");
  return dir;
}

std::multiset<Key> KeysOf(const Dataset& data, const std::vector<uint32_t>& rows) {
  std::multiset<Key> keys;
  for (const uint32_t r : rows) {
    const Rating& x = data.ratings[r];
    keys.insert({data.user_ids[x.user], data.item_ids[x.item], x.rating});
  }
  return keys;
}

std::vector<Key> KeysOf(const RatingTable& table, absl::Span<const uint32_t> rows) {
  std::vector<Key> keys;
  for (const uint32_t r : rows) {
    const RatingTable::Row x = table.Get(r);
    keys.emplace_back(table.user_id(x.user), table.item_id(x.item), x.rating);
  }
  return keys;
}

// `k` holders, each with the shares a seeded deal gives it (the coordinator's AssignShares is one
// such deal), find SEED_TIME's threshold together and split; returns each side's ratings, all
// holders together.
std::pair<std::multiset<Key>, std::multiset<Key>> SplitAcross(const std::string& dir, size_t k,
                                                              SplitSpec spec) {
  std::vector<std::unique_ptr<ShareSet>> holders;
  for (size_t i = 0; i < k; ++i) holders.push_back(*ShareSet::Open(dir));
  const SharesManifest& m = holders[0]->manifest();
  std::vector<std::vector<uint32_t>> parts(k);
  Rng deal(spec.seed + k);
  for (uint32_t share = 0; share < m.num_shares(); ++share) parts[deal.Below(k)].push_back(share);
  if (spec.split == SEED_TIME) {
    PercentileSearch search = SeedTimeSearch(m, spec.test_fraction);
    while (!search.done()) {
      const std::vector<TimeBuckets> query = search.Query();
      std::vector<uint64_t> counts(BucketCount(query));
      for (size_t i = 0; i < k; ++i) {
        EXPECT_TRUE(holders[i]->CountTimes(parts[i], query, absl::MakeSpan(counts)).ok());
      }
      EXPECT_TRUE(search.Add(counts).ok());
    }
    spec.threshold = search.value();
  }
  std::pair<std::multiset<Key>, std::multiset<Key>> sides;
  for (size_t i = 0; i < k; ++i) {
    EXPECT_TRUE(holders[i]->Hold(parts[i], spec).ok());
    for (const Key& key : KeysOf(holders[i]->table(), holders[i]->train_rows())) {
      sides.first.insert(key);
    }
    for (const Key& key : KeysOf(holders[i]->table(), holders[i]->test_rows())) {
      sides.second.insert(key);
    }
  }
  return sides;
}

// Issue 9's property: the split over 1, 2 and 3 workers equals the whole-data split, for every
// split, on many small generated files.
TEST(ShareSetTest, ASplitOverAnyNumberOfHoldersEqualsTheWholeDataSplit) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    const fs::path data =
        WriteShuffledRatings(absl::StrCat("property_", seed), seed, seed % 3 == 0);
    PrepareOptions options;
    options.num_shares = 1 + static_cast<uint32_t>(seed % 8);
    const std::string dir = (data / "shares").string();
    ASSERT_TRUE(PrepareShares(data.string(), dir, options).ok());
    absl::StatusOr<Dataset> whole = ReadMovieLens(data.string());
    ASSERT_TRUE(whole.ok()) << whole.status();
    for (const Split split : {SEED_TIME, USER_TIME, RANDOM}) {
      for (const double fraction : {0.2, 0.5, 0.07}) {
        absl::StatusOr<SplitRows> want = SplitDataset(*whole, split, fraction, seed);
        ASSERT_TRUE(want.ok());
        for (size_t k : {1, 2, 3}) {
          const auto [train, test] = SplitAcross(dir, k, SplitSpec{split, fraction, seed, 0});
          EXPECT_EQ(train, KeysOf(*whole, want->train))
              << "seed " << seed << " " << Split_Name(split) << " " << fraction << " k " << k;
          EXPECT_EQ(test, KeysOf(*whole, want->test))
              << "seed " << seed << " " << Split_Name(split) << " " << fraction << " k " << k;
        }
      }
    }
  }
}

// One holder of every share visits the ratings in the order of the file, as the whole-file
// reader does: the in-process trainer is one worker holding every share.
TEST(ShareSetTest, HoldingEveryShareListsTheRowsInFileOrder) {
  const fs::path data = WriteShuffledRatings("file_order", 99, false);
  const std::string dir = (data / "shares").string();
  ASSERT_TRUE(PrepareShares(data.string(), dir, PrepareOptions{5}).ok());
  absl::StatusOr<Dataset> whole = ReadMovieLens(data.string());
  ASSERT_TRUE(whole.ok());
  JobConfig config;
  config.set_split(USER_TIME);
  config.set_test_fraction(0.2);
  config.set_seed(1);
  absl::StatusOr<std::unique_ptr<ShareSet>> set = HoldAllShares(dir, &config);
  ASSERT_TRUE(set.ok()) << set.status();
  absl::StatusOr<SplitRows> want = SplitDataset(*whole, USER_TIME, 0.2, 1);
  ASSERT_TRUE(want.ok());
  auto in_order = [&](const std::vector<uint32_t>& rows) {
    std::vector<Key> keys;
    for (const uint32_t r : rows) {
      const Rating& x = whole->ratings[r];
      keys.emplace_back(whole->user_ids[x.user], whole->item_ids[x.item], x.rating);
    }
    return keys;
  };
  EXPECT_EQ(KeysOf((*set)->table(), (*set)->train_rows()), in_order(want->train));
  EXPECT_EQ(KeysOf((*set)->table(), (*set)->test_rows()), in_order(want->test));
  // The mean training rating, as the whole-file reader computes it.
  double sum = 0;
  for (const uint32_t r : want->train) sum += whole->ratings[r].rating;
  EXPECT_EQ(config.rating_offset(), static_cast<float>(sum / want->train.size()));
}

TEST(ShareSetTest, HoldingOtherSharesDropsTheOldOnesAndRenumbers) {
  const fs::path data = WriteShuffledRatings("rehold", 7, false);
  const std::string dir = (data / "shares").string();
  ASSERT_TRUE(PrepareShares(data.string(), dir, PrepareOptions{4}).ok());
  absl::StatusOr<std::unique_ptr<ShareSet>> set = ShareSet::Open(dir);
  ASSERT_TRUE(set.ok());
  const SplitSpec spec{RANDOM, 0.2, 3, 0};
  ASSERT_TRUE((*set)->Hold({0, 2}, spec).ok());
  const uint64_t rows02 = (*set)->manifest().shares(0).rows() + (*set)->manifest().shares(2).rows();
  EXPECT_EQ((*set)->train_rows().size() + (*set)->test_rows().size(), rows02);
  ASSERT_TRUE((*set)->Hold({3, 1, 3}, spec).ok());  // any order, repeats ignored
  EXPECT_EQ((*set)->held(), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ((*set)->table().rows(),
            (*set)->manifest().shares(1).rows() + (*set)->manifest().shares(3).rows());
  EXPECT_FALSE((*set)->Hold({9}, spec).ok());  // no such share
}

// A share damaged after it was prepared is refused by whoever maps it, naming the file: a flipped
// bit fails the checksum, and values the manifest rules out are named even under a good checksum.
TEST(ShareSetTest, ADamagedShareIsRefusedNamingTheFile) {
  const fs::path data = WriteShuffledRatings("damaged_share", 11, false);
  const std::string dir = (data / "shares").string();
  ASSERT_TRUE(PrepareShares(data.string(), dir, PrepareOptions{2}).ok());
  const SplitSpec spec{USER_TIME, 0.2, 1, 0};
  const std::string item = ShareColumnPath(dir, 1, Column::kItem);
  std::string bytes = testing_util::ReadFile(item);
  bytes[bytes.size() - 2] ^= 0x10;
  std::ofstream(item, std::ios::binary) << bytes;
  absl::StatusOr<std::unique_ptr<ShareSet>> set = ShareSet::Open(dir);
  ASSERT_TRUE(set.ok());
  absl::Status held = (*set)->Hold({0, 1}, spec);
  EXPECT_EQ(held.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(held.message().find(item + ": checksum mismatch"), std::string::npos) << held;
  // A well-formed column whose values are out of range: a movie index past the table.
  const uint64_t rows = (*set)->manifest().shares(1).rows();
  absl::StatusOr<ColumnWriter> w = ColumnWriter::Create(item, Column::kItem, 1);
  ASSERT_TRUE(w.ok());
  for (uint64_t r = 0; r < rows; ++r) w->Append<uint32_t>(r == 0 ? 1u << 30 : 0u);
  ASSERT_TRUE(w->Finish().ok());
  held = (*ShareSet::Open(dir))->Hold({1}, spec);
  EXPECT_NE(held.message().find(item + ": element 0 is movie index 1073741824"), std::string::npos)
      << held;
}

}  // namespace
}  // namespace psrec

#include "common/prepare.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/share_files.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using testing_util::FreshDir;
using testing_util::ReadFile;

::testing::AssertionResult HasSubstr(const absl::Status& status, const std::string& needle) {
  if (std::string(status.message()).find(needle) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "'" << status.message() << "' lacks '" << needle << "'";
}

// users 7, 3, 7, 9 rate movies 50, 20, 20, 50.
constexpr char kRatings[] =
    "userId,movieId,rating,timestamp\n7,50,4.0,100\n3,20,3.5,90\n7,20,5,110\n9,50,0.5,80\n";

fs::path DataDir(const std::string& name, const std::string& ratings = kRatings) {
  const fs::path dir = FreshDir(name);
  std::ofstream(dir / "ratings.csv") << ratings;
  return dir;
}

PrepareOptions Shares(uint32_t n) {
  PrepareOptions options;
  options.num_shares = n;
  return options;
}

TEST(PrepareSharesTest, EachUsersRatingsGoToItsShareInFileOrder) {
  const fs::path data = DataDir("prepare_basic");
  const std::string dir = (data / "shares").string();
  absl::StatusOr<SharesManifest> m = PrepareShares(data.string(), dir, Shares(3));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_ratings(), 4u);
  EXPECT_EQ(m->num_users(), 3u);
  EXPECT_EQ(m->num_items(), 2u);
  EXPECT_EQ(m->num_shares(), 3u);
  EXPECT_EQ(m->source().path(), (data / "ratings.csv").string());
  ASSERT_TRUE(ReadSharesManifest(dir).ok());
  // Original ids by first appearance.
  absl::StatusOr<MappedColumn> users =
      MappedColumn::Open(dir + "/users.ids", Column::kIds, kNoShare, 3, true);
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(std::vector<int64_t>(users->span<int64_t>().begin(), users->span<int64_t>().end()),
            (std::vector<int64_t>{7, 3, 9}));
  // Every rating once, in its user's share, in file order within the share.
  std::vector<std::pair<uint32_t, int64_t>> seen;  // (position, timestamp)
  for (uint32_t share = 0; share < 3; ++share) {
    const uint64_t rows = m->shares(share).rows();
    auto open = [&](Column c) {
      return MappedColumn::Open(ShareColumnPath(dir, share, c), c, share, rows, true);
    };
    absl::StatusOr<MappedColumn> user = open(Column::kUser), pos = open(Column::kPos),
                                 time = open(Column::kTime), half = open(Column::kRating);
    ASSERT_TRUE(user.ok() && pos.ok() && time.ok() && half.ok());
    for (uint64_t r = 0; r < rows; ++r) {
      const int64_t user_id = users->span<int64_t>()[user->span<uint32_t>()[r]];
      EXPECT_EQ(ShareOfUser(user_id, 3), share);
      if (r > 0) {
        EXPECT_GT(pos->span<uint32_t>()[r], pos->span<uint32_t>()[r - 1]);
      }
      seen.emplace_back(pos->span<uint32_t>()[r], time->span<int64_t>()[r]);
    }
  }
  std::sort(seen.begin(), seen.end());
  ASSERT_EQ(seen.size(), 4u);
  const std::vector<int64_t> times = {100, 90, 110, 80};
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(seen[i].first, i);
    EXPECT_EQ(seen[i].second, times[i]);
  }
}

TEST(EnsurePreparedTest, ReusesFreshSharesAndPreparesStaleOnesAgain) {
  const fs::path data = DataDir("prepare_stale");
  const std::string dir = SharesDirFor(data.string(), "");
  EXPECT_EQ(dir, (data / "psrec-shares").string());  // a writable data directory holds them
  absl::StatusOr<SharesManifest> first = EnsurePrepared(data.string(), dir, PrepareOptions());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->num_shares(), kDefaultShares);
  const std::string manifest = ReadFile(fs::path(dir) / "MANIFEST");
  // Fresh: used as they are, whatever their count, unless a count is asked for.
  ASSERT_TRUE(EnsurePrepared(data.string(), dir, PrepareOptions()).ok());
  EXPECT_EQ(ReadFile(fs::path(dir) / "MANIFEST"), manifest);
  absl::StatusOr<SharesManifest> four = EnsurePrepared(data.string(), dir, Shares(4));
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->num_shares(), 4u);
  // The ratings file changes: prepared again.
  std::ofstream(data / "ratings.csv", std::ios::app) << "11,20,2,70\n";
  absl::StatusOr<SharesManifest> again = EnsurePrepared(data.string(), dir, PrepareOptions());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->num_ratings(), 5u);
  EXPECT_FALSE(fs::exists(dir + ".tmp-" + std::to_string(getpid())));
}

TEST(EnsurePreparedTest, TellsEveryKindOfStaleness) {
  SharesSource a;
  a.set_path("d/ratings.csv");
  a.set_layout("ratings.csv");
  a.set_size(10);
  a.set_mtime_ns(5);
  SharesSource b = a;
  EXPECT_EQ(StaleReason(a, b), "");
  b.set_tail_crc32(1);
  EXPECT_EQ(StaleReason(a, b), "d/ratings.csv has other contents");
  b.set_mtime_ns(6);
  EXPECT_EQ(StaleReason(a, b), "d/ratings.csv was modified since");
  b.set_size(12);
  EXPECT_EQ(StaleReason(a, b), "d/ratings.csv is 12 bytes, was 10");
  b.set_path("e/ratings.csv");
  EXPECT_EQ(StaleReason(a, b), "made from d/ratings.csv, not e/ratings.csv");
}

TEST(EnsurePreparedTest, ADamagedManifestIsRefusedNamingIt) {
  const fs::path data = DataDir("prepare_damaged");
  const std::string dir = (data / "shares").string();
  ASSERT_TRUE(PrepareShares(data.string(), dir, Shares(2)).ok());
  std::ofstream(fs::path(dir) / "MANIFEST") << "num_shares: 2\nbogus {";
  absl::StatusOr<SharesManifest> m = EnsurePrepared(data.string(), dir, PrepareOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(HasSubstr(m.status(), dir + "/MANIFEST: not a text-format psrec.SharesManifest"));
  // A manifest that parses but does not add up.
  std::ofstream(fs::path(dir) / "MANIFEST") << "num_shares: 2\nnum_ratings: 4\nshares { rows: 4 }";
  EXPECT_TRUE(HasSubstr(ReadSharesManifest(dir).status(), "lists 1 of 2 shares"));
}

TEST(PrepareSharesTest, RefusesBadRatingsNamingFileAndLine) {
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"userId,movieId,rating,timestamp\n1,2,4,5\n1,3,3.7,6\n",
            "ratings.csv:3: rating 3.7 is not a whole number of half stars"},
           {"userId,movieId,rating,timestamp\n1,2,4,5\n1,3,9,6\n",
            "ratings.csv:3: rating 9 is outside [0.5, 5]"},
           {"userId,movieId,rating,timestamp\n", "ratings.csv: no ratings"}}) {
    const fs::path data = DataDir("prepare_bad", text);
    const std::string dir = (data / "shares").string();
    absl::StatusOr<SharesManifest> m = PrepareShares(data.string(), dir, Shares(2));
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_TRUE(HasSubstr(m.status(), message));
    // Nothing half-made is left behind.
    EXPECT_FALSE(fs::exists(dir));
    EXPECT_FALSE(fs::exists(dir + ".tmp-" + std::to_string(getpid())));
  }
}

TEST(SharesDirForTest, AFlagWinsAndAReadOnlyDirectoryIsLeftAlone) {
  const fs::path data = DataDir("prepare_readonly");
  EXPECT_EQ(SharesDirFor(data.string(), "/x/y"), "/x/y");
  ASSERT_EQ(chmod(data.c_str(), 0555), 0);
  const char* home = std::getenv("HOME");
  const std::string saved = home == nullptr ? "" : home;
  setenv("HOME", "/home/someone", 1);
  const std::string dir = SharesDirFor(data.string(), "");
  setenv("HOME", saved.c_str(), 1);
  chmod(data.c_str(), 0755);
  EXPECT_EQ(dir.rfind("/home/someone/.cache/psrec/shares/prepare_readonly-", 0), 0u) << dir;
  EXPECT_EQ(SharesDirFor(data.string(), ""), (data / "psrec-shares").string());
}

}  // namespace
}  // namespace psrec

#include "common/share_files.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/rng.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using testing_util::FreshDir;
using testing_util::ReadFile;

::testing::AssertionResult Refused(const absl::StatusOr<MappedColumn>& column,
                                   const std::string& needle,
                                   absl::StatusCode code = absl::StatusCode::kDataLoss) {
  if (column.ok()) return ::testing::AssertionFailure() << "accepted";
  const std::string message(column.status().message());
  if (column.status().code() != code || message.find(needle) == std::string::npos) {
    return ::testing::AssertionFailure() << column.status();
  }
  return ::testing::AssertionSuccess();
}

std::string WriteTimes(const fs::path& dir, const std::vector<int64_t>& values) {
  const std::string path = ShareColumnPath(dir.string(), 3, Column::kTime);
  absl::StatusOr<ColumnWriter> w = ColumnWriter::Create(path, Column::kTime, 3);
  EXPECT_TRUE(w.ok()) << w.status();
  // Both ways of appending: one at a time, and a block larger than the writer's buffer.
  w->Append(values[0]);
  w->Append(values.data() + 1, values.size() - 1);
  EXPECT_TRUE(w->Finish().ok());
  return path;
}

// Part of the file format: a column's files end in its name, and its header says both.
TEST(ShareFilesTest, EachColumnsNameAndElementSize) {
  std::vector<std::string> names;
  std::vector<size_t> sizes;
  for (Column column :
       {Column::kUser, Column::kItem, Column::kRating, Column::kTime, Column::kPos, Column::kIds}) {
    names.emplace_back(ColumnName(column));
    sizes.push_back(ColumnElementSize(column));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"user", "item", "rating", "time", "pos", "ids"}));
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 1, 8, 4, 8}));
}

TEST(ShareFilesTest, AColumnRoundTrips) {
  const fs::path dir = FreshDir("columns");
  std::vector<int64_t> values(100000);
  Rng rng(5);
  for (int64_t& v : values) v = static_cast<int64_t>(rng.Next());
  const std::string path = WriteTimes(dir, values);
  EXPECT_EQ(path, (dir / "share-00003.time").string());
  absl::StatusOr<MappedColumn> column =
      MappedColumn::Open(path, Column::kTime, 3, values.size(), true);
  ASSERT_TRUE(column.ok()) << column.status();
  const absl::Span<const int64_t> read = column->span<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(read.begin(), read.end()), values);
  column->Release(values.size());  // drops pages; the data is still there
  EXPECT_EQ(column->span<int64_t>()[99999], values[99999]);
  // Empty columns too.
  const std::string empty = ShareColumnPath(dir.string(), 0, Column::kRating);
  absl::StatusOr<ColumnWriter> w = ColumnWriter::Create(empty, Column::kRating, 0);
  ASSERT_TRUE(w.ok() && w->Finish().ok());
  EXPECT_TRUE(MappedColumn::Open(empty, Column::kRating, 0, 0, true).ok());
}

// Every damage a file can take is refused, naming the file: missing, truncated, grown, a flipped
// bit anywhere, another column, share or count than the manifest says.
TEST(ShareFilesTest, DamageIsRefusedNamingTheFile) {
  const fs::path dir = FreshDir("damaged_columns");
  const std::vector<int64_t> values = {5, 6, 7, 8, 9};
  const std::string path = WriteTimes(dir, values);
  const std::string bytes = ReadFile(path);
  auto open = [&](Column c = Column::kTime, uint32_t share = 3, uint64_t count = 5) {
    return MappedColumn::Open(path, c, share, count, true);
  };
  EXPECT_TRUE(open().ok());
  EXPECT_TRUE(Refused(open(Column::kPos), path + ": 104 bytes, but 5 pos elements take 84"));
  EXPECT_TRUE(Refused(open(Column::kTime, 4), path + ": holds column 'time' of share 3"));
  EXPECT_TRUE(Refused(open(Column::kTime, 3, 4), path + ": 104 bytes, but 4 time elements"));
  EXPECT_TRUE(Refused(MappedColumn::Open(path + "x", Column::kTime, 3, 5, true), path + "x",
                      absl::StatusCode::kNotFound));
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 1);
  EXPECT_TRUE(Refused(open(), path + ": 103 bytes"));
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ (1 << (at % 8)));
    std::ofstream(path, std::ios::binary) << flipped;
    EXPECT_TRUE(Refused(open(), path)) << "byte " << at;
  }
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_TRUE(open().ok());
}

}  // namespace
}  // namespace psrec

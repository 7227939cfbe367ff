#include "ps/checkpoint.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ps/sharded_table.h"
#include "tests/ps/checkpoint_test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using namespace checkpoint_testing;  // NOLINT(google-build-using-namespace): the tests' own helpers
using ::testing::HasSubstr;

absl::Status Write(const std::string& dir, const JobConfig& config,
                   const std::vector<Shard>& shards) {
  CheckpointManifest manifest = Manifest(config, shards.size());
  for (uint32_t s = 0; s < shards.size(); ++s) {
    std::vector<const ShardedTable*> tables;
    for (const auto& table : shards[s]) tables.push_back(table.get());
    absl::StatusOr<CheckpointFile> file = WriteShardCheckpoint(dir, s, shards.size(), tables);
    if (!file.ok()) return file.status();
    *manifest.add_files() = *file;
  }
  return WriteManifest(dir, manifest);
}

// Loads `dir` into `shards`, each keeping the rows it owns.
void Load(const std::string& dir, const JobConfig& config, std::vector<Shard>& shards) {
  for (uint32_t s = 0; s < shards.size(); ++s) {
    const uint32_t n = shards.size();
    absl::Status status = LoadCheckpoint(
        dir, config, [&](uint32_t table, uint64_t key) { return ShardOf(table, key, n) == s; },
        [&](uint32_t table, uint64_t key, uint32_t step, absl::Span<const float> values,
            absl::Span<const float> state) {
          shards[s][table]->InsertRow(key, step, values, state);  // table ids are positions here
        });
    ASSERT_TRUE(status.ok()) << status;
  }
}

class CheckpointTest : public CheckpointDirTest {
 protected:
  std::string File(uint32_t shard) const {
    return absl::StrCat(dir_, "/shard-0000", shard, "-of-00002.rows");
  }

  // Loads dir_ for `config`, counting the rows it hands out in `*rows`.
  absl::Status LoadCounting(const JobConfig& config, int* rows) const {
    *rows = 0;
    return LoadCheckpoint(dir_, config, {},
                          [rows](uint32_t, uint64_t, uint32_t, auto, auto) { ++*rows; });
  }

  // Asserts that loading `dir_` fails with a message naming `file` and containing `what`, and
  // that no row was handed out.
  void ExpectRefused(const JobConfig& config, const std::string& file, const std::string& what) {
    int rows = 0;
    const absl::Status status = LoadCounting(config, &rows);
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(status.message(), HasSubstr(file));
    EXPECT_THAT(status.message(), HasSubstr(what));
    EXPECT_EQ(rows, 0);
  }

  // A trained two-shard checkpoint at dir_; returns its shards.
  std::vector<Shard> WriteTrained() {
    std::vector<Shard> shards = MakeShards(config_, 2);
    Rng rng(5);
    Train(shards, rng);
    EXPECT_TRUE(Write(dir_, config_, shards).ok());
    return shards;
  }

  const JobConfig config_ = Config();
};

TEST_F(CheckpointTest, RoundTripRestoresValuesStepsAndOptimizerState) {
  std::vector<Shard> original = WriteTrained();
  std::vector<Shard> restored = MakeShards(config_, 2);
  Load(dir_, config_, restored);
  for (uint32_t s = 0; s < 2; ++s) {
    EXPECT_EQ(CountRows(original[s]), CountRows(restored[s])) << "shard " << s;
    EXPECT_GT(CountRows(original[s]), 0u);
  }
  ExpectSameRows(original, restored);
  // The same push on both sides gives the same rows only if Adam's moments and step counts came
  // back too.
  Rng a(9), b(9);
  Train(original, a);
  Train(restored, b);
  ExpectSameRows(original, restored);
}

TEST_F(CheckpointTest, ManifestEntriesDescribeTheFiles) {
  const std::vector<Shard> shards = WriteTrained();
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(dir_);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->epochs_done(), 3u);
  EXPECT_EQ(manifest->clock(), 123u);
  ASSERT_EQ(manifest->files_size(), 2);
  for (uint32_t s = 0; s < 2; ++s) {
    const CheckpointFile& file = manifest->files(s);
    EXPECT_EQ(dir_ + "/" + file.name(), File(s));
    EXPECT_EQ(file.shard(), s);
    const std::string bytes = ReadBytes(File(s));
    EXPECT_EQ(file.bytes(), bytes.size());
    EXPECT_EQ(file.crc32(), Crc(bytes));
    EXPECT_EQ(file.rows(), CountRows(shards[s]));
  }
  EXPECT_FALSE(fs::exists(File(0) + ".tmp"));
  EXPECT_FALSE(fs::exists(dir_ + "/MANIFEST.tmp"));
}

TEST_F(CheckpointTest, WriteRefusesAShardOutOfRangeOrATableTwice) {
  const std::vector<Shard> shards = MakeShards(config_, 1);
  const ShardedTable* table = shards[0][0].get();
  absl::StatusOr<CheckpointFile> file = WriteShardCheckpoint(dir_, 2, 2, {table});
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("shard 2 is not below num_shards 2"));
  file = WriteShardCheckpoint(dir_, 0, 1, {table, nullptr, table});
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.status().message(), HasSubstr("table 0 is given twice"));
  EXPECT_FALSE(fs::exists(dir_));
}

// Rows reach the restored tables in another order than the original pushes created them; the
// files must still be byte for byte the same.
TEST_F(CheckpointTest, SameRowsWriteIdenticalBytes) {
  WriteTrained();
  std::vector<Shard> restored = MakeShards(config_, 2);
  Load(dir_, config_, restored);
  const std::string copy = root_ + "/copy";
  ASSERT_TRUE(Write(copy, config_, restored).ok());
  for (uint32_t s = 0; s < 2; ++s) {
    const std::string name = absl::StrCat("/shard-0000", s, "-of-00002.rows");
    EXPECT_EQ(ReadBytes(dir_ + name), ReadBytes(copy + name)) << name;
  }
}

TEST_F(CheckpointTest, EmptyTablesRoundTrip) {
  std::vector<Shard> shards = MakeShards(config_, 2);
  ASSERT_TRUE(Write(dir_, config_, shards).ok());
  int rows = 0;
  const absl::Status status = LoadCounting(config_, &rows);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(rows, 0);
}

TEST_F(CheckpointTest, ReshardsTwoToThree) {
  const std::vector<Shard> original = WriteTrained();
  std::vector<Shard> three = MakeShards(config_, 3);
  Load(dir_, config_, three);
  uint64_t rows_two = 0, rows_three = 0;
  for (const Shard& shard : original) rows_two += CountRows(shard);
  for (const Shard& shard : three) rows_three += CountRows(shard);
  EXPECT_EQ(rows_two, rows_three);
  ExpectSameRows(original, three);
}

TEST_F(CheckpointTest, ClusterShapeEpochsAndDataDirMayDiffer) {
  WriteTrained();
  const JobConfig job = OnAnotherCluster(config_);
  int rows = 0;
  const absl::Status status = LoadCounting(job, &rows);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_GT(rows, 0);
}

TEST_F(CheckpointTest, RefusesATruncatedFile) {
  WriteTrained();
  std::string bytes = ReadBytes(File(1));
  const size_t size = bytes.size();
  bytes.resize(size - 5);
  WriteBytes(File(1), bytes);
  ExpectRefused(config_, File(1),
                absl::StrCat("size ", size - 5, " but the manifest says ", size, " (truncated?)"));
}

TEST_F(CheckpointTest, RefusesAFlippedByte) {
  WriteTrained();
  std::string bytes = ReadBytes(File(1));
  bytes[bytes.size() / 2] ^= 0x10;
  WriteBytes(File(1), bytes);
  ExpectRefused(config_, File(1), "crc32");
}

TEST_F(CheckpointTest, RefusesAMissingFile) {
  WriteTrained();
  fs::remove(File(1));
  ExpectRefused(config_, File(1), "cannot read shard 1");
}

TEST_F(CheckpointTest, RefusesAMissingManifest) {
  WriteTrained();
  fs::remove(dir_ + "/MANIFEST");
  ExpectRefused(config_, dir_ + "/MANIFEST", "cannot open");
}

TEST_F(CheckpointTest, RefusesAnotherConfig) {
  WriteTrained();
  JobConfig dim = config_;
  dim.set_dim(4);
  FillTableSpecs(&dim);
  ExpectRefused(dim, dir_ + "/MANIFEST", "written by a job with another config");
  ExpectRefused(dim, dir_ + "/MANIFEST", "dim: 3 vs 4");
}

TEST_F(CheckpointTest, RefusesAConfigThatListsATableTwice) {
  WriteTrained();
  JobConfig twice = config_;
  *twice.add_tables() = twice.tables(0);
  CheckpointManifest manifest = *ReadManifest(dir_);
  *manifest.mutable_config() = twice;  // so that the configs agree
  ASSERT_TRUE(WriteManifest(dir_, manifest).ok());
  int rows = 0;
  const absl::Status status = LoadCounting(twice, &rows);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("the job's config lists table 0 twice"));
  EXPECT_EQ(rows, 0);
}

// A rows file that passes its size and crc32 but not the decoder's checks is refused with its path,
// and the good file beside it hands out no row either.
TEST_F(CheckpointTest, RefusesARowsFileTheDecoderRefuses) {
  CheckpointManifest manifest = Manifest(config_, 2);
  RawFile bad = GoodFile(config_, 1);
  bad.tables[1].rows.push_back(bad.tables[1].rows[0]);
  fs::create_directories(dir_);
  for (uint32_t s = 0; s < 2; ++s) {
    const RawFile raw = s == 0 ? GoodFile(config_, 0) : bad;
    const std::string bytes = Encode(raw);
    WriteBytes(File(s), bytes);
    CheckpointFile* file = manifest.add_files();
    file->set_name(fs::path(File(s)).filename().string());
    file->set_shard(s);
    file->set_bytes(bytes.size());
    file->set_crc32(Crc(bytes));
    file->set_rows(CountRows(raw));
  }
  ASSERT_TRUE(WriteManifest(dir_, manifest).ok());
  ExpectRefused(config_, File(1) + ": table 1: key ",
                absl::StrCat(bad.tables[1].rows[0].key, " appears twice"));
}

}  // namespace
}  // namespace psrec

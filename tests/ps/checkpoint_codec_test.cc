#include "ps/checkpoint_codec.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ps/sharded_table.h"
#include "tests/ps/checkpoint_test_util.h"

namespace psrec {
namespace {

using namespace checkpoint_testing;  // NOLINT(google-build-using-namespace): the tests' own helpers
using ::testing::HasSubstr;

TableShapes ShapesOf(const JobConfig& config) {
  TableShapes shapes;
  for (const TableSpec& spec : config.tables()) {
    shapes[spec.id()] = {spec.width(), 2 * spec.width()};  // Adam
  }
  return shapes;
}

// The manifest entry of shard `shard`'s file `bytes` holding `rows` rows.
CheckpointFile Entry(uint32_t shard, const std::string& bytes, uint64_t rows) {
  CheckpointFile entry;
  entry.set_name(absl::StrCat("shard-", shard));
  entry.set_shard(shard);
  entry.set_bytes(bytes.size());
  entry.set_crc32(Crc(bytes));
  entry.set_rows(rows);
  return entry;
}

class CheckpointCodecTest : public ::testing::Test {
 protected:
  absl::StatusOr<DecodedRows> Decode(const RawFile& file, uint32_t shard = 1) const {
    const std::string bytes = Encode(file);
    return DecodedRows::Decode(bytes, Entry(shard, bytes, CountRows(file)), 2, ShapesOf(config_));
  }

  // Expects shard 1's `file` refused with DATA_LOSS for `what`.
  void ExpectRefused(const RawFile& file, const std::string& what) const {
    const absl::StatusOr<DecodedRows> decoded = Decode(file);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
    EXPECT_THAT(decoded.status().message(), HasSubstr(what));
  }

  const JobConfig config_ = Config();
};

std::vector<const ShardedTable*> Pointers(const Shard& shard) {
  std::vector<const ShardedTable*> tables;
  for (const auto& table : shard) tables.push_back(table.get());
  return tables;
}

TEST_F(CheckpointCodecTest, EncodedTablesDecodeToTheSameRows) {
  std::vector<Shard> original = MakeShards(config_, 2);
  Rng rng(5);
  Train(original, rng);
  std::vector<Shard> restored = MakeShards(config_, 2);
  for (uint32_t s = 0; s < 2; ++s) {
    uint64_t rows = 0;
    const std::string bytes = EncodeRows(s, 2, Pointers(original[s]), &rows);
    EXPECT_EQ(rows, CountRows(original[s]));
    absl::StatusOr<DecodedRows> decoded =
        DecodedRows::Decode(bytes, Entry(s, bytes, rows), 2, ShapesOf(config_));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    decoded->ForEachRow({}, [&](uint32_t table, uint64_t key, uint32_t step,
                                absl::Span<const float> values, absl::Span<const float> state) {
      restored[s][table]->InsertRow(key, step, values, state);
    });
    // Rows inserted in another order than the pushes created them encode to the same bytes.
    uint64_t again = 0;
    EXPECT_EQ(EncodeRows(s, 2, Pointers(restored[s]), &again), bytes);
    EXPECT_EQ(again, rows);
  }
  ExpectSameRows(original, restored);
}

TEST_F(CheckpointCodecTest, EmptyTablesEncodeToHeadersOnly) {
  const std::vector<Shard> shards = MakeShards(config_, 1);
  uint64_t rows = 7;
  const std::string bytes = EncodeRows(0, 1, Pointers(shards[0]), &rows);
  EXPECT_EQ(rows, 0u);
  EXPECT_EQ(bytes.size(), size_t{8 + 4 * 4} + config_.tables_size() * size_t{3 * 4 + 8});
}

TEST(Crc32Test, IsZlibsCrc32) {
  EXPECT_EQ(Crc32(""), 0u);
  EXPECT_EQ(Crc32("123456789"), 0xcbf43926u);  // the standard check value
  const std::string bytes(100000, '\x5a');
  EXPECT_EQ(Crc32(bytes), Crc(bytes));
}

TEST_F(CheckpointCodecTest, HandWrittenFilesDecode) {
  absl::StatusOr<DecodedRows> decoded = Decode(GoodFile(config_, 1));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  int rows = 0;
  decoded->ForEachRow({}, [&](uint32_t table, uint64_t key, uint32_t step,
                              absl::Span<const float> values, absl::Span<const float> state) {
    ++rows;
    const uint32_t width = config_.tables(table).width();
    EXPECT_EQ(step, key + 1);
    ASSERT_EQ(values.size(), width);
    ASSERT_EQ(state.size(), 2 * width);
    EXPECT_EQ(values[0], -static_cast<float>(key));
    EXPECT_EQ(state.back(), 0.25f * (3 * width - 1) - key);
  });
  EXPECT_EQ(rows, 2 * config_.tables_size());
}

TEST_F(CheckpointCodecTest, KeepSelectsRows) {
  absl::StatusOr<DecodedRows> decoded = Decode(GoodFile(config_, 1));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  int rows = 0;
  decoded->ForEachRow([](uint32_t table, uint64_t) { return table == kUserBiasTable; },
                      [&](uint32_t table, uint64_t, uint32_t, auto, auto) {
                        EXPECT_EQ(table, kUserBiasTable);
                        ++rows;
                      });
  EXPECT_EQ(rows, 2);
}

TEST_F(CheckpointCodecTest, RefusesAHeaderForAnotherShard) {
  RawFile bad = GoodFile(config_, 1);
  bad.shard = 0;
  ExpectRefused(bad, "the header says shard 0 of 2, but the manifest lists it for shard 1");
}

TEST_F(CheckpointCodecTest, RefusesDuplicateKeys) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables[1].rows.push_back(bad.tables[1].rows[0]);
  ExpectRefused(bad, absl::StrCat("table 1: key ", bad.tables[1].rows[0].key, " appears twice"));
}

TEST_F(CheckpointCodecTest, RefusesAKeyOfAnotherShard) {
  RawFile bad = GoodFile(config_, 1);
  const RawFile other = GoodFile(config_, 0);
  bad.tables[0].rows.push_back(other.tables[0].rows[0]);
  ExpectRefused(
      bad, absl::StrCat("table 0: key ", other.tables[0].rows[0].key, " belongs to shard 0 of 2"));
}

TEST_F(CheckpointCodecTest, RefusesNonFiniteValuesAndState) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables[2].rows[1].floats[0] = std::nanf("");
  ExpectRefused(bad, "nan in its values");
  bad = GoodFile(config_, 1);
  bad.tables[0].rows[0].floats.back() = std::numeric_limits<float>::infinity();
  ExpectRefused(bad, "inf in its optimizer state");
}

TEST_F(CheckpointCodecTest, RefusesTablesThatDoNotMatchTheConfig) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables.pop_back();
  ExpectRefused(bad, "holds 4 tables, the config has 5");
  bad = GoodFile(config_, 1);
  bad.tables[4].id = 9;
  ExpectRefused(bad, "holds table 9, which the config lacks");
  bad = GoodFile(config_, 1);
  bad.tables[4].id = 3;
  ExpectRefused(bad, "holds table 3 twice");
  bad = GoodFile(config_, 1);
  bad.tables[0].width = 4;
  for (RawRow& row : bad.tables[0].rows) row.floats.resize(12);
  ExpectRefused(bad, "table 0 has width 4, the config says 3");
  bad = GoodFile(config_, 1);
  bad.tables[0].state_width = 3;
  for (RawRow& row : bad.tables[0].rows) row.floats.resize(6);
  ExpectRefused(bad, "table 0 has 3 optimizer state floats per row");
}

TEST_F(CheckpointCodecTest, RefusesRowCountsThatDoNotFitTheFile) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables[1].claimed_rows = uint64_t{1} << 61;  // would be exabytes if believed
  ExpectRefused(bad, "table 1 claims 2305843009213693952 rows");
  bad = GoodFile(config_, 1);
  bad.tables[4].claimed_rows = 1;
  ExpectRefused(bad, "follow the last table");
  bad = GoodFile(config_, 1);
  bad.trailer = "x";
  ExpectRefused(bad, "1 bytes follow the last table");
  bad = GoodFile(config_, 1);
  bad.tables[4].claimed_rows = 3;
  ExpectRefused(bad, "table 4 claims 3 rows");
}

TEST_F(CheckpointCodecTest, RefusesABadHeader) {
  RawFile bad = GoodFile(config_, 1);
  bad.magic = "PSRECKPX";
  ExpectRefused(bad, "not a psrec rows file");
  bad = GoodFile(config_, 1);
  bad.version = 7;
  ExpectRefused(bad, "format version 7");
  bad = GoodFile(config_, 1);
  bad.num_shards = 3;
  ExpectRefused(bad, "the header says shard 1 of 3");
  const absl::StatusOr<DecodedRows> short_file =
      DecodedRows::Decode("PSRE", Entry(1, "PSRE", 0), 2, ShapesOf(config_));
  EXPECT_EQ(short_file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(short_file.status().message(), HasSubstr("too short for the header"));
}

TEST_F(CheckpointCodecTest, RefusesARowCountOtherThanTheManifests) {
  const std::string bytes = Encode(GoodFile(config_, 1));
  const CheckpointFile entry = Entry(1, bytes, 2 * config_.tables_size() + 1);
  const absl::StatusOr<DecodedRows> decoded =
      DecodedRows::Decode(bytes, entry, 2, ShapesOf(config_));
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(), HasSubstr("rows, but the manifest says"));
}

// Random damage, as a bug in a writer would leave it: every decode either succeeds with every row
// or fails, and never crashes or runs away with memory.
TEST_F(CheckpointCodecTest, RandomDamageIsRefusedOrHarmless) {
  const std::string good = Encode(GoodFile(config_, 1));
  Rng rng(77);
  int refused = 0;
  for (int trial = 0; trial < 800; ++trial) {
    std::string bytes = good;
    if (trial % 3 == 0) {
      bytes.resize(rng.Below(bytes.size()));
    } else {
      for (int k = 0, n = 1 + static_cast<int>(rng.Below(4)); k < n; ++k) {
        bytes[rng.Below(bytes.size())] = static_cast<char>(rng.Below(256));
      }
    }
    const absl::StatusOr<DecodedRows> decoded = DecodedRows::Decode(
        bytes, Entry(1, bytes, 2 * config_.tables_size()), 2, ShapesOf(config_));
    if (!decoded.ok()) {
      ++refused;
      ASSERT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << "trial " << trial;
      continue;
    }
    int rows = 0;
    decoded->ForEachRow({}, [&](uint32_t, uint64_t, uint32_t, auto, auto) { ++rows; });
    EXPECT_EQ(rows, 2 * config_.tables_size()) << "trial " << trial;
  }
  EXPECT_GT(refused, 400);
}

}  // namespace
}  // namespace psrec

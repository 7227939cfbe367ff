#include "ps/checkpoint.h"

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/model.h"
#include "common/rng.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ps/optimizer.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

JobConfig Config() {
  JobConfig config;
  config.set_split(SEED_TIME);
  config.set_test_fraction(0.2);
  config.set_model(BIAS);
  config.set_dim(3);
  config.set_dropout(0.5f);
  config.set_loss(MAE);
  config.set_rating_offset(3.5f);
  config.set_init_scale(0.1f);
  config.mutable_optimizer()->set_kind(ADAM);
  config.mutable_optimizer()->set_lr(0.01f);
  EXPECT_TRUE(ResolveOptimizerConfig(config.mutable_optimizer()).ok());
  config.set_l2(0.001f);
  config.set_batch_size(64);
  config.set_epochs(5);
  config.set_seed(7);
  config.set_num_shards(2);
  config.set_num_workers(1);
  config.set_consistency(SYNC);
  config.set_data_dir("/nowhere");
  FillTableSpecs(&config);
  return config;
}

// One shard's tables, in the config's order.
using Shard = std::vector<std::unique_ptr<ShardedTable>>;

std::vector<Shard> MakeShards(const JobConfig& config, uint32_t n) {
  std::vector<Shard> shards(n);
  for (Shard& shard : shards) {
    for (const TableSpec& spec : config.tables()) {
      shard.push_back(std::make_unique<ShardedTable>(spec, config.optimizer(), config.seed()));
    }
  }
  return shards;
}

// Pushes one gradient row per key, each to the shard that owns it.
void Push(std::vector<Shard>& shards, int t, const std::vector<uint64_t>& keys, Rng& rng) {
  const uint32_t id = shards[0][t]->spec().id(), width = shards[0][t]->width();
  for (uint64_t key : keys) {
    std::vector<float> grad(width);
    for (float& g : grad) g = rng.Unit() - 0.5f;
    shards[ShardOf(id, key, shards.size())][t]->Push({key}, grad);
  }
}

std::vector<float> Pull(const std::vector<Shard>& shards, int t, uint64_t key) {
  const ShardedTable& table = *shards[ShardOf(shards[0][t]->spec().id(), key, shards.size())][t];
  std::vector<float> out(table.width());
  table.Pull({key}, absl::MakeSpan(out));
  return out;
}

// Three rounds of pushes over keys 0..59, some repeated, some skipped.
void Train(std::vector<Shard>& shards, Rng& rng) {
  for (int round = 0; round < 3; ++round) {
    for (size_t t = 0; t < shards[0].size(); ++t) {
      std::vector<uint64_t> keys;
      for (uint64_t key = 0; key < 60; ++key) {
        if (key % (round + 2) != 0) keys.push_back(key);
      }
      keys.push_back(1);
      Push(shards, t, keys, rng);
    }
  }
}

CheckpointManifest Manifest(const JobConfig& config, uint32_t num_shards) {
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  *manifest.mutable_config() = config;
  manifest.set_epochs_done(3);
  manifest.set_clock(123);
  manifest.set_num_shards(num_shards);
  manifest.set_created("2024-01-01T00:00:00Z");
  return manifest;
}

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

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

uint32_t Crc(const std::string& bytes) {
  return crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::path(::testing::TempDir()) / absl::StrCat("psrec_checkpoint_", ::getpid()) /
             ::testing::UnitTest::GetInstance()->current_test_info()->name())
                .string();
    fs::remove_all(root_);
    dir_ = root_ + "/ckpt-000003";
  }
  void TearDown() override { fs::remove_all(fs::path(root_).parent_path()); }

  std::string File(uint32_t shard) const {
    return absl::StrCat(dir_, "/shard-0000", shard, "-of-00002.rows");
  }

  // Asserts that loading `dir_` fails with a message naming `file` and containing `what`, and
  // that no row was handed out.
  void ExpectRefused(const JobConfig& config, const std::string& file, const std::string& what) {
    int rows = 0;
    const absl::Status status =
        LoadCheckpoint(dir_, config, {}, [&](uint32_t, uint64_t, uint32_t, auto, auto) { ++rows; });
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(status.message(), HasSubstr(file));
    EXPECT_THAT(status.message(), HasSubstr(what));
    EXPECT_EQ(rows, 0);
  }

  // A trained two-shard checkpoint at dir_.
  void WriteTrained() {
    std::vector<Shard> shards = MakeShards(config_, 2);
    Rng rng(5);
    Train(shards, rng);
    ASSERT_TRUE(Write(dir_, config_, shards).ok());
  }

  const JobConfig config_ = Config();
  std::string root_, dir_;
};

TEST(CheckpointNameTest, PadsToSixDigits) {
  EXPECT_EQ(CheckpointName(3), "ckpt-000003");
  EXPECT_EQ(CheckpointName(1234567), "ckpt-1234567");
}

TEST_F(CheckpointTest, RoundTripRestoresValuesStepsAndOptimizerState) {
  std::vector<Shard> original = MakeShards(config_, 2);
  Rng rng(5);
  Train(original, rng);
  ASSERT_TRUE(Write(dir_, config_, original).ok());

  std::vector<Shard> restored = MakeShards(config_, 2);
  Load(dir_, config_, restored);
  for (uint32_t s = 0; s < 2; ++s) {
    for (size_t t = 0; t < original[s].size(); ++t) {
      uint64_t rows_a, bytes_a, rows_b, bytes_b;
      original[s][t]->Sizes(&rows_a, &bytes_a);
      restored[s][t]->Sizes(&rows_b, &bytes_b);
      EXPECT_EQ(rows_a, rows_b) << "shard " << s << " table " << t;
      EXPECT_GT(rows_a, 0u);
    }
  }
  // Keys 60..99 were never pushed: they read as their initial value on both sides.
  for (int t = 0; t < config_.tables_size(); ++t) {
    for (uint64_t key = 0; key < 100; ++key) {
      ASSERT_EQ(Pull(original, t, key), Pull(restored, t, key)) << "table " << t << " key " << key;
    }
  }
  // The same push on both sides gives the same rows only if Adam's moments and step counts came
  // back too.
  Rng a(9), b(9);
  Train(original, a);
  Train(restored, b);
  for (int t = 0; t < config_.tables_size(); ++t) {
    for (uint64_t key = 0; key < 100; ++key) {
      ASSERT_EQ(Pull(original, t, key), Pull(restored, t, key)) << "table " << t << " key " << key;
    }
  }
}

TEST_F(CheckpointTest, ManifestEntriesDescribeTheFiles) {
  std::vector<Shard> shards = MakeShards(config_, 2);
  Rng rng(5);
  Train(shards, rng);
  ASSERT_TRUE(Write(dir_, config_, shards).ok());
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
    uint64_t rows = 0;
    for (const auto& table : shards[s]) {
      uint64_t r, b;
      table->Sizes(&r, &b);
      rows += r;
    }
    EXPECT_EQ(file.rows(), rows);
  }
  EXPECT_FALSE(fs::exists(File(0) + ".tmp"));
  EXPECT_FALSE(fs::exists(dir_ + "/MANIFEST.tmp"));
}

// Rows reach the restored tables in another order than the original pushes created them; the
// files must still be byte for byte the same.
TEST_F(CheckpointTest, SameRowsWriteIdenticalBytes) {
  std::vector<Shard> original = MakeShards(config_, 2);
  Rng rng(5);
  Train(original, rng);
  ASSERT_TRUE(Write(dir_, config_, original).ok());
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
  const absl::Status status =
      LoadCheckpoint(dir_, config_, {}, [&](uint32_t, uint64_t, uint32_t, auto, auto) { ++rows; });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(rows, 0);
}

TEST_F(CheckpointTest, ReshardsTwoToThree) {
  std::vector<Shard> original = MakeShards(config_, 2);
  Rng rng(5);
  Train(original, rng);
  ASSERT_TRUE(Write(dir_, config_, original).ok());
  std::vector<Shard> three = MakeShards(config_, 3);
  Load(dir_, config_, three);
  uint64_t rows_two = 0, rows_three = 0;
  for (const auto* shards : {&original, &three}) {
    for (const Shard& shard : *shards) {
      for (const auto& table : shard) {
        uint64_t r, b;
        table->Sizes(&r, &b);
        (shards == &original ? rows_two : rows_three) += r;
      }
    }
  }
  EXPECT_EQ(rows_two, rows_three);
  for (int t = 0; t < config_.tables_size(); ++t) {
    for (uint64_t key = 0; key < 100; ++key) {
      ASSERT_EQ(Pull(original, t, key), Pull(three, t, key)) << "table " << t << " key " << key;
    }
  }
}

TEST_F(CheckpointTest, ClusterShapeEpochsAndDataDirMayDiffer) {
  WriteTrained();
  JobConfig job = config_;
  job.set_num_shards(5);
  job.set_num_workers(3);
  job.set_consistency(ASYNC);
  job.set_staleness(4);
  job.set_epochs(50);
  job.set_data_dir("/elsewhere");
  EXPECT_TRUE(CheckpointConfigDifferences(config_, job).empty());
  int rows = 0;
  const absl::Status status =
      LoadCheckpoint(dir_, job, {}, [&](uint32_t, uint64_t, uint32_t, auto, auto) { ++rows; });
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
  ExpectRefused(config_, dir_ + "/MANIFEST", "cannot read");
}

TEST_F(CheckpointTest, RefusesAGarbledManifest) {
  WriteTrained();
  WriteBytes(dir_ + "/MANIFEST", "format_version: 1\nconfig { dim: \"three\" }\n");
  ExpectRefused(config_, dir_ + "/MANIFEST", "not a text-format psrec.CheckpointManifest");
  WriteBytes(dir_ + "/MANIFEST", std::string("\x00\xff\x13garbage", 10));
  ExpectRefused(config_, dir_ + "/MANIFEST", "not a text-format psrec.CheckpointManifest");
}

// Writes `manifest` without WriteManifest's checks.
void WriteRawManifest(const std::string& dir, const CheckpointManifest& manifest) {
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(manifest, &text));
  WriteBytes(dir + "/MANIFEST", text);
}

TEST_F(CheckpointTest, RefusesAnotherFormatVersion) {
  WriteTrained();
  CheckpointManifest manifest = *ReadManifest(dir_);
  manifest.set_format_version(kCheckpointFormatVersion + 1);
  WriteRawManifest(dir_, manifest);
  ExpectRefused(config_, dir_ + "/MANIFEST",
                absl::StrCat("format version ", kCheckpointFormatVersion + 1));
  EXPECT_FALSE(WriteManifest(dir_, manifest).ok());
}

TEST_F(CheckpointTest, RefusesABadFileList) {
  WriteTrained();
  const CheckpointManifest good = *ReadManifest(dir_);
  CheckpointManifest manifest = good;
  manifest.set_num_shards(3);
  WriteRawManifest(dir_, manifest);
  ExpectRefused(config_, dir_ + "/MANIFEST", "lists 2 files for 3 shards");

  manifest = good;
  manifest.mutable_files(1)->set_name("../ckpt-000001/shard-00001-of-00002.rows");
  WriteRawManifest(dir_, manifest);
  ExpectRefused(config_, dir_ + "/MANIFEST", "is not a plain file name");

  manifest = good;
  manifest.mutable_files()->SwapElements(0, 1);
  WriteRawManifest(dir_, manifest);
  ExpectRefused(config_, dir_ + "/MANIFEST", "is for shard 1");
  EXPECT_FALSE(WriteManifest(dir_, manifest).ok());
}

TEST_F(CheckpointTest, RefusesAnotherConfig) {
  WriteTrained();
  JobConfig dim = config_;
  dim.set_dim(4);
  FillTableSpecs(&dim);
  ExpectRefused(dim, dir_ + "/MANIFEST", "dim: 3 vs 4");

  JobConfig model = config_;
  model.set_model(MLP);
  model.set_hidden(10);
  FillTableSpecs(&model);
  ExpectRefused(model, dir_ + "/MANIFEST", "model: BIAS vs MLP");

  JobConfig optimizer = config_;
  optimizer.mutable_optimizer()->Clear();
  optimizer.mutable_optimizer()->set_kind(SGD);
  optimizer.mutable_optimizer()->set_lr(0.01f);
  ExpectRefused(optimizer, dir_ + "/MANIFEST", "optimizer");

  JobConfig offset = config_;
  offset.set_rating_offset(3.25f);
  ExpectRefused(offset, dir_ + "/MANIFEST", "rating_offset: 3.5 vs 3.25");
}

// Rows files written by hand, byte by byte, so that the content checks behind the crc are reached
// and the layout is pinned down independently of the writer.
struct RawRow {
  uint64_t key;
  uint32_t step;
  std::vector<float> floats;  // values, then optimizer state
};
struct RawTable {
  uint32_t id, width, state_width;
  std::vector<RawRow> rows;
  uint64_t claimed_rows = std::numeric_limits<uint64_t>::max();  // max: rows.size()
};
struct RawFile {
  std::string magic = "PSRECKPT";
  uint32_t version = kCheckpointFormatVersion;
  uint32_t shard = 0, num_shards = 2;
  std::vector<RawTable> tables;
  std::string trailer;
};

void Put(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

std::string Encode(const RawFile& file) {
  std::string out = file.magic;
  Put(&out, file.version, 4);
  Put(&out, file.shard, 4);
  Put(&out, file.num_shards, 4);
  Put(&out, file.tables.size(), 4);
  for (const RawTable& t : file.tables) {
    Put(&out, t.id, 4);
    Put(&out, t.width, 4);
    Put(&out, t.state_width, 4);
    Put(&out,
        t.claimed_rows == std::numeric_limits<uint64_t>::max() ? t.rows.size() : t.claimed_rows, 8);
    for (const RawRow& row : t.rows) {
      Put(&out, row.key, 8);
      Put(&out, row.step, 4);
      for (float f : row.floats) {
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        Put(&out, bits, 4);
      }
    }
  }
  return out + file.trailer;
}

// Shard `shard` of 2 with the config's tables and two rows in each, keyed by keys it owns.
RawFile GoodFile(const JobConfig& config, uint32_t shard) {
  RawFile file;
  file.shard = shard;
  for (const TableSpec& spec : config.tables()) {
    RawTable table{spec.id(), spec.width(), 2 * spec.width(), {}};
    for (uint64_t key = 0; table.rows.size() < 2; ++key) {
      if (ShardOf(spec.id(), key, 2) != shard) continue;
      RawRow row{key, static_cast<uint32_t>(key + 1), {}};
      for (uint32_t i = 0; i < 3 * spec.width(); ++i) row.floats.push_back(0.25f * i - key);
      table.rows.push_back(row);
    }
    file.tables.push_back(table);
  }
  return file;
}

class CraftedCheckpointTest : public CheckpointTest {
 protected:
  // Writes both files and a manifest whose sizes, crc32s and row counts match them.
  void WriteFiles(const RawFile& shard0, const RawFile& shard1) {
    fs::create_directories(dir_);
    CheckpointManifest manifest = Manifest(config_, 2);
    for (uint32_t s = 0; s < 2; ++s) {
      const RawFile& raw = s == 0 ? shard0 : shard1;
      const std::string bytes = Encode(raw);
      WriteBytes(File(s), bytes);
      CheckpointFile* file = manifest.add_files();
      file->set_name(fs::path(File(s)).filename().string());
      file->set_shard(s);
      file->set_bytes(bytes.size());
      file->set_crc32(Crc(bytes));
      uint64_t rows = 0;
      for (const RawTable& t : raw.tables) rows += t.rows.size();
      file->set_rows(rows);
    }
    ASSERT_TRUE(WriteManifest(dir_, manifest).ok());
  }

  // Writes a good shard 0 and shard 1 as `bad`, and expects shard 1's file refused for `what`.
  void ExpectShard1Refused(const RawFile& bad, const std::string& what) {
    WriteFiles(GoodFile(config_, 0), bad);
    ExpectRefused(config_, File(1), what);
  }
};

TEST_F(CraftedCheckpointTest, HandWrittenFilesLoad) {
  WriteFiles(GoodFile(config_, 0), GoodFile(config_, 1));
  int rows = 0;
  const absl::Status status =
      LoadCheckpoint(dir_, config_, {},
                     [&](uint32_t table, uint64_t key, uint32_t step,
                         absl::Span<const float> values, absl::Span<const float> state) {
                       ++rows;
                       const uint32_t width = config_.tables(table).width();
                       EXPECT_EQ(step, key + 1);
                       ASSERT_EQ(values.size(), width);
                       ASSERT_EQ(state.size(), 2 * width);
                       EXPECT_EQ(values[0], -static_cast<float>(key));
                       EXPECT_EQ(state.back(), 0.25f * (3 * width - 1) - key);
                     });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(rows, 2 * 2 * config_.tables_size());
}

TEST_F(CraftedCheckpointTest, KeepSelectsRows) {
  WriteFiles(GoodFile(config_, 0), GoodFile(config_, 1));
  int rows = 0;
  const absl::Status status = LoadCheckpoint(
      dir_, config_, [](uint32_t table, uint64_t) { return table == kUserBiasTable; },
      [&](uint32_t table, uint64_t, uint32_t, auto, auto) {
        EXPECT_EQ(table, kUserBiasTable);
        ++rows;
      });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(rows, 4);
}

TEST_F(CraftedCheckpointTest, RefusesAHeaderForAnotherShard) {
  RawFile bad = GoodFile(config_, 1);
  bad.shard = 0;
  ExpectShard1Refused(bad, "the header says shard 0 of 2, but the manifest lists it for shard 1");
}

TEST_F(CraftedCheckpointTest, RefusesDuplicateKeys) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables[1].rows.push_back(bad.tables[1].rows[0]);
  ExpectShard1Refused(bad,
                      absl::StrCat("table 1: key ", bad.tables[1].rows[0].key, " appears twice"));
}

TEST_F(CraftedCheckpointTest, RefusesAKeyOfAnotherShard) {
  RawFile bad = GoodFile(config_, 1);
  const RawFile other = GoodFile(config_, 0);
  bad.tables[0].rows.push_back(other.tables[0].rows[0]);
  ExpectShard1Refused(
      bad, absl::StrCat("table 0: key ", other.tables[0].rows[0].key, " belongs to shard 0 of 2"));
}

TEST_F(CraftedCheckpointTest, RefusesNonFiniteValuesAndState) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables[2].rows[1].floats[0] = std::nanf("");
  ExpectShard1Refused(bad, "nan in its values");
  bad = GoodFile(config_, 1);
  bad.tables[0].rows[0].floats.back() = std::numeric_limits<float>::infinity();
  ExpectShard1Refused(bad, "inf in its optimizer state");
}

TEST_F(CraftedCheckpointTest, RefusesTablesThatDoNotMatchTheConfig) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables.pop_back();
  ExpectShard1Refused(bad, "holds 4 tables, the config has 5");
  bad = GoodFile(config_, 1);
  bad.tables[4].id = 9;
  ExpectShard1Refused(bad, "holds table 9, which the config lacks");
  bad = GoodFile(config_, 1);
  bad.tables[4].id = 3;
  ExpectShard1Refused(bad, "holds table 3 twice");
  bad = GoodFile(config_, 1);
  bad.tables[0].width = 4;
  for (RawRow& row : bad.tables[0].rows) row.floats.resize(12);
  ExpectShard1Refused(bad, "table 0 has width 4, the config says 3");
  bad = GoodFile(config_, 1);
  bad.tables[0].state_width = 3;
  for (RawRow& row : bad.tables[0].rows) row.floats.resize(6);
  ExpectShard1Refused(bad, "table 0 has 3 optimizer state floats per row");
}

TEST_F(CraftedCheckpointTest, RefusesRowCountsThatDoNotFitTheFile) {
  RawFile bad = GoodFile(config_, 1);
  bad.tables[1].claimed_rows = uint64_t{1} << 61;  // would be exabytes if believed
  ExpectShard1Refused(bad, "table 1 claims 2305843009213693952 rows");
  bad = GoodFile(config_, 1);
  bad.tables[4].claimed_rows = 1;
  ExpectShard1Refused(bad, "follow the last table");
  bad = GoodFile(config_, 1);
  bad.trailer = "x";
  ExpectShard1Refused(bad, "1 bytes follow the last table");
}

TEST_F(CraftedCheckpointTest, RefusesABadHeader) {
  RawFile bad = GoodFile(config_, 1);
  bad.magic = "PSRECKPX";
  ExpectShard1Refused(bad, "not a psrec rows file");
  bad = GoodFile(config_, 1);
  bad.version = 7;
  ExpectShard1Refused(bad, "format version 7");
  bad = GoodFile(config_, 1);
  bad.num_shards = 3;
  ExpectShard1Refused(bad, "the header says shard 1 of 3");
  WriteFiles(GoodFile(config_, 0), GoodFile(config_, 1));
  WriteBytes(File(1), "PSRE");
  CheckpointManifest manifest = *ReadManifest(dir_);
  manifest.mutable_files(1)->set_bytes(4);
  manifest.mutable_files(1)->set_crc32(Crc("PSRE"));
  ASSERT_TRUE(WriteManifest(dir_, manifest).ok());
  ExpectRefused(config_, File(1), "too short for the header");
}

TEST_F(CraftedCheckpointTest, RefusesARowCountOtherThanTheManifests) {
  WriteFiles(GoodFile(config_, 0), GoodFile(config_, 1));
  CheckpointManifest manifest = *ReadManifest(dir_);
  manifest.mutable_files(1)->set_rows(manifest.files(1).rows() + 1);
  ASSERT_TRUE(WriteManifest(dir_, manifest).ok());
  ExpectRefused(config_, File(1), "rows, but the manifest says");
}

// Damage behind a matching crc32, as a bug in a writer would leave it: every load either succeeds
// or fails naming the file with no row handed out, and never crashes or runs away with memory.
TEST_F(CraftedCheckpointTest, RandomDamageBehindAGoodCrcIsRefusedOrHarmless) {
  WriteFiles(GoodFile(config_, 0), GoodFile(config_, 1));
  const std::string good = ReadBytes(File(1));
  const CheckpointManifest manifest = *ReadManifest(dir_);
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
    WriteBytes(File(1), bytes);
    CheckpointManifest damaged = manifest;
    damaged.mutable_files(1)->set_bytes(bytes.size());
    damaged.mutable_files(1)->set_crc32(Crc(bytes));
    WriteRawManifest(dir_, damaged);  // no fsync: thousands of trials
    int rows = 0;
    const absl::Status status = LoadCheckpoint(
        dir_, config_, {}, [&](uint32_t, uint64_t, uint32_t, auto, auto) { ++rows; });
    if (status.ok()) {
      EXPECT_EQ(rows, 2 * 2 * config_.tables_size()) << "trial " << trial;
    } else {
      ++refused;
      ASSERT_THAT(status.message(), HasSubstr(File(1))) << "trial " << trial;
      ASSERT_EQ(rows, 0) << "trial " << trial;
    }
  }
  EXPECT_GT(refused, 400);
}

TEST(FindLatestCheckpointTest, PicksTheMostEpochsWithAManifest) {
  const fs::path root =
      fs::path(::testing::TempDir()) / absl::StrCat("psrec_find_latest_", ::getpid());
  fs::remove_all(root);
  for (const char* name :
       {"ckpt-000001", "ckpt-999999", "ckpt-1000000", "ckpt-1000001", "ckpt-x2000000", "other"}) {
    fs::create_directories(root / name);
    if (std::string(name) != "ckpt-1000001") WriteBytes((root / name / "MANIFEST").string(), "");
  }
  // ckpt-1000001 is incomplete (no MANIFEST); the numbers compare as numbers, not as names.
  absl::StatusOr<std::string> latest = FindLatestCheckpoint(root.string());
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, (root / "ckpt-1000000").string());

  fs::remove_all(root);
  fs::create_directories(root / "ckpt-000004");
  latest = FindLatestCheckpoint(root.string());
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(latest.status().message(), HasSubstr(root.string()));

  fs::remove_all(root);
  latest = FindLatestCheckpoint(root.string());
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(latest.status().message(), HasSubstr(root.string()));
}

}  // namespace
}  // namespace psrec

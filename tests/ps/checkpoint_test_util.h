// What the checkpoint tests share: a job config, trained shards, and rows files written by hand,
// byte by byte, so that the checks behind the crc32 are reached and the layout is pinned down
// independently of the encoder. Header-only: tests/CMakeLists.txt builds each *_test.cc alone.
#ifndef PSREC_TESTS_PS_CHECKPOINT_TEST_UTIL_H_
#define PSREC_TESTS_PS_CHECKPOINT_TEST_UTIL_H_

#include <unistd.h>
#include <zlib.h>

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
#include "gtest/gtest.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"
#include "ps/checkpoint_manifest.h"
#include "ps/optimizer.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace checkpoint_testing {

inline JobConfig Config() {
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

// `config` on another cluster shape, for more epochs, over data elsewhere: all that a job
// restoring a checkpoint may change.
inline JobConfig OnAnotherCluster(JobConfig config) {
  config.set_num_shards(5);
  config.set_num_workers(3);
  config.set_consistency(ASYNC);
  config.set_staleness(4);
  config.set_epochs(50);
  config.set_data_dir("/elsewhere");
  return config;
}

// A fresh directory for each test: root_, this process's own, and dir_ = root_/ckpt-000003, not
// yet created.
class CheckpointDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    root_ = (fs::path(::testing::TempDir()) / absl::StrCat("psrec_checkpoint_", ::getpid()) /
             ::testing::UnitTest::GetInstance()->current_test_info()->name())
                .string();
    fs::remove_all(root_);
    dir_ = root_ + "/ckpt-000003";
  }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::path(root_).parent_path());
  }

  std::string root_, dir_;
};

// One shard's tables, in the config's order (which is also their ids').
using Shard = std::vector<std::unique_ptr<ShardedTable>>;

inline std::vector<Shard> MakeShards(const JobConfig& config, uint32_t n) {
  std::vector<Shard> shards(n);
  for (Shard& shard : shards) {
    for (const TableSpec& spec : config.tables()) {
      shard.push_back(std::make_unique<ShardedTable>(spec, config.optimizer(), config.seed()));
    }
  }
  return shards;
}

// Pushes one gradient row per key, each to the shard that owns it.
inline void Push(std::vector<Shard>& shards, int t, const std::vector<uint64_t>& keys, Rng& rng) {
  const uint32_t id = shards[0][t]->spec().id(), width = shards[0][t]->width();
  for (uint64_t key : keys) {
    std::vector<float> grad(width);
    for (float& g : grad) g = rng.Unit() - 0.5f;
    shards[ShardOf(id, key, shards.size())][t]->Push({key}, grad);
  }
}

inline std::vector<float> Pull(const std::vector<Shard>& shards, int t, uint64_t key) {
  const ShardedTable& table = *shards[ShardOf(shards[0][t]->spec().id(), key, shards.size())][t];
  std::vector<float> out(table.width());
  table.Pull({key}, absl::MakeSpan(out));
  return out;
}

// Three rounds of pushes over keys 0..59, some repeated, some skipped.
inline void Train(std::vector<Shard>& shards, Rng& rng) {
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

// Every table of `a` and `b` reads the same for keys 0..99 (60..99 were never pushed).
inline void ExpectSameRows(const std::vector<Shard>& a, const std::vector<Shard>& b) {
  for (size_t t = 0; t < a[0].size(); ++t) {
    for (uint64_t key = 0; key < 100; ++key) {
      ASSERT_EQ(Pull(a, t, key), Pull(b, t, key)) << "table " << t << " key " << key;
    }
  }
}

inline uint64_t CountRows(const Shard& shard) {
  uint64_t rows = 0;
  for (const auto& table : shard) {
    uint64_t r, b;
    table->Sizes(&r, &b);
    rows += r;
  }
  return rows;
}

inline CheckpointManifest Manifest(const JobConfig& config, uint32_t num_shards) {
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  *manifest.mutable_config() = config;
  manifest.set_epochs_done(3);
  manifest.set_clock(123);
  manifest.set_num_shards(num_shards);
  manifest.set_created("2024-01-01T00:00:00Z");
  return manifest;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

inline uint32_t Crc(const std::string& bytes) {
  return crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
}

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

inline void Put(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

inline std::string Encode(const RawFile& file) {
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

inline uint64_t CountRows(const RawFile& file) {
  uint64_t rows = 0;
  for (const RawTable& t : file.tables) rows += t.rows.size();
  return rows;
}

// Shard `shard` of 2 with the config's tables and two rows in each, keyed by keys it owns. Row
// `key` has step key + 1 and floats 0.25 i - key (values, then an Adam state of twice the width).
inline RawFile GoodFile(const JobConfig& config, uint32_t shard) {
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

}  // namespace checkpoint_testing
}  // namespace psrec

#endif  // PSREC_TESTS_PS_CHECKPOINT_TEST_UTIL_H_

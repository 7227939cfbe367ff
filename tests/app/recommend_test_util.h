// A tiny job whose recommendations are known in advance, for the tests of app/recommender and
// `psrec recommend`. Header-only, as tests/test_util.h.
//
// Ratings (user: movies in time order; user_time trains on the first 4 of 5):
//   user 1: 19 18 10 11 | 12        user 2: 19 17 10 13 | 14
//   user 4: 19 10 11 15 | 16        user 3: 18 (one rating, so none in training)
// Training counts: 10 and 19 three times, 11 twice, 13 15 17 18 once: the popular top 3 is
// 19, 10, 11 (ties to the first rated in user, then time order: user 1 rates 19 before 10). The
// bias model's rows are planted so that movie m scores about offset + (m - 10) / 10: user 1's top 3
// is 17, 16, 15 (19 and 18 are training items).
#ifndef PSREC_TESTS_APP_RECOMMEND_TEST_UTIL_H_
#define PSREC_TESTS_APP_RECOMMEND_TEST_UTIL_H_

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/job_config.h"
#include "common/model.h"
#include "common/ranking_data.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/local_store.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace testing_util {

inline void WritePlantedRatings(const std::filesystem::path& dir) {
  std::ofstream out(dir / "ratings.csv");
  out << "userId,movieId,rating,timestamp\n";
  const std::vector<std::vector<int>> users = {
      {1, 19, 18, 10, 11, 12}, {2, 19, 17, 10, 13, 14}, {3, 18}, {4, 19, 10, 11, 15, 16}};
  const float stars[] = {4.0f, 3.0f, 5.0f, 2.0f, 4.5f};
  int64_t t = 1000;
  for (const std::vector<int>& u : users) {
    for (size_t k = 1; k < u.size(); ++k) {
      out << u[0] << "," << u[k] << "," << stars[k - 1] << "," << t++ << "\n";
    }
  }
}

inline void WritePlantedMoviesCsv(const std::filesystem::path& dir) {
  std::ofstream out(dir / "movies.csv");
  out << "movieId,title,genres\n";
  for (int m = 10; m <= 19; ++m) {
    if (m == 15) {
      out << "15,\"\"\"Great Performances\"\" Cats (1998)\",Musical\n";
    } else if (m == 16) {
      out << "16,Am\xC3\xA9lie (2001),Comedy|Romance\n";
    } else if (m == 17) {
      out << "17,\"American President, The (1995)\",Comedy|Drama|Romance\n";
    } else {
      out << m << ",Movie " << m << " (2000),Drama\n";
    }
  }
}

struct PlantedJob {
  JobConfig config;
  WholeData job;
  std::unique_ptr<LocalStore> store;
};

// Reads and splits the ratings in `dir` as a bias model's run would, and plants its rows.
inline PlantedJob MakePlantedJob(const std::filesystem::path& dir) {
  PlantedJob out;
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
  EXPECT_TRUE(config.ok()) << config.status();
  out.config = *config;
  out.config.set_data_dir(dir.string());
  out.config.set_split(USER_TIME);
  out.config.set_model(BIAS);
  out.config.set_dim(4);
  FillTableSpecs(&out.config);
  absl::StatusOr<WholeData> job = ReadWholeData(&out.config);
  EXPECT_TRUE(job.ok()) << job.status();
  out.job = *std::move(job);
  auto store = LocalStore::Create(out.config.tables(), out.config.optimizer(), out.config.seed());
  EXPECT_TRUE(store.ok()) << store.status();
  out.store = *std::move(store);
  const uint32_t dim = out.config.dim();
  // The dense row reads the embeddings a little and the item bias fully.
  std::vector<float> dense(dim + 3, 0.01f);
  dense[dim] = 0.0f;      // user bias weight
  dense[dim + 1] = 1.0f;  // item bias weight
  dense[dim + 2] = 0.0f;  // constant
  // Zero optimizer state, as many floats as the optimizer keeps per row.
  const auto state = [&](uint32_t table) {
    return std::vector<float>(out.store->table(table)->state_floats_per_row(), 0.0f);
  };
  EXPECT_TRUE(out.store->InsertRow(kDenseTable, kDenseKey, 1, dense, state(kDenseTable)).ok());
  for (int m = 10; m <= 19; ++m) {
    const float bias = static_cast<float>(m - 10) / 10;
    EXPECT_TRUE(out.store->InsertRow(kItemBiasTable, m, 1, {&bias, 1}, state(kItemBiasTable)).ok());
  }
  return out;
}

// Writes the store's rows as the one-shard checkpoint ROOT/ckpt-000001.
inline void WritePlantedCheckpoint(const PlantedJob& planted, const std::filesystem::path& root) {
  const JobConfig& config = planted.config;
  CheckpointManifest manifest;
  manifest.set_format_version(kCheckpointFormatVersion);
  *manifest.mutable_config() = config;
  manifest.set_epochs_done(1);
  manifest.set_num_shards(1);
  std::vector<std::unique_ptr<ShardedTable>> tables;
  std::vector<const ShardedTable*> pointers;
  for (const TableSpec& spec : config.tables()) {
    tables.push_back(std::make_unique<ShardedTable>(spec, config.optimizer(), config.seed()));
    planted.store->table(spec.id())->ForEachRow(
        [&](uint64_t key, uint32_t step, auto values, auto state) {
          tables.back()->InsertRow(key, step, values, state);
        });
    pointers.push_back(tables.back().get());
  }
  const std::string dir = (root / CheckpointName(1)).string();
  absl::StatusOr<CheckpointFile> file = WriteShardCheckpoint(dir, 0, 1, pointers);
  ASSERT_TRUE(file.ok()) << file.status();
  *manifest.add_files() = *file;
  ASSERT_TRUE(WriteManifest(dir, manifest).ok());
}

}  // namespace testing_util
}  // namespace psrec

#endif  // PSREC_TESTS_APP_RECOMMEND_TEST_UTIL_H_

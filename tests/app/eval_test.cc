// `psrec eval`: a checkpoint written from an in-process training run must score exactly what that
// run scores, and a corrupt checkpoint or bad flags must fail with the right exit code.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "app/local_job.h"
#include "common/job_config.h"
#include "common/job_data.h"
#include "common/model.h"
#include "common/rng.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/local_store.h"
#include "ps/sharded_table.h"
#include "tests/test_util.h"
#include "worker/trainer.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using testing_util::FreshDir;
using testing_util::ReadFile;
using testing_util::Result;
using testing_util::RunPsrec;

// A rating shift moves the mean, so two data sets differ in their rating_offset.
fs::path SyntheticData(const std::string& name, float shift) {
  const fs::path dir = FreshDir(name);
  testing_util::WriteSyntheticRatings(dir, 80, 30, 90, 3.0f + shift);
  return dir;
}

class EvalTest : public ::testing::Test {
 protected:
  // Trains two epochs in this process, as RunLocalJob does, writes the tables as a two-shard
  // checkpoint ROOT/ckpt-000002, and keeps the test metrics the run itself measured.
  static void SetUpTestSuite() {
    data_ = new fs::path(SyntheticData("data", 0.0f));
    root_ = new fs::path(FreshDir("checkpoints"));
    absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
    ASSERT_TRUE(config.ok()) << config.status();
    config->set_data_dir(data_->string());
    config->set_split(RANDOM);
    config->set_model(MLP);
    config->set_dim(6);
    config->set_epochs(2);
    config->set_batch_size(64);
    FillTableSpecs(&*config);
    absl::StatusOr<std::unique_ptr<ShareSet>> data = HoldJobData(&*config);
    ASSERT_TRUE(data.ok()) << data.status();
    auto store = LocalStore::Create(config->tables(), config->optimizer(), config->seed());
    ASSERT_TRUE(store.ok()) << store.status();
    auto trainer = Trainer::Create(*config, &(*data)->table(), store->get());
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    uint64_t step = 0;
    for (uint32_t epoch = 0; epoch < 2; ++epoch) {
      auto stats =
          (*trainer)->Train(EpochOrder((*data)->train_rows(), config->seed(), epoch), step, {});
      ASSERT_TRUE(stats.ok()) << stats.status();
      step += stats->batches;
    }
    const absl::Span<const uint32_t> test = (*data)->test_rows();
    std::vector<float> pred(test.size());
    ASSERT_TRUE((*trainer)->Predict(test, absl::MakeSpan(pred)).ok());
    expected_ = ScoreRows((*data)->table(), test, pred).Metrics();
    WriteCheckpoint(*config, **store);
    // The ranking the run's last epoch measures (rows no training touched read as their initial
    // values, in the store and from the checkpoint alike).
    absl::StatusOr<RankingMetrics> ranking = RankAfterEpoch(*config, 2, **data, store->get());
    ASSERT_TRUE(ranking.ok()) << ranking.status();
    ASSERT_TRUE(ranking->ranked);
    ranking_ = *ranking;
    absl::StatusOr<RankingMetrics> popularity = PopularityBaseline(*config, **data);
    ASSERT_TRUE(popularity.ok()) << popularity.status();
    popularity_ = *popularity;
  }

  static void TearDownTestSuite() {
    fs::remove_all(testing_util::TestRoot());
    delete data_;
    delete root_;
  }

  static void WriteCheckpoint(const JobConfig& config, const LocalStore& store) {
    CheckpointManifest manifest;
    manifest.set_format_version(kCheckpointFormatVersion);
    *manifest.mutable_config() = config;
    manifest.set_epochs_done(2);
    manifest.set_num_shards(2);
    const std::string dir = (*root_ / CheckpointName(2)).string();
    for (uint32_t shard = 0; shard < 2; ++shard) {
      std::vector<std::unique_ptr<ShardedTable>> tables;
      for (const TableSpec& spec : config.tables()) {
        tables.push_back(std::make_unique<ShardedTable>(spec, config.optimizer(), config.seed()));
        store.table(spec.id())->ForEachRow(
            [&](uint64_t key, uint32_t row_step, auto values, auto state) {
              if (ShardOf(spec.id(), key, 2) == shard) {
                tables.back()->InsertRow(key, row_step, values, state);
              }
            });
      }
      std::vector<const ShardedTable*> pointers;
      for (const auto& t : tables) pointers.push_back(t.get());
      absl::StatusOr<CheckpointFile> file = WriteShardCheckpoint(dir, shard, 2, pointers);
      ASSERT_TRUE(file.ok()) << file.status();
      *manifest.add_files() = *file;
    }
    ASSERT_TRUE(WriteManifest(dir, manifest).ok());
  }

  static std::string ExpectedLine() {
    return absl::StrFormat(
        "epochs_done=2 test_mae=%.17g test_rmse=%.17g recall_at_10=%.17g ndcg_at_10=%.17g "
        "coverage_at_10=%.17g popularity_recall_at_10=%.17g popularity_ndcg_at_10=%.17g\n",
        expected_.mae, expected_.rmse, ranking_.recall, ranking_.ndcg, ranking_.coverage,
        popularity_.recall, popularity_.ndcg);
  }

  // A copy of the checkpoint that a test may damage.
  fs::path CopyCheckpoint(const std::string& name) {
    const fs::path dir = FreshDir(name) / CheckpointName(2);
    fs::copy(*root_ / CheckpointName(2), dir, fs::copy_options::recursive);
    return dir;
  }

  static fs::path* data_;
  static fs::path* root_;
  static TestMetrics expected_;
  static RankingMetrics ranking_, popularity_;
};

fs::path* EvalTest::data_ = nullptr;
fs::path* EvalTest::root_ = nullptr;
TestMetrics EvalTest::expected_;
RankingMetrics EvalTest::ranking_;
RankingMetrics EvalTest::popularity_;

TEST_F(EvalTest, ScoresExactlyWhatTheTrainingRunMeasured) {
  const fs::path work = FreshDir("exact");
  const fs::path metrics = work / "metrics.json";
  const Result r = RunPsrec({"eval", "--checkpoint=" + root_->string(), "--data=" + data_->string(),
                             "--metrics_out=" + metrics.string()},
                            work);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("checkpoint=", (*root_ / CheckpointName(2)).string(), " ",
                                ExpectedLine()));
  const std::string json = ReadFile(metrics);
  EXPECT_THAT(json, HasSubstr("\"epochs_done\": 2"));
  EXPECT_THAT(
      json, HasSubstr(absl::StrFormat("\"final\": {\"test_mae\": %.17g, \"test_rmse\": %.17g, "
                                      "\"recall_at_10\": %.17g, \"ndcg_at_10\": %.17g, "
                                      "\"coverage_at_10\": %.17g}",
                                      expected_.mae, expected_.rmse, ranking_.recall, ranking_.ndcg,
                                      ranking_.coverage)));
  EXPECT_THAT(json, HasSubstr(absl::StrFormat("\"baseline\": {\"popularity\": {\"recall_at_10\": "
                                              "%.17g, \"ndcg_at_10\": %.17g",
                                              popularity_.recall, popularity_.ndcg)));
}

TEST_F(EvalTest, UsesTheManifestsDataDirWithoutData) {
  const fs::path work = FreshDir("no_data_flag");
  const Result r =
      RunPsrec({"eval", "--checkpoint=" + (*root_ / CheckpointName(2)).string()}, work);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(ExpectedLine()));
}

TEST_F(EvalTest, CorruptCheckpointExitsOneNamingTheFile) {
  const fs::path dir = CopyCheckpoint("corrupt");
  const fs::path file = dir / "shard-00001-of-00002.rows";
  std::string bytes = ReadFile(file);
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  const Result r = RunPsrec({"eval", "--checkpoint=" + dir.string()}, dir.parent_path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(file.string()));
  EXPECT_THAT(r.err, HasSubstr("crc32"));
  EXPECT_EQ(r.out, "");
}

TEST_F(EvalTest, OtherRatingsExitOne) {
  const fs::path other = SyntheticData("other_data", 0.5f);
  const fs::path work = FreshDir("other_ratings");
  const Result r =
      RunPsrec({"eval", "--checkpoint=" + root_->string(), "--data=" + other.string()}, work);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("MANIFEST"));
  EXPECT_THAT(r.err, HasSubstr("rating_offset"));
}

TEST_F(EvalTest, NoCheckpointExitsOneNamingTheDirectory) {
  const fs::path work = FreshDir("missing");
  const Result r = RunPsrec({"eval", "--checkpoint=" + (work / "nothing").string()}, work);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr((work / "nothing").string()));
}

TEST_F(EvalTest, BadFlagsExitTwo) {
  const fs::path work = FreshDir("flags");
  const std::string checkpoint = "--checkpoint=" + root_->string();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"eval"},
                                             {"eval", checkpoint, "--dim=4"},
                                             {"eval", checkpoint, "--no_such_flag=1"},
                                             {"eval", checkpoint, "positional"}}) {
    const Result r = RunPsrec(args, work);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("psrec eval")) << absl::StrJoin(args, " ");
  }
}

}  // namespace
}  // namespace psrec

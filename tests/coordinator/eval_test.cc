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
#include "common/job_data.h"
#include "common/model.h"
#include "common/rng.h"
#include "coordinator/job_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ps/checkpoint.h"
#include "ps/local_store.h"
#include "ps/sharded_table.h"
#include "ps/sharding.h"
#include "worker/trainer.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path FreshDir(const std::string& name) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / absl::StrCat("psrec_eval_", ::getpid()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Users with a taste offset, items with a quality offset; `shift` moves every rating, so two data
// sets differ in their mean.
fs::path SyntheticData(const std::string& name, float shift) {
  const fs::path dir = FreshDir(name);
  std::ofstream out(dir / "ratings.csv");
  out << "userId,movieId,rating,timestamp\n";
  Rng rng(2024);
  int64_t t = 1'000'000;
  for (int u = 1; u <= 80; ++u) {
    const float taste = rng.Unit() * 2 - 1;
    for (int k = 0; k < 30; ++k) {
      const int item = 1 + static_cast<int>(rng.Below(90));
      const float quality = static_cast<float>(item % 7) * 0.25f - 0.75f;
      const float r = std::clamp(3.0f + shift + taste + quality + (rng.Unit() - 0.5f), 0.5f, 5.0f);
      out << u << "," << item << "," << std::round(r * 2) / 2 << "," << t++ << "\n";
    }
  }
  return dir;
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

Result RunPsrec(const std::vector<std::string>& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::vector<std::string> quoted;
  for (const std::string& a : args) quoted.push_back("'" + a + "'");
  const std::string command =
      absl::StrCat("timeout -k 5 120 ", PSREC_BINARY, " ", absl::StrJoin(quoted, " "), " >",
                   out.string(), " 2>", err.string());
  const int status = std::system(command.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
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
    absl::StatusOr<JobData> job = PrepareData(&*config);
    ASSERT_TRUE(job.ok()) << job.status();
    auto store = LocalStore::Create(config->tables(), config->optimizer(), config->seed());
    ASSERT_TRUE(store.ok()) << store.status();
    auto trainer = Trainer::Create(*config, &job->data, store->get());
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    uint64_t step = 0;
    for (uint32_t epoch = 0; epoch < 2; ++epoch) {
      auto stats = (*trainer)->Train(EpochOrder(job->split.train, config->seed(), epoch), step, {});
      ASSERT_TRUE(stats.ok()) << stats.status();
      step += stats->batches;
    }
    std::vector<float> pred(job->split.test.size());
    ASSERT_TRUE((*trainer)->Predict(job->split.test, absl::MakeSpan(pred)).ok());
    expected_ = Score(job->data, job->split.test, pred);
    WriteCheckpoint(*config, **store);
  }

  static void TearDownTestSuite() {
    fs::remove_all(fs::path(::testing::TempDir()) / absl::StrCat("psrec_eval_", ::getpid()));
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
    return absl::StrFormat("epochs_done=2 test_mae=%.17g test_rmse=%.17g\n", expected_.mae,
                           expected_.rmse);
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
};

fs::path* EvalTest::data_ = nullptr;
fs::path* EvalTest::root_ = nullptr;
TestMetrics EvalTest::expected_;

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
  EXPECT_THAT(json,
              HasSubstr(absl::StrFormat("\"final\": {\"test_mae\": %.17g, \"test_rmse\": %.17g}",
                                        expected_.mae, expected_.rmse)));
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

// The suite is CoordinatorRecoveryTest: tests/integration/recovery_test.cc has RecoveryTest.
#include "coordinator/recovery.h"

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_util::FreshDir;
using testing_util::ReadFile;

JobConfig Config(uint32_t epochs = 5) {
  JobConfig config = TestConfig();
  config.set_epochs(epochs);
  return config;
}

RecoveryOptions Options(const fs::path& dir) {
  RecoveryOptions options;
  options.checkpoint_dir = dir.string();
  options.checkpoint_every = absl::ZeroDuration();
  return options;
}

std::set<std::string> Entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// `point` restarts from checkpoint `checkpoint` ("": fresh rows) after `epochs_done` epochs.
void ExpectRestartAt(const absl::StatusOr<RestartPoint>& point, const std::string& checkpoint,
                     uint32_t epochs_done) {
  ASSERT_TRUE(point.ok()) << point.status();
  EXPECT_EQ(point->checkpoint, checkpoint);
  EXPECT_EQ(point->epochs_done, epochs_done);
}

// Writes checkpoints after epochs 1 .. `epochs` of generation 1 under `dir`.
void WriteCheckpoints(const fs::path& dir, uint32_t epochs, const JobConfig& config = Config()) {
  FakeShards shards;
  Recovery recovery(config, Options(dir), &shards);
  ASSERT_TRUE(recovery.Start().ok());
  for (uint32_t e = 1; e <= epochs; ++e) {
    absl::StatusOr<std::string> trouble = recovery.Checkpoint(e, 1, 10 * e);
    ASSERT_TRUE(trouble.ok()) << trouble.status();
    EXPECT_EQ(*trouble, "");
  }
}

TEST(CoordinatorRecoveryTest, ACheckpointIsCompleteWithItsManifestAndOnlyTheNewestAreKept) {
  const fs::path dir = FreshDir("recovery_prune");
  RecoveryOptions options = Options(dir);
  options.keep_checkpoints = 2;
  FakeShards shards(3);
  Recovery recovery(Config(), options, &shards);
  ExpectRestartAt(recovery.Start(), "", 0);
  ASSERT_TRUE(recovery.Checkpoint(1, 1, 10).ok());
  // A copy an operator made is not the coordinator's to delete.
  fs::copy(dir / "ckpt-000001", dir / "ckpt-000001.bak");
  ASSERT_TRUE(recovery.Checkpoint(2, 1, 20).ok());
  ASSERT_TRUE(recovery.Checkpoint(3, 2, 30).ok());
  EXPECT_THAT(Entries(dir), ElementsAre("ckpt-000001.bak", "ckpt-000002", "ckpt-000003"));
  const std::string manifest = ReadFile(dir / "ckpt-000003" / "MANIFEST");
  EXPECT_THAT(manifest, HasSubstr("epochs_done: 3"));
  EXPECT_THAT(manifest, HasSubstr("clock: 30"));
  EXPECT_THAT(manifest, HasSubstr("shard-00002-of-00003.rows"));
  ExpectRestartAt(recovery.LatestCheckpoint(), "ckpt-000003", 3);
  absl::MutexLock lock(&shards.mu);
  EXPECT_THAT(shards.checkpoints, ElementsAre("ckpt-000001", "ckpt-000002", "ckpt-000003"));
}

TEST(CoordinatorRecoveryTest, ANewJobRefusesADirectoryThatHoldsCheckpointsUnlessResumed) {
  const fs::path dir = FreshDir("recovery_resume");
  WriteCheckpoints(dir, 2);
  FakeShards shards;
  Recovery fresh(Config(), Options(dir), &shards);
  const absl::Status refused = fresh.Start().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr(" already holds checkpoints ("));
  EXPECT_THAT(refused.message(), HasSubstr("pass --resume"));
  RecoveryOptions options = Options(dir);
  options.resume = true;
  Recovery resumed(Config(), options, &shards);
  ExpectRestartAt(resumed.Start(), "ckpt-000002", 2);
}

TEST(CoordinatorRecoveryTest, ResumingWithoutACheckpointStartsFromFreshRows) {
  RecoveryOptions options = Options(FreshDir("recovery_resume_empty"));
  options.resume = true;
  FakeShards shards;
  Recovery recovery(Config(), options, &shards);
  ExpectRestartAt(recovery.Start(), "", 0);
}

TEST(CoordinatorRecoveryTest, ACheckpointOfAnotherJobIsRefused) {
  const fs::path dir = FreshDir("recovery_other_job");
  WriteCheckpoints(dir, 2);
  JobConfig other = Config();
  other.set_dim(32);
  FillTableSpecs(&other);
  FakeShards shards;
  const absl::Status differs = Recovery(other, Options(dir), &shards).LatestCheckpoint().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(differs)) << differs;
  EXPECT_THAT(
      differs.message(),
      HasSubstr("was written by a job with another config (checkpoint vs job): dim: 30 vs 32"));
  const absl::Status longer =
      Recovery(Config(1), Options(dir), &shards).LatestCheckpoint().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(longer)) << longer;
  EXPECT_THAT(longer.message(), HasSubstr("holds 2 epochs, more than the job's 1"));
}

TEST(CoordinatorRecoveryTest, ARollbackGoesToTheLatestCheckpointUntilTheyAreTooMany) {
  const fs::path dir = FreshDir("recovery_rollback");
  WriteCheckpoints(dir, 2);
  RecoveryOptions options = Options(dir);
  options.max_rollbacks = 2;
  FakeShards shards;
  Recovery recovery(Config(), options, &shards);
  for (int i = 0; i < 2; ++i) {
    ExpectRestartAt(recovery.BeginRollback("worker 1 lost"), "ckpt-000002", 2);
  }
  const absl::Status gave_up = recovery.BeginRollback("worker 0 lost").status();
  EXPECT_TRUE(absl::IsAborted(gave_up)) << gave_up;
  EXPECT_EQ(gave_up.message(), "giving up after 2 rollbacks; the last because worker 0 lost");
  EXPECT_EQ(recovery.rollbacks(), 3u);
}

TEST(CoordinatorRecoveryTest, WithoutACheckpointDirectoryARollbackStartsFromFreshRows) {
  FakeShards shards;
  Recovery recovery(Config(), RecoveryOptions(), &shards);
  ExpectRestartAt(recovery.BeginRollback("worker 1 lost"), "", 0);
}

// A shard that failed, aborted or went away leaves rows no one can vouch for: roll back. A
// checkpoint that failed on disk leaves the rows intact: train on. A shard that never answered
// within fail_after ends the job.
TEST(CoordinatorRecoveryTest, AFailedCheckpointRollsBackOnlyWhenAShardFailedIt) {
  const fs::path dir = FreshDir("recovery_failed_checkpoint");
  FakeShards shards;
  Recovery recovery(Config(), Options(dir), &shards);
  ASSERT_TRUE(recovery.Start().ok());
  ASSERT_TRUE(recovery.Checkpoint(1, 1, 10).ok());
  auto fail_with = [&](absl::Status error) {
    absl::MutexLock lock(&shards.mu);
    shards.checkpoint_error = std::move(error);
  };
  fail_with(absl::UnavailableError("ps shard 1 (a:1) is gone"));
  absl::StatusOr<std::string> trouble = recovery.Checkpoint(2, 1, 20);
  ASSERT_TRUE(trouble.ok()) << trouble.status();
  EXPECT_EQ(*trouble, "checkpoint failed: ps shard 1 (a:1) is gone");
  fail_with(absl::ResourceExhaustedError("no space left on device"));
  trouble = recovery.Checkpoint(2, 1, 20);
  ASSERT_TRUE(trouble.ok()) << trouble.status();
  EXPECT_EQ(*trouble, "");
  fail_with(absl::DeadlineExceededError("Checkpoint to ps shard 0 failed"));
  const absl::Status ended = recovery.Checkpoint(2, 1, 20).status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(ended)) << ended;
  EXPECT_EQ(ended.message(), "Checkpoint to ps shard 0 failed (no answer within --fail_after=30s)");
  EXPECT_EQ(recovery.LatestCheckpoint()->checkpoint, "ckpt-000001");
}

TEST(CoordinatorRecoveryTest, ACheckpointIsDueAfterTheLastEpochOrOnceCheckpointEveryHasPassed) {
  const fs::path dir = FreshDir("recovery_due");
  FakeShards shards;
  RecoveryOptions hourly = Options(dir);
  hourly.checkpoint_every = absl::Hours(1);
  Recovery recovery(Config(), hourly, &shards);
  ASSERT_TRUE(recovery.Start().ok());
  EXPECT_FALSE(recovery.CheckpointDue(/*last=*/false));
  EXPECT_TRUE(recovery.CheckpointDue(/*last=*/true));
  Recovery every_epoch(Config(), Options(dir), &shards);
  EXPECT_TRUE(every_epoch.CheckpointDue(/*last=*/false));
  Recovery no_dir(Config(), RecoveryOptions(), &shards);
  EXPECT_FALSE(no_dir.CheckpointDue(/*last=*/true));
  Recovery disabled(Config(), Options(dir), nullptr);
  EXPECT_FALSE(disabled.enabled());
  EXPECT_FALSE(disabled.CheckpointDue(/*last=*/true));
}

TEST(CoordinatorRecoveryTest, RestoreAsksEveryShardForTheGeneration) {
  FakeShards shards;
  Recovery recovery(Config(), RecoveryOptions(), &shards);
  ASSERT_TRUE(recovery.Restore(3, "ckpt-000002", /*keep_rows=*/false, 17, {0, 1}).ok());
  absl::MutexLock lock(&shards.mu);
  ASSERT_EQ(shards.restored.size(), 1u);
  EXPECT_EQ(shards.restored[0].generation, 3u);
  EXPECT_EQ(shards.restored[0].checkpoint, "ckpt-000002");
  EXPECT_FALSE(shards.restored[0].keep_rows);
  EXPECT_EQ(shards.restored[0].clock, 17u);
  EXPECT_THAT(shards.restored[0].workers, ElementsAre(0, 1));
}

}  // namespace
}  // namespace psrec

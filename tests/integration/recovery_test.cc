// Failure tests: real `psrec train` clusters on 127.0.0.1 lose a worker or a server to kill -9, or
// have a server stopped with SIGSTOP, and the job must finish (or fail in time, naming the server)
// with its checkpoints intact. Data is the small synthetic file of tests/test_util.h.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using namespace testing_util;  // NOLINT(google-build-using-namespace): the tests' own helpers

constexpr int kEpochs = kRecoveryEpochs;

struct Outcome {
  int exit_code = -1;
  double seconds_after_signal = 0;
  std::string err;
};

// Waits up to a minute for the coordinator to log epoch `at` of the job logging to DIR/stderr.txt.
bool WaitForEpoch(const fs::path& dir, int at) {
  return WaitForText(dir / "stderr.txt", absl::StrCat("epoch ", at, "/", kEpochs, " train loss"));
}

// The coordinator's address from `psrec train`'s OUT/cluster.json.
std::string CoordinatorAddress(const fs::path& out_dir) {
  std::smatch m;
  const std::string cluster = ReadFile(out_dir / "cluster.json");
  if (!std::regex_search(
          cluster, m,
          std::regex("\"role\": \"coordinator\", \"pid\": [0-9]+, \"address\": \"([^\"]+)\""))) {
    ADD_FAILURE() << "no coordinator in " << cluster;
    return "";
  }
  return m[1].str();
}

// Runs the job (RecoveryFlags, then `extra`) and sends `signo` to `role` once the coordinator has
// logged epoch `at`.
Outcome RunAndSignal(const fs::path& dir, const std::string& role, int signo, int at,
                     int timeout_s = 120, const std::vector<std::string>& extra = {}) {
  Background job(Concat(RecoveryFlags(dir), extra), dir / "stderr.txt", dir / "stdout.txt");
  Outcome outcome;
  if (!WaitForEpoch(dir, at)) return outcome;
  const int pid = PidOf(dir / "out", role);
  EXPECT_GT(pid, 0);
  if (pid > 0) {
    EXPECT_EQ(kill(pid, signo), 0) << role;
  }
  const absl::Time signalled = absl::Now();
  outcome.exit_code = job.Wait(timeout_s);
  outcome.seconds_after_signal = absl::ToDoubleSeconds(absl::Now() - signalled);
  outcome.err = ReadFile(dir / "stderr.txt");
  if (signo == SIGSTOP && pid > 0) kill(pid, SIGKILL);  // the launcher's SIGCONT may have raced
  return outcome;
}

double CleanMae(const fs::path& dir) {
  const Result clean = RunPsrec(RecoveryFlags(dir), dir);
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(clean.err.find("rolling back"), std::string::npos) << clean.err;
  return FinalMae(dir / "metrics.json");
}

struct KilledRun {
  fs::path dir;
  std::string err;
};

// Runs the job clean in FreshDir(`name` + "_clean"), then again in FreshDir(`name` + "_killed")
// with `role` killed (kill -9) once epoch 8 is logged. The second run must still finish, with the
// clean run's final MAE (within 0.01) and every text of `logged` in its stderr.
KilledRun ExpectTheJobSurvivesKilling(const std::string& name, const std::string& role,
                                      const std::vector<std::string>& logged,
                                      const std::vector<std::string>& extra = {}) {
  const double clean = CleanMae(FreshDir(name + "_clean"));
  const fs::path dir = FreshDir(name + "_killed");
  const Outcome killed = RunAndSignal(dir, role, SIGKILL, 8, 120, extra);
  EXPECT_EQ(killed.exit_code, 0) << killed.err;
  for (const std::string& text : logged) {
    EXPECT_NE(killed.err.find(text), std::string::npos) << text << " not in\n" << killed.err;
  }
  if (killed.exit_code == 0) {
    EXPECT_NEAR(FinalMae(dir / "metrics.json"), clean, 0.01);
  }
  return {dir, killed.err};
}

TEST(RecoveryTest, AKilledWorkerIsDroppedAndTheOthersFinishTheJob) {
  const KilledRun killed = ExpectTheJobSurvivesKilling(
      "worker", "worker1", {"lost: nothing from it for", "rolling back to checkpoint"});
  // The metrics file has every epoch once, the redone ones included.
  EXPECT_NE(ReadFile(killed.dir / "metrics.json").find(absl::StrCat("\"epoch\": ", kEpochs)),
            std::string::npos);
}

TEST(RecoveryTest, AKilledServerIsRestartedAndTheJobRollsBackToItsCheckpoint) {
  ExpectTheJobSurvivesKilling("server", "ps1",
                              {"restarting it on port", "rolling back to checkpoint"});
}

// kill -9 of the coordinator mid-job: the launcher starts it again on its port with --auto_resume,
// it continues from its last complete checkpoint, and the servers and workers still alive rejoin
// it (the workers registering with the new incarnation; the servers restored to the checkpoint).
// --fail_after leaves the workers room to wait for the restart on a loaded machine.
TEST(RecoveryTest, AKilledCoordinatorIsRestartedAndTheLiveWorkersAndServersRejoinIt) {
  const KilledRun killed = ExpectTheJobSurvivesKilling(
      "coordinator", "coordinator",
      {"was killed by signal 9; restarting it on port", "--auto_resume: continuing after epoch",
       "the coordinator restarted"},
      {"--fail_after=10s"});
  // Both live workers, registered again, and the servers restored to the checkpoint.
  EXPECT_TRUE(std::regex_search(
      killed.err, std::regex("--auto_resume: continuing after epoch [0-9]+[\\s\\S]*generation "
                             "[0-9]+: workers \\[0,1\\], rows from ckpt-0000")))
      << killed.err;
}

TEST(RecoveryTest, AStoppedServerFailsTheJobInTimeAndTheCheckpointsSurvive) {
  const fs::path dir = FreshDir("server_stopped");
  const Outcome stopped = RunAndSignal(dir, "ps1", SIGSTOP, 4, 60);
  EXPECT_NE(stopped.exit_code, 0) << stopped.err;
  // --fail_after=3s counted from the first failed check (checks every 0.5 s, each waiting up to
  // 1 s), then up to 2 s each to stop the servers and to see workers leave: about 9 s, with room
  // for a loaded machine.
  EXPECT_LT(stopped.seconds_after_signal, 20) << stopped.err;
  EXPECT_TRUE(std::regex_search(stopped.err, std::regex("ps shard 1 \\(127.0.0.1:[0-9]+\\)")))
      << stopped.err;
  // The last complete checkpoint is whole: it evaluates, and the job resumes from it.
  const Result eval = RunPsrec({"eval", "--checkpoint=" + (dir / "ckpt").string()}, dir);
  EXPECT_EQ(eval.exit_code, 0) << eval.err;
  std::vector<std::string> resume = RecoveryFlags(dir);
  resume.push_back("--resume");
  const Result resumed = RunPsrec(resume, dir);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("--resume: continuing after epoch"), std::string::npos) << resumed.err;
}

std::vector<std::string> With(std::vector<std::string> flags, const std::string& flag,
                              const std::string& value) {
  for (std::string& f : flags) {
    if (f.rfind(flag + "=", 0) == 0) f = flag + "=" + value;
  }
  return flags;
}

TEST(RecoveryTest, ACheckpointOfTwoShardsRestoresIntoThreeWithIdenticalPredictions) {
  const fs::path dir = FreshDir("reshard");
  // The mlp with 64 hidden units: its 769 dense weights are 2 rows (common/model.h's DenseRows),
  // which move between shards too.
  std::vector<std::string> flags =
      With(With(RecoveryFlags(dir), "--epochs", "3"), "--model", "mlp");
  flags.push_back("--hidden=64");
  const Result two = RunPsrec(flags, dir);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const std::string trained = FinalLine(dir / "metrics.json");
  std::vector<std::string> three = With(flags, "--ps_shards", "3");
  three = With(three, "--metrics_out", (dir / "three.json").string());
  three.push_back("--resume");
  const Result restored = RunPsrec(three, dir);
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_NE(restored.err.find("(3 epochs, 2 shards) into shard 2 of 3"), std::string::npos)
      << restored.err;
  // Evaluated by three shards, re-partitioned from two: the same metrics to the last digit.
  EXPECT_EQ(FinalLine(dir / "three.json"), trained);
  // And by no cluster at all.
  const Result eval = RunPsrec({"eval", "--checkpoint=" + (dir / "ckpt").string()}, dir);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NEAR(FinalMae(dir / "three.json"), FinalMae(dir / "metrics.json"), 0);
}

TEST(RecoveryTest, ResumeRefusesACorruptCheckpointAndLeavesItAsItWas) {
  const fs::path dir = FreshDir("corrupt");
  ASSERT_EQ(RunPsrec(With(RecoveryFlags(dir), "--epochs", "2"), dir).exit_code, 0);
  const fs::path file = dir / "ckpt" / "ckpt-000002" / "shard-00001-of-00002.rows";
  const std::string bytes = ReadFile(file);
  ASSERT_GT(bytes.size(), 100u);
  std::ofstream(file, std::ios::binary) << bytes.substr(0, bytes.size() - 7);
  std::vector<std::string> resume = With(RecoveryFlags(dir), "--epochs", "4");
  resume.push_back("--resume");
  const Result r = RunPsrec(resume, dir, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(file.string()), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(file), bytes.substr(0, bytes.size() - 7));
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "ckpt-000003"));
}

TEST(RecoveryTest, ANewJobRefusesADirectoryThatHoldsCheckpoints) {
  const fs::path dir = FreshDir("occupied");
  ASSERT_EQ(RunPsrec(With(RecoveryFlags(dir), "--epochs", "1"), dir).exit_code, 0);
  const Result again = RunPsrec(With(RecoveryFlags(dir), "--epochs", "1"), dir, 60);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("pass --resume"), std::string::npos) << again.err;
  EXPECT_TRUE(fs::exists(dir / "ckpt" / "ckpt-000001" / "MANIFEST"));
}

// --auto_resume starts fresh in an empty directory, resumes this job's checkpoints, and refuses
// another job's (here: another seed), naming the checkpoint, with nothing written.
TEST(RecoveryTest, AutoResumeContinuesItsOwnJobAndRefusesAnothersCheckpoints) {
  const fs::path dir = FreshDir("auto_resume");
  const std::vector<std::string> one =
      Concat(With(RecoveryFlags(dir), "--epochs", "1"), {"--auto_resume"});
  const Result fresh = RunPsrec(one, dir, 60);
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_NE(fresh.err.find("--auto_resume: no complete checkpoint in"), std::string::npos)
      << fresh.err;
  const Result resumed = RunPsrec(With(one, "--epochs", "2"), dir, 60);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("--auto_resume: continuing after epoch 1"), std::string::npos)
      << resumed.err;
  const Result other = RunPsrec(Concat(With(one, "--epochs", "3"), {"--seed=7"}), dir, 60);
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find((dir / "ckpt" / "ckpt-000002").string()), std::string::npos)
      << other.err;
  EXPECT_NE(other.err.find("another config"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("exited with status 2"), std::string::npos) << other.err;
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "ckpt-000003"));
}

// The job runs with --min_workers=2, so once worker1 is lost it cannot go on with worker0 alone:
// the rollback waits for a replacement. Without that, the test would race the end of the job
// (the remaining epochs take well under a second) against the replacement's start. The
// replacement is started right after the kill. If its Register lands before the lease runs out,
// it waits for the place; if after, it finds the place free. Either way it takes it, and both
// workers redo the epoch from the last checkpoint. (The other way a replacement joins, between
// epochs with the rows kept, is tested by
// CoordinatorServiceTest.AReplacementJoinsBetweenEpochsWithTheRowsKept.)
TEST(RecoveryTest, AReplacementWorkerTakesTheLostOnesPlaceBetweenEpochs) {
  const fs::path dir = FreshDir("replacement");
  std::vector<std::string> flags = RecoveryFlags(dir);
  flags.push_back("--min_workers=2");
  Background job(flags, dir / "stderr.txt", dir / "stdout.txt");
  ASSERT_TRUE(WaitForEpoch(dir, 4));
  const int pid = PidOf(dir / "out", "worker1");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  Background replacement(
      {"worker", "--config=" + (dir / "out" / "job.textproto").string(),
       "--coordinator=" + CoordinatorAddress(dir / "out"), "--name=replacement", "--fail_after=3s"},
      dir / "replacement.txt");
  EXPECT_EQ(job.Wait(120), 0) << ReadFile(dir / "stderr.txt");
  EXPECT_EQ(replacement.Wait(30), 0) << ReadFile(dir / "replacement.txt");
  const std::string log = ReadFile(dir / "stderr.txt");
  EXPECT_NE(log.find("lost: nothing from it for"), std::string::npos) << log;
  EXPECT_NE(log.find("fewer than --min_workers=2"), std::string::npos) << log;
  EXPECT_NE(log.find("registered: replacement"), std::string::npos) << log;
  // Both workers make the generation after the rollback.
  EXPECT_TRUE(std::regex_search(
      log, std::regex("generation [0-9]+: workers \\[0,1\\], rows from ckpt-0000[0-9][0-9]")))
      << log;
  EXPECT_NE(ReadFile(dir / "replacement.txt").find("the coordinator says the job is done"),
            std::string::npos);
}

// A worker that comes when the job is over is told so and exits 0, instead of failing on a
// coordinator that is gone. To be sure it arrives before the end, the job's only worker is stopped
// (SIGSTOP) once registered, and continued once the late worker waits for its place: the one-minute
// lease leaves the late worker a minute to start, where it needs a fraction of a second.
TEST(RecoveryTest, AWorkerThatComesWhenTheJobEndsIsToldItIsDoneAndExitsZero) {
  const fs::path dir = FreshDir("late");
  Background job({"train", "--ps_shards=1", "--workers=1", "--data=" + SyntheticData().string(),
                  "--split=user_time", "--model=bias", "--dim=8", "--epochs=2",
                  "--worker_lease=60s", "--out_dir=" + (dir / "out").string()},
                 dir / "stderr.txt", dir / "stdout.txt");
  ASSERT_TRUE(WaitForText(dir / "stderr.txt", "worker 0 registered"));
  const int pid = PidOf(dir / "out", "worker0");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  Background late({"worker", "--config=" + (dir / "out" / "job.textproto").string(),
                   "--coordinator=" + CoordinatorAddress(dir / "out"), "--name=late"},
                  dir / "late.txt");
  const bool waited = WaitForText(dir / "stderr.txt", "worker late waits for a place");
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  ASSERT_TRUE(waited);
  EXPECT_EQ(job.Wait(120), 0) << ReadFile(dir / "stderr.txt");
  EXPECT_EQ(late.Wait(30), 0) << ReadFile(dir / "late.txt");
  EXPECT_NE(ReadFile(dir / "late.txt").find("is already done; nothing to do"), std::string::npos)
      << ReadFile(dir / "late.txt");
  EXPECT_NE(ReadFile(dir / "stderr.txt").find("came after the job ended"), std::string::npos);
}

}  // namespace
}  // namespace psrec

// Integration tests: real `psrec` processes (parameter servers, workers, coordinator) talking real
// gRPC on 127.0.0.1. Data is a small synthetic MovieLens file, so each run takes a second or two.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using namespace testing_util;  // NOLINT(google-build-using-namespace): the tests' own helpers
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

// Every epoch's train loss in a metrics file, as text.
std::vector<std::string> TrainLosses(const fs::path& metrics) {
  const std::string json = ReadFile(metrics);
  const std::regex loss("\"train_loss\": ([0-9.eE+-]+)");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), loss); it != std::sregex_iterator();
       ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

// `psrec train` in-process and with one worker under SYNC over 1 and 3 servers give the same final
// metrics and every epoch's train loss to the last bit. `name` names the case's directory. Returns
// the directory of the 1-server run's checkpoints.
fs::path ExpectClusterReproducesInProcess(const std::string& name,
                                          const std::vector<std::string>& flags) {
  const fs::path dir = FreshDir("equivalence_" + name);
  const Result local =
      RunPsrec(Concat({"train", "--metrics_out=" + (dir / "local.json").string()}, flags), dir);
  EXPECT_EQ(local.exit_code, 0) << local.err;
  for (const std::string shards : {"1", "3"}) {
    const fs::path metrics = dir / ("dist" + shards + ".json");
    const Result dist =
        RunPsrec(Concat({"train", "--ps_shards=" + shards, "--workers=1", "--consistency=sync",
                         "--out_dir=" + (dir / ("out" + shards)).string(),
                         "--checkpoint_dir=" + (dir / ("ckpt" + shards)).string(),
                         "--metrics_out=" + metrics.string()},
                        flags),
                 dir);
    EXPECT_EQ(dist.exit_code, 0) << dist.err;
    EXPECT_EQ(FinalLine(metrics), FinalLine(dir / "local.json"))
        << name << " with " << shards << " shards";
    EXPECT_EQ(TrainLosses(metrics), TrainLosses(dir / "local.json"))
        << name << " with " << shards << " shards";
    EXPECT_EQ(TrainLosses(metrics).size(), 3u) << name;
    EXPECT_NE(dist.out.find("test_mae="), std::string::npos) << dist.out;
  }
  return dir / "ckpt1";
}

TEST(ClusterTest, OneWorkerSyncReproducesTheInProcessTrainerBitwise) {
  ExpectClusterReproducesInProcess("dot", JobFlags("dot"));
  ExpectClusterReproducesInProcess("mlp", JobFlags("mlp"));
  // Dense weights over kDenseRowFloats split into rows (hidden 64: 769 weights, 2 rows of 385), on
  // different shards of 3.
  ExpectClusterReproducesInProcess("mlp_split", Concat(JobFlags("mlp"), {"--hidden=64"}));
  // The ranking loss too: its negatives are keyed by (seed, step, example) in every process.
  ExpectClusterReproducesInProcess("bpr",
                                   Concat(JobFlags("bias"), {"--loss=bpr", "--negatives=2"}));
}

// The genre model's tables shard, train, checkpoint and score like the others: the cluster
// reproduces the in-process run, and eval and recommend read its checkpoint.
TEST(ClusterTest, GenreModelReproducesTheInProcessTrainerAndScoresItsCheckpoint) {
  const fs::path ckpt = ExpectClusterReproducesInProcess(
      "genre", Concat(JobFlags("genre"), {"--data=" + GenreData().string()}));
  const fs::path dir = ckpt.parent_path();
  const Result eval = RunPsrec({"eval", "--checkpoint=" + ckpt.string()}, dir);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(eval.out, m, std::regex("test_mae=([0-9.eE+-]+)"))) << eval.out;
  EXPECT_NEAR(std::stod(m[1]), FinalMae(dir / "dist1.json"), 1e-9) << eval.out;
  const Result recommend =
      RunPsrec({"recommend", "--checkpoint=" + ckpt.string(), "--user=3", "--k=5"}, dir);
  EXPECT_EQ(recommend.exit_code, 0) << recommend.err;
}

TEST(ClusterTest, GenreModelWithoutAMoviesFileFailsNamingIt) {
  const fs::path dir = FreshDir("genre_no_movies");
  const Result local = RunPsrec(Concat({"train"}, JobFlags("genre")), dir);
  EXPECT_EQ(local.exit_code, 1) << local.err;
  EXPECT_NE(local.err.find("genre model"), std::string::npos) << local.err;
  EXPECT_NE(local.err.find("movies.csv"), std::string::npos) << local.err;
}

// Every "recall_at_10", "ndcg_at_10" and "coverage_at_10" of a metrics file, in order: each
// epoch's, the popularity baseline's, the final ones.
std::vector<std::string> RankingFields(const fs::path& metrics) {
  const std::string json = ReadFile(metrics);
  static const std::regex field("\"(recall|ndcg|coverage)_at_10\": ([0-9.eE+-]+)");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), field);
       it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[0]);
  }
  return out;
}

std::string BaselineLine(const fs::path& metrics) {
  const std::string json = ReadFile(metrics);
  const size_t begin = json.find("\"baseline\"");
  if (begin == std::string::npos) return "(no baseline in " + metrics.string() + ")";
  return json.substr(begin, json.find('\n', begin) - begin);
}

// Issue 13: the workers rank their own users and the coordinator adds up their exact sums, so one
// worker in SYNC mode gives the in-process run's ranking metrics bit for bit, every epoch. Under
// seed_time most test users are cold (no training rating) and are ranked all the same. The
// popularity baseline does not depend on training: two ASYNC workers give it too.
TEST(ClusterTest, RankingMetricsEqualTheInProcessRunsBitwise) {
  const fs::path dir = FreshDir("ranking");
  const std::vector<std::string> flags = {"--data=" + SyntheticData().string(), "--split=seed_time",
                                          "--model=mlp", "--epochs=2", "--dim=8"};
  const Result local =
      RunPsrec(Concat({"train", "--metrics_out=" + (dir / "local.json").string()}, flags), dir);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.err, HasSubstr("popularity baseline: Recall@10 "));
  EXPECT_THAT(local.err, ContainsRegex("epoch 2/2 [^\n]*  Recall@10 0"));
  const std::vector<std::string> want = RankingFields(dir / "local.json");
  ASSERT_EQ(want.size(), 3u * 4) << ReadFile(dir / "local.json");  // 2 epochs, baseline, final
  const Result one = RunPsrec(Concat({"train", "--ps_shards=1", "--workers=1", "--consistency=sync",
                                      "--out_dir=" + (dir / "one").string(),
                                      "--metrics_out=" + (dir / "one.json").string()},
                                     flags),
                              dir);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(RankingFields(dir / "one.json"), want);
  EXPECT_EQ(FinalLine(dir / "one.json"), FinalLine(dir / "local.json"));
  const Result two = RunPsrec(Concat({"train", "--ps_shards=2", "--workers=2",
                                      "--consistency=async", "--out_dir=" + (dir / "two").string(),
                                      "--metrics_out=" + (dir / "two.json").string()},
                                     flags),
                              dir);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(BaselineLine(dir / "two.json"), BaselineLine(dir / "local.json"));
  EXPECT_EQ(RankingFields(dir / "two.json").size(), want.size());
}

TEST(ClusterTest, TwoServersTwoWorkersTrainInEveryMode) {
  const fs::path dir = FreshDir("modes");
  const Result local = RunPsrec(
      Concat({"train", "--metrics_out=" + (dir / "local.json").string()}, JobFlags()), dir);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const double local_mae = FinalMae(dir / "local.json");
  for (const std::string mode : {"sync", "async", "ssp"}) {
    const fs::path metrics = dir / (mode + ".json");
    const fs::path out = dir / ("out_" + mode);
    const Result r = RunPsrec(
        Concat({"train", "--ps_shards=2", "--workers=2", "--consistency=" + mode, "--staleness=2",
                "--out_dir=" + out.string(), "--metrics_out=" + metrics.string()},
               JobFlags()),
        dir);
    ASSERT_EQ(r.exit_code, 0) << mode << "\n" << r.err;
    // Two workers see the same data in a different order; they must learn about as well.
    EXPECT_NEAR(FinalMae(metrics), local_mae, 0.05) << mode;
    // Every child's log lines carry its role.
    for (const char* role : {"[ps0]", "[ps1]", "[coordinator]", "[worker0]", "[worker1]"}) {
      EXPECT_NE(r.err.find(role), std::string::npos) << mode << " " << role;
    }
    // The metrics list every process of the job with its memory, the servers from their Stats.
    const std::string json = ReadFile(metrics);
    for (const char* name : {"coordinator", "ps0", "ps1", "worker0", "worker1"}) {
      EXPECT_TRUE(std::regex_search(
          json, std::regex(absl::StrCat("\"name\": \"", name, "\", \"peak_rss_bytes\": [1-9]"))))
          << mode << " " << name << " in " << json;
    }
    const std::string cluster = ReadFile(out / "cluster.json");
    for (const char* role : {"ps0", "ps1", "coordinator", "worker0", "worker1"}) {
      const std::regex entry(absl::StrCat("\"role\": \"", role, "\", \"pid\": ([0-9]+)"));
      std::smatch m;
      ASSERT_TRUE(std::regex_search(cluster, m, entry)) << role << " in " << cluster;
      // Every child is gone once the launcher returns.
      EXPECT_NE(kill(std::stoi(m[1]), 0), 0) << role << " outlived the launcher";
    }
    EXPECT_TRUE(std::regex_search(
        cluster,
        std::regex("\"role\": \"ps1\", \"pid\": [0-9]+, \"address\": \"127.0.0.1:[0-9]+\"")))
        << cluster;
  }
}

TEST(ClusterTest, WorkerWithADifferentConfigIsRefused) {
  const fs::path dir = FreshDir("mismatch");
  Background ps(Concat({"ps", "--shard=0", "--num_shards=1", "--host=127.0.0.1", "--port=0",
                        "--port_file=" + (dir / "ps.port").string()},
                       JobFlags()),
                dir / "ps.log");
  const std::string ps_address = WaitForAddress(dir / "ps.port");
  Background coordinator(
      Concat({"coordinator", "--ps=" + ps_address, "--host=127.0.0.1", "--port=0",
              "--port_file=" + (dir / "coord.port").string(), "--workers=1"},
             JobFlags()),
      dir / "coordinator.log");
  const std::string coordinator_address = WaitForAddress(dir / "coord.port");
  std::vector<std::string> flags = JobFlags();
  flags.back() = "--dim=9";
  const Result r =
      RunPsrec(Concat({"worker", "--coordinator=" + coordinator_address}, flags), dir, 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("dim: 8 vs 9"), std::string::npos) << r.err;
}

TEST(ClusterTest, ServerWithADifferentConfigIsRefused) {
  const fs::path dir = FreshDir("ps_mismatch");
  Background ps(Concat({"ps", "--shard=0", "--num_shards=1", "--host=127.0.0.1", "--port=0",
                        "--port_file=" + (dir / "ps.port").string(), "--optimizer=sgd"},
                       JobFlags()),
                dir / "ps.log");
  const std::string ps_address = WaitForAddress(dir / "ps.port");
  const Result r = RunPsrec(
      Concat({"coordinator", "--ps=" + ps_address, "--host=127.0.0.1", "--port=0", "--workers=1"},
             JobFlags()),
      dir, 60);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("ps shard 0 (" + ps_address + ")"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("optimizer"), std::string::npos) << r.err;
}

TEST(ClusterTest, AFailingChildStopsTheWholeCluster) {
  const fs::path dir = FreshDir("failing");
  const fs::path bad = dir / "bad";
  fs::create_directories(bad);
  // Every timestamp is the same, so seed_time leaves no training rating: the data prepares, and
  // the coordinator fails once the workers have split it.
  std::ofstream(bad / "ratings.csv")
      << "userId,movieId,rating,timestamp\n1,2,4.0,10\n1,3,3.5,10\n2,2,1.0,10\n";
  const Result r = RunPsrec({"train", "--ps_shards=2", "--workers=2", "--split=seed_time",
                             "--data=" + bad.string(), "--out_dir=" + (dir / "out").string()},
                            dir, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("leaves 0 training"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("coordinator"), std::string::npos) << r.err;
}

// The launcher prepares the data before it starts a child, so a bad line fails the run at once,
// naming the file and line.
TEST(ClusterTest, BadDataFailsBeforeAnyChildStarts) {
  const fs::path dir = FreshDir("bad_data");
  const fs::path bad = dir / "bad";
  fs::create_directories(bad);
  std::ofstream(bad / "ratings.csv") << "userId,movieId,rating,timestamp\n1,2,4.0,10\n1,3,9.5,11\n";
  const Result r = RunPsrec({"train", "--ps_shards=2", "--workers=2", "--data=" + bad.string(),
                             "--out_dir=" + (dir / "out").string()},
                            dir, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ratings.csv:3"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out" / "cluster.json")) << r.err;
}

TEST(CommandLineTest, BadFlagsAreUsageErrorsThatNameTheFlag) {
  const fs::path dir = FreshDir("cli");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  for (const Case& c :
       {Case{{"train", "--epochs=abc"}, "--epochs=abc"},
        Case{{"train", "--bogus=1"}, "--bogus is not a flag of this subcommand"},
        Case{{"train", "--port=5"}, "--port is not a flag of this subcommand"},
        Case{{"train", "--model=deep"}, "--model=deep is not one of dot, bias, mlp"},
        Case{{"worker"}, "--coordinator=HOST:PORT is required"},
        Case{{"nonsense"}, "unknown subcommand 'nonsense'"}}) {
    const Result r = RunPsrec(c.args, dir, 30);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  const Result help = RunPsrec({"train", "--help"}, dir, 30);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--batch_size (default: \"512\")"), std::string::npos) << help.out;
}

}  // namespace
}  // namespace psrec

// Integration tests: real `psrec` processes (parameter servers, workers, coordinator) talking real
// gRPC on 127.0.0.1. Data is a small synthetic MovieLens file, so each run takes a second or two.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/rng.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path FreshDir(const std::string& name) {
  // ctest runs each test in its own process, two at a time: a directory per process keeps one test
  // from rewriting the data another is reading.
  const fs::path dir =
      fs::path(::testing::TempDir()) / absl::StrCat("psrec_integration_", ::getpid()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Users with a taste offset, items with a quality offset, half-star ratings, increasing timestamps.
fs::path SyntheticData() {
  static const fs::path dir = [] {
    const fs::path d = FreshDir("data");
    std::ofstream out(d / "ratings.csv");
    out << "userId,movieId,rating,timestamp\n";
    Rng rng(2024);
    int64_t t = 1'000'000;
    for (int u = 1; u <= 150; ++u) {
      const float taste = rng.Unit() * 2 - 1;
      for (int k = 0; k < 40; ++k) {
        const int item = 1 + static_cast<int>(rng.Below(120));
        const float quality = static_cast<float>(item % 7) * 0.25f - 0.75f;
        const float r = std::clamp(3.5f + taste + quality + (rng.Unit() - 0.5f), 0.5f, 5.0f);
        out << u << "," << item << "," << std::round(r * 2) / 2 << "," << t++ << "\n";
      }
    }
    return d;
  }();
  return dir;
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

// Runs `psrec args...` to completion (killed after `timeout_s`), capturing stdout and stderr.
Result RunPsrec(const std::vector<std::string>& args, const fs::path& dir, int timeout_s = 120) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::vector<std::string> quoted;
  for (const std::string& a : args) quoted.push_back("'" + a + "'");
  const std::string command =
      absl::StrCat("timeout -k 5 ", timeout_s, " ", PSREC_BINARY, " ", absl::StrJoin(quoted, " "),
                   " >", out.string(), " 2>", err.string());
  const int status = std::system(command.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

// A psrec process in the background, killed when it goes out of scope.
class Background {
 public:
  Background(const std::vector<std::string>& args, const fs::path& log) {
    pid_ = fork();
    if (pid_ == 0) {
      freopen(log.c_str(), "w", stderr);
      std::vector<char*> argv = {const_cast<char*>(PSREC_BINARY)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(PSREC_BINARY, argv.data());
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_;
};

// Waits for a server started with --port_file to report its port.
std::string WaitForAddress(const fs::path& port_file) {
  for (int i = 0; i < 300; ++i) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return absl::StrCat("127.0.0.1:", port);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "no port in " << port_file;
  return "";
}

// The text of the metrics file's "final" object: compared as text, it checks bitwise equality.
std::string FinalLine(const fs::path& metrics) {
  const std::string json = ReadFile(metrics);
  const size_t at = json.find("\"final\"");
  return at == std::string::npos ? "(no final in " + metrics.string() + ")" : json.substr(at);
}

double FinalMae(const fs::path& metrics) {
  std::smatch m;
  const std::string text = FinalLine(metrics);
  if (!std::regex_search(text, m, std::regex("\"test_mae\": ([0-9.eE+-]+)"))) return NAN;
  return std::stod(m[1]);
}

std::vector<std::string> JobFlags(const std::string& extra_model = "bias") {
  return {"--data=" + SyntheticData().string(), "--split=user_time", "--model=" + extra_model,
          "--epochs=3", "--dim=8"};
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(ClusterTest, OneWorkerSyncReproducesTheInProcessTrainerBitwise) {
  for (const std::string model : {"dot", "mlp"}) {
    const fs::path dir = FreshDir("equivalence_" + model);
    const Result local = RunPsrec(
        Concat({"train", "--metrics_out=" + (dir / "local.json").string()}, JobFlags(model)), dir);
    ASSERT_EQ(local.exit_code, 0) << local.err;
    for (const std::string shards : {"1", "3"}) {
      const fs::path metrics = dir / ("dist" + shards + ".json");
      const Result dist =
          RunPsrec(Concat({"train", "--ps_shards=" + shards, "--workers=1", "--consistency=sync",
                           "--out_dir=" + (dir / ("out" + shards)).string(),
                           "--metrics_out=" + metrics.string()},
                          JobFlags(model)),
                   dir);
      ASSERT_EQ(dist.exit_code, 0) << dist.err;
      EXPECT_EQ(FinalLine(metrics), FinalLine(dir / "local.json"))
          << model << " with " << shards << " shards";
      EXPECT_NE(dist.out.find("test_mae="), std::string::npos) << dist.out;
    }
  }
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
  std::ofstream(bad / "ratings.csv") << "userId,movieId,rating,timestamp\n1,2,4.0,10\n1,3,9.5,11\n";
  const Result r = RunPsrec({"train", "--ps_shards=2", "--workers=2", "--data=" + bad.string(),
                             "--out_dir=" + (dir / "out").string()},
                            dir, 60);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("ratings.csv:3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("coordinator"), std::string::npos) << r.err;
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

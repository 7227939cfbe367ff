// The operator endpoints of real psrec processes (deploy/NOTES-for-cpp.md): a 2x2 cluster, each
// role started on its own with --health_port and --metrics_port, under mutual TLS and the token,
// scraped while it trains; and each role's answer to SIGTERM in `psrec train`'s local cluster.
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops_test_util.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using namespace testing_util;  // NOLINT(google-build-using-namespace): the tests' own helpers
using testing::HasSubstr;

constexpr int kServing = 1;

// Polls `done` every 20 ms for up to a minute: the tests wait for events, seen through the
// endpoints, never for a fixed time.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 3000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// One role of the cluster, with its own health and metrics ports.
struct Role {
  std::string name;
  int health_port = UnusedPort();
  int metrics_port = UnusedPort();
  std::unique_ptr<Background> process;

  std::vector<std::string> OpsFlags() const {
    return {absl::StrCat("--health_port=", health_port),
            absl::StrCat("--metrics_port=", metrics_port)};
  }
};

// A 2x2 job started role by role, long enough (many small batches) to be scraped while it runs.
class Cluster {
 public:
  explicit Cluster(const fs::path& dir) : dir_(dir) {
    const fs::path certs = TestCertificates();
    std::ofstream(dir / "token") << "ops-test-token\n";
    std::ofstream(dir / "job.textproto") << "num_shards: 2\n";
    common_ = Concat(
        {"--config=" + (dir / "job.textproto").string(), "--data=" + SyntheticData().string(),
         "--split=user_time", "--model=bias", "--dim=8", "--batch_size=16", "--epochs=200",
         "--workers=2", "--tls_cert=" + (certs / "server.pem").string(),
         "--tls_key=" + (certs / "server.key").string(),
         "--tls_ca=" + (certs / "ca_a.pem").string(),
         "--auth_token_file=" + (dir / "token").string()},
        {});
  }

  void Start() {
    std::vector<std::string> ps;
    for (int shard = 0; shard < 2; ++shard) {
      const fs::path port_file = dir_ / absl::StrCat("ps", shard, ".port");
      Launch(absl::StrCat("ps", shard),
             {"ps", absl::StrCat("--shard=", shard), "--num_shards=2", "--host=127.0.0.1",
              "--port=0", "--port_file=" + port_file.string()});
      ps.push_back(WaitForAddress(port_file));
    }
    const fs::path port_file = dir_ / "coordinator.port";
    Launch("coordinator", {"coordinator", "--ps=" + absl::StrJoin(ps, ","), "--host=127.0.0.1",
                           "--port=0", "--port_file=" + port_file.string()});
    const std::string coordinator = WaitForAddress(port_file);
    for (int w = 0; w < 2; ++w) {
      Launch(absl::StrCat("worker", w),
             {"worker", "--coordinator=" + coordinator, absl::StrCat("--name=worker", w)});
    }
  }

  std::vector<Role>& roles() { return roles_; }
  const fs::path& dir() const { return dir_; }

 private:
  void Launch(const std::string& name, std::vector<std::string> args) {
    Role role;
    role.name = name;
    args = Concat(Concat(std::move(args), common_), role.OpsFlags());
    role.process = std::make_unique<Background>(args, dir_ / (name + ".log"));
    roles_.push_back(std::move(role));
  }

  fs::path dir_;
  std::vector<std::string> common_;
  std::vector<Role> roles_;
};

// The series each role must expose, with a counter (or count) that grows while the job trains.
struct Expected {
  std::string prefix;  // the role's names start with it
  std::vector<std::string> series;
  std::string growing;
};

const Expected& ExpectedOf(const std::string& role) {
  static const Expected ps = {
      "ps",
      {"psrec_ps_rows{table=\"user_embedding\"}", "psrec_ps_bytes{table=\"user_embedding\"}",
       "psrec_ps_pulls_total", "psrec_ps_pushes_total",
       "psrec_ps_request_seconds_count{rpc=\"StreamPull\"}"},
      "psrec_ps_pulls_total"};
  static const Expected worker = {"worker",
                                  {"psrec_worker_ratings_total", "psrec_worker_loss",
                                   "psrec_worker_batch_seconds_count{phase=\"pull\"}",
                                   "psrec_worker_batch_seconds_count{phase=\"compute\"}",
                                   "psrec_worker_batch_seconds_count{phase=\"push\"}"},
                                  "psrec_worker_ratings_total"};
  static const Expected coordinator = {
      "coordinator",
      {"psrec_coordinator_epoch", "psrec_coordinator_test_mae", "psrec_coordinator_test_rmse",
       "psrec_coordinator_generation", "psrec_coordinator_rollbacks_total",
       "psrec_coordinator_workers_alive"},
      "psrec_coordinator_epoch"};
  if (role.rfind("ps", 0) == 0) return ps;
  return role.rfind("worker", 0) == 0 ? worker : coordinator;
}

TEST(OpsIntegrationTest, ProbesAnswerPlaintextWhileTheMainPortsNeedTlsAndTheToken) {
  Cluster cluster(FreshDir("ops_probes"));
  cluster.Start();
  for (const Role& role : cluster.roles()) {
    EXPECT_TRUE(Eventually([&] {
      return CheckHealth(role.health_port, "readiness").status == kServing;
    })) << role.name
        << "\n"
        << ReadFile(cluster.dir() / (role.name + ".log"));
    EXPECT_EQ(CheckHealth(role.health_port, "").status, kServing) << role.name;
    EXPECT_EQ(CheckHealth(role.health_port, "psrec").code, grpc::StatusCode::NOT_FOUND)
        << role.name;
  }
  // The main port itself refuses a plaintext call without the token: gRPC's health service there
  // answers only over TLS, with the token.
  const int main_port = std::stoi(ReadFile(cluster.dir() / "ps0.port"));
  EXPECT_NE(CheckHealth(main_port, "").code, grpc::StatusCode::OK);
}

// Scrapes `role`'s metrics at 127.0.0.1:`port` until its growing series is above 0, checks that
// it has every series it must, and that the growing one grows.
void ExpectMetricsGrow(const std::string& role, int port) {
  const Expected& expected = ExpectedOf(role);
  std::string text;
  ASSERT_TRUE(Eventually([&] {
    text = Scrape(port);
    return Sample(text, expected.growing) > 0;
  })) << role
      << " never counted " << expected.growing << ":\n"
      << text;
  for (const std::string& series : expected.series) {
    EXPECT_FALSE(std::isnan(Sample(text, series))) << role << " has no " << series << " in\n"
                                                   << text;
  }
  const double first = Sample(text, expected.growing);
  EXPECT_TRUE(Eventually([&] { return Sample(Scrape(port), expected.growing) > first; }))
      << role << ": " << expected.growing << " stayed at " << first;
}

TEST(OpsIntegrationTest, EveryRoleExposesItsMetricsAndTheCountersGrow) {
  Cluster cluster(FreshDir("ops_metrics"));
  cluster.Start();
  for (const Role& role : cluster.roles()) ExpectMetricsGrow(role.name, role.metrics_port);
  // A scrape reads the server's counts directly; it is not a Stats request.
  const std::string ps0 = Scrape(cluster.roles()[0].metrics_port);
  EXPECT_TRUE(std::isnan(Sample(ps0, "psrec_ps_request_seconds_count{rpc=\"Stats\"}"))) << ps0;
  const std::string coordinator = Scrape(cluster.roles()[2].metrics_port);
  EXPECT_GT(Sample(coordinator, "psrec_coordinator_test_mae"), 0) << coordinator;
  EXPECT_EQ(Sample(coordinator, "psrec_coordinator_workers_alive"), 2) << coordinator;
}

// `psrec train --cluster_metrics_port`: every child of the local cluster serves its metrics, and
// cluster.json says where.
TEST(OpsIntegrationTest, ALocalClusterListsEveryProcesssMetricsAddressInClusterJson) {
  const fs::path dir = FreshDir("ops_cluster_metrics");
  const int first_port = UnusedPorts(5);
  ASSERT_GT(first_port, 0) << "no 5 consecutive free ports";
  Background job(
      {"train", "--ps_shards=2", "--workers=2", "--data=" + SyntheticData().string(),
       "--split=user_time", "--model=bias", "--dim=8", "--batch_size=16", "--epochs=200",
       "--out_dir=" + (dir / "out").string(), absl::StrCat("--cluster_metrics_port=", first_port)},
      dir / "stderr.txt");
  // The launcher writes cluster.json once it has started every child.
  std::string json;
  ASSERT_TRUE(Eventually([&] {
    json = ReadFile(dir / "out" / "cluster.json");
    return json.find("\"worker1\"") != std::string::npos;
  })) << ReadFile(dir / "stderr.txt");
  const std::regex entry(
      R"re("role": "([a-z0-9]+)", "pid": [0-9]+, "address": "[^"]*", "metrics": "127\.0\.0\.1:([0-9]+)")re");
  std::vector<std::pair<std::string, int>> listed;
  for (std::sregex_iterator it(json.begin(), json.end(), entry), end; it != end; ++it) {
    listed.emplace_back((*it)[1], std::stoi((*it)[2]));
  }
  ASSERT_EQ(listed.size(), 5U) << json;
  for (size_t k = 0; k < listed.size(); ++k) {
    EXPECT_EQ(listed[k].second, first_port + static_cast<int>(k)) << json;
    ExpectMetricsGrow(listed[k].first, listed[k].second);
  }
}

// SIGTERM as Kubernetes sends it, in `psrec train`'s local cluster, whose launcher restarts a
// server that exits with an error and leaves a worker killed by a signal dead.
constexpr int kEpochs = kRecoveryEpochs;

// Runs the job (RecoveryFlags, then `extra`), sends SIGTERM to `role` once epoch 5 is done, and
// returns the job's exit code and log.
Result RunAndTerminate(const fs::path& dir, const std::string& role,
                       const std::vector<std::string>& extra = {}) {
  Background job(Concat(RecoveryFlags(dir), extra), dir / "stderr.txt", dir / "stdout.txt");
  Result result;
  if (!WaitForText(dir / "stderr.txt", absl::StrCat("epoch 5/", kEpochs, " train loss"))) {
    return result;
  }
  const int pid = PidOf(dir / "out", role);
  EXPECT_GT(pid, 0);
  if (pid > 0) {
    EXPECT_EQ(kill(pid, SIGTERM), 0) << role;
  }
  result.exit_code = job.Wait(180);
  result.err = ReadFile(dir / "stderr.txt");
  return result;
}

// RunAndTerminate in a fresh directory `name`: the job still finishes (exit 0, with a final MAE),
// and its log holds each of `logged`.
void ExpectFinishesAfterSigterm(const std::string& name, const std::string& role,
                                const std::vector<std::string>& extra,
                                const std::vector<std::string>& logged) {
  const fs::path dir = FreshDir(name);
  const Result r = RunAndTerminate(dir, role, extra);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& text : logged) EXPECT_THAT(r.err, HasSubstr(text));
  EXPECT_GT(FinalMae(dir / "metrics.json"), 0);
}

TEST(OpsSigtermTest, AServerExits143IsRestartedAndTheJobRollsBack) {
  ExpectFinishesAfterSigterm(
      "sigterm_ps", "ps1", {},
      {"shutting down on SIGTERM", "exiting on SIGTERM with",
       "exited with status 143; restarting it on port", "rolling back to checkpoint"});
}

TEST(OpsSigtermTest, AWorkerLeavesAndTheOtherFinishesTheJob) {
  // A lease far longer than the test's wait: only the worker's Leave lets the job go on.
  ExpectFinishesAfterSigterm(
      "sigterm_worker", "worker1", {"--worker_lease=1000s"},
      {"leaving the job on SIGTERM; told the coordinator", "(worker1) left: SIGTERM",
       // Killed by the signal: 143 to Kubernetes, and not "succeeded", so its index is replaced.
       "was killed by signal 15", "the coordinator redoes its work with the other workers"});
}

// The coordinator on SIGTERM finishes the epoch under way, writes a final checkpoint there and
// exits 143; the launcher starts it again with --auto_resume, it continues from that checkpoint,
// and the live workers register with it again. Checkpoints are otherwise never due here
// (--checkpoint_every_secs=1000), so the one it resumes from is the final one. --fail_after leaves
// the workers room to wait for the restart on a loaded machine.
TEST(OpsSigtermTest, ACoordinatorCheckpointsExits143AndItsRestartResumesWithTheLiveWorkers) {
  const fs::path dir = FreshDir("sigterm_coordinator");
  const Result r =
      RunAndTerminate(dir, "coordinator", {"--checkpoint_every_secs=1000", "--fail_after=10s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("stopping on SIGTERM: a final checkpoint"));
  EXPECT_THAT(r.err, HasSubstr("exited with status 143; restarting it on port"));
  EXPECT_THAT(r.err, HasSubstr("registering with it again"));
  std::smatch stopped, resumed;
  ASSERT_TRUE(std::regex_search(r.err, stopped,
                                std::regex("stopped on a signal after epoch ([0-9]+), its "
                                           "checkpoint written")))
      << r.err;
  ASSERT_TRUE(std::regex_search(r.err, resumed,
                                std::regex("--auto_resume: continuing after epoch ([0-9]+)")))
      << r.err;
  EXPECT_EQ(stopped[1].str(), resumed[1].str()) << r.err;
  EXPECT_TRUE(
      fs::exists(dir / "ckpt" / absl::StrFormat("ckpt-%06d", std::stoi(stopped[1])) / "MANIFEST"));
  EXPECT_NE(ReadFile(dir / "metrics.json").find(absl::StrCat("\"epoch\": ", kEpochs)),
            std::string::npos);
}

}  // namespace
}  // namespace psrec

#include "app/cpu_placement.h"

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using namespace testing_util;  // NOLINT(google-build-using-namespace): the tests' own helpers
using testing::Each;
using testing::ElementsAre;
using testing::HasSubstr;

// Children in cluster.json's order: servers, the coordinator (never bound), workers.
TEST(PlaceChildrenTest, SyncPutsEachServerOnItsWorkersCpu) {
  EXPECT_THAT(PlaceChildren({0, 1}, 1, 1, SYNC), ElementsAre(0, -1, 0));
  EXPECT_THAT(PlaceChildren({0, 1}, 2, 2, SYNC), ElementsAre(0, 1, -1, 0, 1));
}

TEST(PlaceChildrenTest, AsyncAndSspPutServersOnTheCpusAfterTheWorkers) {
  EXPECT_THAT(PlaceChildren({0, 1}, 1, 1, ASYNC), ElementsAre(1, -1, 0));
  EXPECT_THAT(PlaceChildren({0, 1}, 2, 2, ASYNC), ElementsAre(0, 1, -1, 0, 1));
  EXPECT_THAT(PlaceChildren({0, 1, 2, 3}, 2, 2, SSP), ElementsAre(2, 3, -1, 0, 1));
}

TEST(PlaceChildrenTest, UsesOnlyTheAllowedCpusRoundRobin) {
  EXPECT_THAT(PlaceChildren({2, 5, 7}, 2, 3, ASYNC), ElementsAre(2, 5, -1, 2, 5, 7));
  EXPECT_THAT(PlaceChildren({4, 6}, 3, 1, SYNC), ElementsAre(4, 6, 4, -1, 4));
}

TEST(PlaceChildrenTest, BindsNothingOnFewerThanTwoCpus) {
  EXPECT_THAT(PlaceChildren({}, 2, 2, ASYNC), ElementsAre(-1, -1, -1, -1, -1));
  EXPECT_THAT(PlaceChildren({3}, 1, 2, SYNC), Each(-1));
}

TEST(AllowedCpusTest, ListsThisProcesssCpusInOrder) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  EXPECT_TRUE(std::is_sorted(cpus.begin(), cpus.end()));
  EXPECT_THAT(ReadFile(fs::path("/proc/self/status")),
              HasSubstr(absl::StrCat("Cpus_allowed_list:\t", cpus.front())));
}

// The CPUs `pid` may run on, as /proc gives them ("0", "0-1", "0,2").
std::string CpusAllowed(int pid) {
  std::smatch m;
  const std::string status = ReadFile(fs::path("/proc") / std::to_string(pid) / "status");
  if (!std::regex_search(status, m, std::regex("Cpus_allowed_list:\t([0-9,-]+)"))) return "?";
  return m[1];
}

// A real local cluster: each bound child runs on exactly the CPU cluster.json gives it, and the
// coordinator on every CPU the launcher may use.
void ExpectBoundAsListed(const std::string& consistency) {
  if (AllowedCpus().size() < 2) GTEST_SKIP() << "one CPU: nothing is bound";
  const fs::path dir = FreshDir("cpu_placement_" + consistency);
  Background job(
      {"train", "--ps_shards=1", "--workers=1", "--consistency=" + consistency,
       "--data=" + SyntheticData().string(), "--split=user_time", "--model=bias", "--dim=8",
       "--batch_size=16", "--epochs=200", "--out_dir=" + (dir / "out").string()},
      dir / "stderr.txt");
  // The launcher writes cluster.json once it has started every child; a child's affinity is set
  // before it runs psrec, so it holds from then on. The first batch shows the job running.
  ASSERT_TRUE(WaitForText(dir / "out" / "cluster.json", "\"worker0\""));
  ASSERT_TRUE(WaitForText(dir / "stderr.txt", "first batch trained"));
  const std::string json = ReadFile(dir / "out" / "cluster.json");
  const std::regex entry(
      R"re("role": "([a-z0-9]+)", "pid": ([0-9]+), "address": "[^"]*"(, "cpu": ([0-9]+))?)re");
  std::vector<std::pair<std::string, std::string>> listed;  // role, cpu ("" when unbound)
  for (std::sregex_iterator it(json.begin(), json.end(), entry), end; it != end; ++it) {
    const std::string role = (*it)[1];
    const std::string cpu = (*it)[4];
    listed.emplace_back(role, cpu);
    const int pid = std::stoi((*it)[2]);
    EXPECT_EQ(CpusAllowed(pid), cpu.empty() ? CpusAllowed(getpid()) : cpu) << role << "\n" << json;
  }
  const std::vector<int> cpus = AllowedCpus();
  const std::vector<int> want = PlaceChildren(cpus, 1, 1, consistency == "sync" ? SYNC : ASYNC);
  ASSERT_EQ(listed.size(), 3U) << json;
  EXPECT_EQ(listed[0], std::make_pair(std::string("ps0"), std::to_string(want[0])));
  EXPECT_EQ(listed[1], std::make_pair(std::string("coordinator"), std::string()));
  EXPECT_EQ(listed[2], std::make_pair(std::string("worker0"), std::to_string(want[2])));
}

TEST(CpuAffinityIntegrationTest, SyncBindsTheServerAndTheWorkerToOneCpu) {
  ExpectBoundAsListed("sync");
}

TEST(CpuAffinityIntegrationTest, AsyncBindsTheServerAndTheWorkerToTwoCpus) {
  ExpectBoundAsListed("async");
}

TEST(CpuAffinityIntegrationTest, NoneBindsNothing) {
  const fs::path dir = FreshDir("cpu_placement_none");
  const Result r =
      RunPsrec({"train", "--ps_shards=1", "--workers=1", "--cpu_affinity=none",
                "--data=" + SyntheticData().string(), "--split=user_time", "--model=bias",
                "--dim=8", "--epochs=1", "--out_dir=" + (dir / "out").string()},
               dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ReadFile(dir / "out" / "cluster.json"), testing::Not(HasSubstr("\"cpu\"")));
  EXPECT_THAT(r.err, testing::Not(HasSubstr(", cpu ")));
}

TEST(CpuAffinityIntegrationTest, AnUnknownValueIsAUsageError) {
  const fs::path dir = FreshDir("cpu_placement_bad");
  const Result r = RunPsrec(
      {"train", "--ps_shards=1", "--cpu_affinity=spread", "--data=" + SyntheticData().string()},
      dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--cpu_affinity=spread: want auto or none"));
}

}  // namespace
}  // namespace psrec

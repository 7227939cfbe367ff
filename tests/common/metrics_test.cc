// The metrics handles and MetricsServer (common/metrics.cc), scraped over HTTP on loopback.
#include "common/metrics.h"

#include <cmath>

#include "common/ops_flags.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ops_test_util.h"

namespace psrec {
namespace {

using testing::HasSubstr;
using testing_util::Sample;
using testing_util::Scrape;

TEST(MetricsTest, HandlesOfOneSeriesShareIt) {
  Counter a = GetCounter("psrec_test_shared_total", "help");
  Counter b = GetCounter("psrec_test_shared_total", "other help");
  a.Increment();
  b.Increment(2);
  b.Increment(-5);  // a counter never goes down
  EXPECT_EQ(a.Value(), 3);
  Gauge g = GetGauge("psrec_test_gauge", "help", {{"table", "t"}});
  g.Set(-1.5);
  EXPECT_EQ(GetGauge("psrec_test_gauge", "help", {{"table", "t"}}).Value(), -1.5);
  EXPECT_EQ(GetGauge("psrec_test_gauge", "help", {{"table", "u"}}).Value(), 0);
  Counter none;  // a default handle does nothing
  none.Increment();
  EXPECT_EQ(none.Value(), 0);
}

TEST(MetricsTest, ServesTheRegistryAfterTheRefreshes) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(0);
  ASSERT_TRUE(server.ok()) << server.status();
  Histogram h = GetHistogram("psrec_test_seconds", "help", {{"rpc", "Pull"}});
  h.Observe(0.003);
  h.Observe(100);
  Timed(h, [] { return 0; });
  int refreshes = 0;
  Gauge rows = GetGauge("psrec_test_rows", "Rows held.");
  (*server)->AddRefresh([&] { rows.Set(++refreshes); });

  const std::string text = Scrape((*server)->port());
  EXPECT_THAT(text, HasSubstr("# TYPE psrec_test_seconds histogram"));
  EXPECT_EQ(Sample(text, "psrec_test_seconds_count{rpc=\"Pull\"}"), 3);
  EXPECT_EQ(Sample(text, "psrec_test_seconds_bucket{rpc=\"Pull\",le=\"+Inf\"}"), 3);
  EXPECT_EQ(Sample(text, "psrec_test_seconds_bucket{rpc=\"Pull\",le=\"30\"}"), 2);
  EXPECT_EQ(Sample(text, "psrec_test_rows"), 1);
  EXPECT_EQ(Sample(Scrape((*server)->port()), "psrec_test_rows"), 2);
  EXPECT_TRUE(std::isnan(Sample(text, "psrec_test_absent")));
}

TEST(MetricsTest, FlagValuesAndABusyPort) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> off =
      StartIfRequested<MetricsServer>("metrics_port", 0);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
  EXPECT_TRUE(
      absl::IsInvalidArgument(StartIfRequested<MetricsServer>("metrics_port", -1).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(StartIfRequested<MetricsServer>("metrics_port", 70000).status()));
  absl::StatusOr<std::unique_ptr<MetricsServer>> first = MetricsServer::Start(0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(absl::IsUnavailable(MetricsServer::Start((*first)->port()).status()));
}

}  // namespace
}  // namespace psrec

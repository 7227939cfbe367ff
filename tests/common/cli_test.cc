#include "common/cli.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/job_config.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(int32_t, hidden);
ABSL_DECLARE_FLAG(int32_t, negatives);
ABSL_DECLARE_FLAG(int32_t, workers);

namespace psrec {
namespace {

TEST(FlagAtLeastTest, AWholeNumberBelowTheBoundIsRefusedNamingFlagValueAndBound) {
  EXPECT_TRUE(FlagAtLeast("k", 1, 1).ok());
  EXPECT_TRUE(FlagAtLeast("k", std::numeric_limits<int64_t>::max(), 1).ok());
  const absl::Status zero = FlagAtLeast("k", 0, 1);
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.message(), "--k=0 must be at least 1");
  EXPECT_EQ(FlagAtLeast("shards", -3, 2).message(), "--shards=-3 must be at least 2");
}

TEST(FlagAtLeastTest, ADurationBelowTheBoundIsRefusedInAbslDurationFormat) {
  EXPECT_TRUE(FlagAtLeast("lease", absl::Milliseconds(100), absl::Milliseconds(100)).ok());
  EXPECT_TRUE(FlagAtLeast("lease", absl::InfiniteDuration(), absl::Milliseconds(100)).ok());
  const absl::Status short_lease =
      FlagAtLeast("lease", absl::Milliseconds(99), absl::Milliseconds(100));
  EXPECT_EQ(short_lease.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_lease.message(), "--lease=99ms must be at least 100ms");
  EXPECT_EQ(FlagAtLeast("lease", -absl::Seconds(2), absl::ZeroDuration()).message(),
            "--lease=-2s must be at least 0");
}

// The job's whole-number flags are checked with it before they reach the config's unsigned fields.
TEST(FlagAtLeastTest, JobConfigFlagsBelowOneAreRefusedByName) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_hidden, 0);
  EXPECT_EQ(JobConfigFromFlags({"hidden"}).status().message(), "--hidden=0 must be at least 1");
  absl::SetFlag(&FLAGS_hidden, 10);
  absl::SetFlag(&FLAGS_negatives, -1);
  EXPECT_EQ(JobConfigFromFlags({"negatives"}).status().message(),
            "--negatives=-1 must be at least 1");
  absl::SetFlag(&FLAGS_negatives, 1);
  absl::SetFlag(&FLAGS_workers, 0);
  EXPECT_EQ(JobConfigFromFlags({"workers"}).status().message(), "--workers=0 must be at least 1");
  absl::SetFlag(&FLAGS_workers, 1);
  EXPECT_TRUE(JobConfigFromFlags({"hidden", "negatives", "workers"}).ok()) << "1 is allowed";
}

}  // namespace
}  // namespace psrec

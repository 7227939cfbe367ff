#include "app/recovery_flags.h"

#include <cstdint>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(int32_t, keep_checkpoints);
ABSL_DECLARE_FLAG(absl::Duration, worker_lease);
ABSL_DECLARE_FLAG(absl::Duration, fail_after);

namespace psrec {
namespace {

JobConfig TwoWorkers() {
  JobConfig config;
  config.set_num_workers(2);
  return config;
}

TEST(RecoveryOptionsFromFlagsTest, TheDefaultsAreAccepted) {
  absl::FlagSaver saver;
  absl::StatusOr<RecoveryOptions> options = RecoveryOptionsFromFlags(TwoWorkers());
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->keep_checkpoints, 3u);
  EXPECT_EQ(options->worker_lease, absl::Seconds(10));
  EXPECT_EQ(options->fail_after, absl::Seconds(30));
}

TEST(RecoveryOptionsFromFlagsTest, BoundsAreCheckedNamingTheFlagAndItsValue) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_keep_checkpoints, 0);
  EXPECT_EQ(RecoveryOptionsFromFlags(TwoWorkers()).status().message(),
            "--keep_checkpoints=0 must be at least 1");
  absl::SetFlag(&FLAGS_keep_checkpoints, 1);
  absl::SetFlag(&FLAGS_worker_lease, absl::Milliseconds(99));
  EXPECT_EQ(RecoveryOptionsFromFlags(TwoWorkers()).status().message(),
            "--worker_lease=99ms must be at least 100ms");
  absl::SetFlag(&FLAGS_worker_lease, absl::Milliseconds(100));
  absl::SetFlag(&FLAGS_fail_after, absl::Milliseconds(50));
  EXPECT_EQ(RecoveryOptionsFromFlags(TwoWorkers()).status().message(),
            "--fail_after=50ms must be at least 100ms");
  absl::SetFlag(&FLAGS_fail_after, absl::Milliseconds(100));
  absl::StatusOr<RecoveryOptions> options = RecoveryOptionsFromFlags(TwoWorkers());
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->keep_checkpoints, 1u);
  EXPECT_EQ(options->worker_lease, absl::Milliseconds(100));
  EXPECT_EQ(options->fail_after, absl::Milliseconds(100));
}

}  // namespace
}  // namespace psrec

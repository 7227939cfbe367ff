#include "common/log.h"

#include "gtest/gtest.h"

namespace psrec {
namespace {

TEST(CheckTest, APassingCheckDoesNothingAndAFailingOneAbortsWithItsMessage) {
  int evaluated = 0;
  PSREC_CHECK(++evaluated == 1) << "never printed";
  EXPECT_EQ(evaluated, 1);
  EXPECT_DEATH(PSREC_CHECK(evaluated == 2) << "the detail",
               "check failed: evaluated == 2 the detail");
}

// A bare `if` inside the macro would take the `else` for itself.
TEST(CheckTest, AnElseAfterACheckBelongsToTheOuterIf) {
  int branch = 0;
  const bool outer = false;
  if (outer)
    PSREC_CHECK(true);
  else
    branch = 2;
  EXPECT_EQ(branch, 2);
}

}  // namespace
}  // namespace psrec

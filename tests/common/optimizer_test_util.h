// The optimizer tests' shared helper. Header-only, because tests/CMakeLists.txt builds each
// *_test.cc on its own.
#ifndef PSREC_TESTS_COMMON_OPTIMIZER_TEST_UTIL_H_
#define PSREC_TESTS_COMMON_OPTIMIZER_TEST_UTIL_H_

#include "absl/status/status.h"
#include "common/optimizer_config.h"
#include "gtest/gtest.h"

namespace psrec {
namespace testing_util {

// An optimizer of `kind` at rate `lr` with ResolveOptimizerConfig's defaults filled in; a failure
// to resolve fails the test.
inline OptimizerConfig Resolved(OptimizerKind kind, float lr) {
  OptimizerConfig config;
  config.set_kind(kind);
  config.set_lr(lr);
  absl::Status status = ResolveOptimizerConfig(&config);
  EXPECT_TRUE(status.ok()) << status;
  return config;
}

}  // namespace testing_util
}  // namespace psrec

#endif  // PSREC_TESTS_COMMON_OPTIMIZER_TEST_UTIL_H_

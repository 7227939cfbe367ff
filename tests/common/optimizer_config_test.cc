#include "common/optimizer_config.h"

#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/optimizer_test_util.h"

namespace psrec {
namespace {

using ::testing::HasSubstr;
using testing_util::Resolved;

TEST(ResolveOptimizerConfigTest, AdamDefaults) {
  const OptimizerConfig config = Resolved(ADAM, 0.01f);
  EXPECT_EQ(config.beta1(), 0.9f);
  EXPECT_EQ(config.beta2(), 0.999f);
  EXPECT_EQ(config.epsilon(), 1e-8f);
  EXPECT_EQ(config.lr(), 0.01f);
}

TEST(ResolveOptimizerConfigTest, AdagradDefaults) {
  const OptimizerConfig config = Resolved(ADAGRAD, 0.01f);
  EXPECT_EQ(config.epsilon(), 1e-10f);
  EXPECT_EQ(config.initial_accumulator(), 0.1f);
}

TEST(ResolveOptimizerConfigTest, KeepsSetValues) {
  OptimizerConfig config;
  config.set_kind(ADAM);
  config.set_lr(0.5f);
  config.set_beta1(0.5f);
  config.set_beta2(0.75f);
  config.set_epsilon(1e-3f);
  ASSERT_TRUE(ResolveOptimizerConfig(&config).ok());
  EXPECT_EQ(config.beta1(), 0.5f);
  EXPECT_EQ(config.beta2(), 0.75f);
  EXPECT_EQ(config.epsilon(), 1e-3f);
}

TEST(ResolveOptimizerConfigTest, SgdGetsNoAdamOrAdagradFields) {
  const OptimizerConfig config = Resolved(SGD, 0.01f);
  EXPECT_EQ(config.beta1(), 0.0f);
  EXPECT_EQ(config.epsilon(), 0.0f);
  EXPECT_EQ(config.initial_accumulator(), 0.0f);
}

struct BadConfig {
  const char* name;
  OptimizerKind kind;
  float lr;
  float beta1, beta2, epsilon, initial_accumulator;
  const char* message;  // a part of the expected error
};

class ResolveOptimizerConfigErrorTest : public ::testing::TestWithParam<BadConfig> {};

TEST(ResolveOptimizerConfigTest, AnExplicitZeroIsKept) {
  OptimizerConfig config;
  config.set_kind(ADAM);
  config.set_lr(0.1f);
  config.set_beta1(0.0f);  // RMSProp-like Adam: a legitimate request
  ASSERT_TRUE(ResolveOptimizerConfig(&config).ok());
  EXPECT_EQ(config.beta1(), 0.0f);
  EXPECT_FLOAT_EQ(config.beta2(), 0.999f);
}

TEST_P(ResolveOptimizerConfigErrorTest, Rejects) {
  const BadConfig& bad = GetParam();
  OptimizerConfig config;
  config.set_kind(bad.kind);
  config.set_lr(bad.lr);
  // Zero here means "not set": each case sets only the fields it is about.
  if (bad.beta1 != 0) config.set_beta1(bad.beta1);
  if (bad.beta2 != 0) config.set_beta2(bad.beta2);
  if (bad.epsilon != 0) config.set_epsilon(bad.epsilon);
  if (bad.initial_accumulator != 0) config.set_initial_accumulator(bad.initial_accumulator);
  const absl::Status status = ResolveOptimizerConfig(&config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(bad.message));
}

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

INSTANTIATE_TEST_SUITE_P(
    All, ResolveOptimizerConfigErrorTest,
    ::testing::Values(
        BadConfig{"Unspecified", OPTIMIZER_UNSPECIFIED, 0.1f, 0, 0, 0, 0,
                  "optimizer.kind must be SGD, ADAGRAD or ADAM, got OPTIMIZER_UNSPECIFIED = 0"},
        BadConfig{"UnknownKind", static_cast<OptimizerKind>(7), 0.1f, 0, 0, 0, 0,
                  "optimizer.kind must be SGD, ADAGRAD or ADAM, got unknown value 7"},
        BadConfig{"ZeroLr", SGD, 0.0f, 0, 0, 0, 0, "optimizer.lr must be finite and > 0, got 0"},
        BadConfig{"NegativeLr", ADAM, -0.5f, 0, 0, 0, 0,
                  "optimizer.lr must be finite and > 0, got -0.5"},
        BadConfig{"InfiniteLr", ADAGRAD, kInf, 0, 0, 0, 0,
                  "optimizer.lr must be finite and > 0, got inf"},
        BadConfig{"NaNLr", SGD, kNaN, 0, 0, 0, 0, "optimizer.lr must be finite and > 0, got nan"},
        BadConfig{"NegativeBeta1", ADAM, 0.1f, -0.5f, 0, 0, 0,
                  "optimizer.beta1 must be in [0, 1), got -0.5"},
        BadConfig{"Beta1One", ADAM, 0.1f, 1.0f, 0, 0, 0,
                  "optimizer.beta1 must be in [0, 1), got 1"},
        BadConfig{"Beta2One", ADAM, 0.1f, 0, 1.0f, 0, 0,
                  "optimizer.beta2 must be in [0, 1), got 1"},
        BadConfig{"Beta2NaN", ADAM, 0.1f, 0, kNaN, 0, 0,
                  "optimizer.beta2 must be in [0, 1), got nan"},
        BadConfig{"AdamNegativeEpsilon", ADAM, 0.1f, 0, 0, -1.0f, 0,
                  "optimizer.epsilon must be finite and >= 0, got -1"},
        BadConfig{"AdagradNegativeEpsilon", ADAGRAD, 0.1f, 0, 0, -1.0f, 0,
                  "optimizer.epsilon must be finite and >= 0, got -1"},
        BadConfig{"AdagradNegativeAccumulator", ADAGRAD, 0.1f, 0, 0, 0, -0.5f,
                  "optimizer.initial_accumulator must be finite and > 0, got -0.5"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace psrec

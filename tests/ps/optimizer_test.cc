#include "ps/optimizer.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/optimizer_test_util.h"

namespace psrec {
namespace {

using ::testing::HasSubstr;
using testing_util::Resolved;

// Float arithmetic against expectations worked out in double: a few ulp apart at most.
constexpr float kTol = 1e-6f;

// Adam's v is checked against the float beta2 the config holds: 1 - 0.999f is 0.00099998713, which
// is 1.3e-5 relative away from 0.001 and would hide in any tolerance loose enough to accept it.
constexpr double kBeta2 = 0.999f;
constexpr double kOneMinusBeta2 = 1.0 - kBeta2;

// One parameter row with its state, updated through ApplyUpdate.
struct Row {
  Row(const OptimizerConfig& config, std::vector<float> init)
      : w(std::move(init)), state(StateFloatsPerParam(config.kind()) * w.size()) {
    InitOptimizerState(config, absl::MakeSpan(state));
  }
  void Update(const OptimizerConfig& config, float l2, std::vector<float> grad) {
    ApplyUpdate(config, l2, absl::MakeSpan(w), absl::MakeSpan(state), &step, grad);
  }
  std::vector<float> w;
  std::vector<float> state;
  uint32_t step = 0;
};

TEST(StateFloatsPerParamTest, PerKind) {
  EXPECT_EQ(StateFloatsPerParam(SGD), 0);
  EXPECT_EQ(StateFloatsPerParam(ADAGRAD), 1);
  EXPECT_EQ(StateFloatsPerParam(ADAM), 2);
}

TEST(InitOptimizerStateTest, AdagradStartsAtInitialAccumulatorAdamAtZero) {
  std::vector<float> state(3, -1.0f);
  InitOptimizerState(Resolved(ADAGRAD, 0.1f), absl::MakeSpan(state));
  EXPECT_THAT(state, ::testing::Each(0.1f));
  state.assign(6, -1.0f);
  InitOptimizerState(Resolved(ADAM, 0.1f), absl::MakeSpan(state));
  EXPECT_THAT(state, ::testing::Each(0.0f));
}

TEST(ApplyUpdateTest, Sgd) {
  const OptimizerConfig config = Resolved(SGD, 0.1f);
  Row row(config, {1.0f, -2.0f});
  row.Update(config, 0.0f, {0.5f, 0.25f});
  EXPECT_NEAR(row.w[0], 0.95f, kTol);    // 1 - 0.1 * 0.5
  EXPECT_NEAR(row.w[1], -2.025f, kTol);  // -2 - 0.1 * 0.25
  EXPECT_EQ(row.step, 1u);
}

TEST(ApplyUpdateTest, SgdWithL2) {
  const OptimizerConfig config = Resolved(SGD, 0.1f);
  Row row(config, {1.0f, -2.0f});
  row.Update(config, 0.1f, {0.5f, 0.25f});
  EXPECT_NEAR(row.w[0], 0.94f, kTol);    // g' = 0.5 + 0.1 * 1 = 0.6
  EXPECT_NEAR(row.w[1], -2.005f, kTol);  // g' = 0.25 + 0.1 * -2 = 0.05
}

TEST(ApplyUpdateTest, SgdWithL2DoesNotTouchZeroGradientOfZeroRow) {
  const OptimizerConfig config = Resolved(SGD, 0.1f);
  Row row(config, {0.0f, 3.0f});
  row.Update(config, 0.5f, {0.0f, 0.0f});
  EXPECT_EQ(row.w[0], 0.0f);
  EXPECT_NEAR(row.w[1], 2.85f, kTol);  // pure decay: 3 - 0.1 * 0.5 * 3
}

TEST(ApplyUpdateTest, AdagradTwoSteps) {
  const OptimizerConfig config = Resolved(ADAGRAD, 0.1f);  // eps 1e-10, accumulator 0.1
  Row row(config, {1.0f});
  row.Update(config, 0.0f, {0.5f});
  EXPECT_NEAR(row.state[0], 0.35f, kTol);    // 0.1 + 0.5^2
  EXPECT_NEAR(row.w[0], 0.91548457f, kTol);  // 1 - 0.05 / sqrt(0.35)
  row.Update(config, 0.0f, {0.5f});
  EXPECT_NEAR(row.state[0], 0.6f, kTol);     // 0.35 + 0.5^2
  EXPECT_NEAR(row.w[0], 0.85093485f, kTol);  // 0.91548457 - 0.05 / sqrt(0.6)
  EXPECT_EQ(row.step, 2u);
}

TEST(ApplyUpdateTest, AdagradWithL2) {
  const OptimizerConfig config = Resolved(ADAGRAD, 0.1f);
  Row row(config, {1.0f});
  row.Update(config, 0.5f, {0.5f});          // g' = 0.5 + 0.5 * 1 = 1
  EXPECT_NEAR(row.state[0], 1.1f, kTol);     // 0.1 + 1^2
  EXPECT_NEAR(row.w[0], 0.90465374f, kTol);  // 1 - 0.1 * 1 / sqrt(1.1)
}

TEST(ApplyUpdateTest, AdamTwoSteps) {
  const OptimizerConfig config = Resolved(ADAM, 0.01f);  // b1 0.9, b2 0.999, eps 1e-8
  Row row(config, {1.0f});
  // t = 1: m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25, so w -= 0.01 * 0.5 / 0.5.
  row.Update(config, 0.0f, {0.5f});
  EXPECT_NEAR(row.state[0], 0.05f, kTol);
  EXPECT_NEAR(row.state[1], kOneMinusBeta2 * 0.25, 1e-10);
  EXPECT_NEAR(row.w[0], 0.99f, kTol);
  // t = 2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225;
  // m^ = 0.02 / 0.19, v^ = 0.00031225 / 0.001999, w -= 0.01 * 0.10526316 / 0.39522538.
  row.Update(config, 0.0f, {-0.25f});
  EXPECT_NEAR(row.state[0], 0.02f, kTol);
  EXPECT_NEAR(row.state[1], kOneMinusBeta2 * (kBeta2 * 0.25 + 0.0625), 1e-10);
  EXPECT_NEAR(row.w[0], 0.98733663f, kTol);
  EXPECT_EQ(row.step, 2u);
}

TEST(ApplyUpdateTest, AdamWithL2) {
  const OptimizerConfig config = Resolved(ADAM, 0.01f);
  Row row(config, {1.0f});
  row.Update(config, 0.5f, {0.5f});  // g' = 1: m = 0.1, v = 0.001, m^ = 1, v^ = 1
  EXPECT_NEAR(row.state[0], 0.1f, kTol);
  EXPECT_NEAR(row.state[1], kOneMinusBeta2, 1e-10);
  EXPECT_NEAR(row.w[0], 0.99f, kTol);
  // g' = -0.25 + 0.5 * 0.99 = 0.245: m = 0.09 + 0.0245, v = 0.000999 + 0.001 * 0.060025.
  row.Update(config, 0.5f, {-0.25f});
  EXPECT_NEAR(row.state[0], 0.1145f, kTol);
  EXPECT_NEAR(row.state[1], kOneMinusBeta2 * (kBeta2 + 0.060025), 1e-10);
  EXPECT_NEAR(row.w[0], 0.98172048f, kTol);
}

// The bias correction uses the row's own step count: the same state and gradient give a different
// update at t = 1 than at t = 5.
TEST(ApplyUpdateTest, AdamBiasCorrectionUsesTheRowsStep) {
  const OptimizerConfig config = Resolved(ADAM, 0.01f);
  Row fresh(config, {1.0f});
  Row late(config, {1.0f});
  late.step = 4;
  fresh.Update(config, 0.0f, {0.5f});
  late.Update(config, 0.0f, {0.5f});
  EXPECT_EQ(late.step, 5u);
  EXPECT_NEAR(fresh.w[0], 0.99f, kTol);
  // t = 5: m^ = 0.05 / (1 - 0.9^5), v^ = 0.00025 / (1 - 0.999^5).
  EXPECT_NEAR(late.w[0], 0.99454511f, kTol);
}

TEST(ApplyUpdateTest, UpdatesEveryElementOfAWideRow) {
  // 37 elements: more than any SIMD width, and not a multiple of one.
  const OptimizerConfig config = Resolved(ADAM, 0.01f);
  Row row(config, std::vector<float>(37, 1.0f));
  std::vector<float> grad(37);
  for (size_t j = 0; j < grad.size(); ++j) grad[j] = (j % 2 == 0) ? 0.5f : -0.5f;
  row.Update(config, 0.0f, grad);
  for (size_t j = 0; j < grad.size(); ++j) {
    EXPECT_NEAR(row.w[j], j % 2 == 0 ? 0.99f : 1.01f, kTol) << j;
  }
}

}  // namespace
}  // namespace psrec

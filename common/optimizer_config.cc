#include "common/optimizer_config.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace psrec {
namespace {

constexpr float kAdamBeta1 = 0.9f;
constexpr float kAdamBeta2 = 0.999f;
constexpr float kAdamEpsilon = 1e-8f;
constexpr float kAdagradEpsilon = 1e-10f;
constexpr float kAdagradInitialAccumulator = 0.1f;

absl::Status CheckBeta(const char* field, float value) {
  if (value >= 0.0f && value < 1.0f) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer.", field, " must be in [0, 1), got ", value));
}

absl::Status CheckEpsilon(float value) {
  if (value >= 0.0f && std::isfinite(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer.epsilon must be finite and >= 0, got ", value));
}

}  // namespace

// The fields have presence: an unset one gets its default, an explicit 0 is kept (and checked).
// Only the fields the kind uses are filled and checked.
absl::Status ResolveOptimizerConfig(OptimizerConfig* config) {
  const OptimizerKind kind = config->kind();
  if (kind != SGD && kind != ADAGRAD && kind != ADAM) {
    const std::string& name = OptimizerKind_Name(kind);
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.kind must be SGD, ADAGRAD or ADAM, got ",
                     name.empty() ? "unknown value " : name + " = ", static_cast<int>(kind)));
  }
  if (!(config->lr() > 0.0f) || !std::isfinite(config->lr())) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.lr must be finite and > 0, got ", config->lr()));
  }
  if (kind == ADAM) {
    if (!config->has_beta1()) config->set_beta1(kAdamBeta1);
    if (!config->has_beta2()) config->set_beta2(kAdamBeta2);
    if (!config->has_epsilon()) config->set_epsilon(kAdamEpsilon);
    if (absl::Status s = CheckBeta("beta1", config->beta1()); !s.ok()) return s;
    if (absl::Status s = CheckBeta("beta2", config->beta2()); !s.ok()) return s;
    return CheckEpsilon(config->epsilon());
  }
  if (kind == ADAGRAD) {
    if (!config->has_epsilon()) config->set_epsilon(kAdagradEpsilon);
    if (!config->has_initial_accumulator()) {
      config->set_initial_accumulator(kAdagradInitialAccumulator);
    }
    // A negative accumulator could make sqrt(a) NaN on the first update.
    if (!(config->initial_accumulator() > 0.0f) || !std::isfinite(config->initial_accumulator())) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer.initial_accumulator must be finite and > 0, got ",
                       config->initial_accumulator()));
    }
    return CheckEpsilon(config->epsilon());
  }
  return absl::OkStatus();
}

}  // namespace psrec

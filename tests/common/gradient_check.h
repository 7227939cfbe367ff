// What the model tests share to check analytic gradients against finite differences.
// Header-only, because tests/CMakeLists.txt builds each *_test.cc on its own.
#ifndef PSREC_TESTS_COMMON_GRADIENT_CHECK_H_
#define PSREC_TESTS_COMMON_GRADIENT_CHECK_H_

#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/rng.h"
#include "gtest/gtest.h"

namespace psrec {
namespace testing_util {

// `n` values drawn from `rng`, uniform in [-scale, scale).
inline std::vector<float> RandomValues(Rng& rng, size_t n, float scale) {
  std::vector<float> values(n);
  for (float& x : values) x = (rng.Unit() * 2 - 1) * scale;
  return values;
}

// One parameter array and the analytic gradient of the loss with respect to it.
struct CheckedParam {
  const char* name;
  std::vector<float>* values;
  const std::vector<float>* grad;
};

// Expects every value's gradient to match a central difference of `loss` (which reads the values),
// computed in float with a step large enough for float but small against the loss's kinks. `what`
// names the case in a failure. Returns how many values it checked.
inline int ExpectGradientsMatch(absl::Span<const CheckedParam> params,
                                const std::function<float()>& loss, const std::string& what) {
  constexpr float kStep = 1e-2f;
  int checked = 0;
  for (const CheckedParam& p : params) {
    for (size_t k = 0; k < p.values->size(); ++k) {
      const float saved = (*p.values)[k];
      (*p.values)[k] = saved + kStep;
      const float up = loss();
      (*p.values)[k] = saved - kStep;
      const float down = loss();
      (*p.values)[k] = saved;
      const float numeric = (up - down) / (2 * kStep);
      EXPECT_NEAR((*p.grad)[k], numeric, 2e-3f + 2e-2f * std::fabs(numeric))
          << p.name << "[" << k << "] " << what;
      ++checked;
    }
  }
  return checked;
}

}  // namespace testing_util
}  // namespace psrec

#endif  // PSREC_TESTS_COMMON_GRADIENT_CHECK_H_

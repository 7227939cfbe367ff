// Server-side optimizers: a row's new value from its gradient and its own optimizer state.
//
// All three add L2 regularization to the gradient first (g += l2 * w), so an untouched row never
// decays: regularization is as lazy as the updates.
//   SGD:      w -= lr * g
//   ADAGRAD:  a += g^2;  w -= lr * g / (sqrt(a) + eps);  a starts at initial_accumulator
//   ADAM:     t += 1;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//             w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//             t is the row's own step count (sparse, "lazy" Adam).
#ifndef PSREC_PS_OPTIMIZER_H_
#define PSREC_PS_OPTIMIZER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "common/optimizer_config.h"  // ResolveOptimizerConfig, which every table needs first
#include "proto/config.pb.h"

namespace psrec {

// Floats of optimizer state per parameter: 0 for SGD, 1 for ADAGRAD, 2 for ADAM.
int StateFloatsPerParam(OptimizerKind kind);

// The state a fresh row starts with (adagrad's initial accumulator, zeros otherwise).
void InitOptimizerState(const OptimizerConfig& config, absl::Span<float> state);

// Updates one row in place. `state` holds StateFloatsPerParam(kind) * row.size() floats; `step` is
// the row's step count, incremented by this call. `grad` has row.size() floats.
void ApplyUpdate(const OptimizerConfig& config, float l2, absl::Span<float> row,
                 absl::Span<float> state, uint32_t* step, absl::Span<const float> grad);

}  // namespace psrec

#endif  // PSREC_PS_OPTIMIZER_H_

#include "ps/optimizer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace psrec {
namespace {

// The updates run over fixed-size Eigen maps of one SSE packet (4 floats), then of 1 float for the
// tail: Eigen emits SIMD divisions and square roots even at -O2 with math-errno on, where GCC's own
// vectorizer gives up on the scalar sqrtf call, and one fused pass per packet reads and writes the
// row and its state once instead of once per statement. Nothing is allocated: the blocks and the
// L2-regularized gradient live in registers. The build sets EIGEN_FAST_MATH to 0, so the packet
// sqrt is sqrtps, exact like the tail's std::sqrt: an element's update is the same in a packet or
// in the tail, and on any x86-64 CPU (the fast form starts from rsqrtps, which differs by maker).
constexpr int kPacket = 4;

template <int N>
using Block = Eigen::Map<Eigen::Array<float, N, 1>>;
template <int N>
using ConstBlock = Eigen::Map<const Eigen::Array<float, N, 1>>;
template <int N>
using Values = Eigen::Array<float, N, 1>;

// Calls body(std::integral_constant<int, N>(), j) for every block [j, j + N) of [0, n).
template <typename Body>
void ForEachBlock(size_t n, Body body) {
  size_t j = 0;
  for (; j + kPacket <= n; j += kPacket) body(std::integral_constant<int, kPacket>(), j);
  for (; j < n; ++j) body(std::integral_constant<int, 1>(), j);
}

void SgdUpdate(float lr, float l2, size_t n, float* w, const float* g) {
  ForEachBlock(n, [=](auto size, size_t j) {
    constexpr int N = decltype(size)::value;
    Block<N> wj(w + j);
    wj -= lr * (ConstBlock<N>(g + j) + l2 * wj);
  });
}

void AdagradUpdate(float lr, float eps, float l2, size_t n, float* w, float* a, const float* g) {
  ForEachBlock(n, [=](auto size, size_t j) {
    constexpr int N = decltype(size)::value;
    Block<N> wj(w + j), aj(a + j);
    const Values<N> gj = ConstBlock<N>(g + j) + l2 * wj;
    aj += gj.square();
    wj -= lr * gj / (aj.sqrt() + eps);
  });
}

// `t` is the row's step count after this update (>= 1). The bias corrections 1 - b^t are computed
// once per row with std::pow in double (b^t of a beta close to 1 loses digits in float), then
// rounded to float, so the per-element arithmetic is the header's formula in float, divisions
// included: folding them into reciprocals measured no faster, as the update is memory-bound.
void AdamUpdate(const OptimizerConfig& config, float l2, uint32_t t, size_t n, float* w, float* m,
                float* v, const float* g) {
  const float b1 = config.beta1();
  const float b2 = config.beta2();
  const float lr = config.lr();
  const float eps = config.epsilon();
  const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), t));
  const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), t));
  ForEachBlock(n, [=](auto size, size_t j) {
    constexpr int N = decltype(size)::value;
    Block<N> wj(w + j), mj(m + j), vj(v + j);
    const Values<N> gj = ConstBlock<N>(g + j) + l2 * wj;
    mj = b1 * mj + (1.0f - b1) * gj;
    vj = b2 * vj + (1.0f - b2) * gj.square();
    wj -= lr * (mj / c1) / ((vj / c2).sqrt() + eps);
  });
}

}  // namespace

int StateFloatsPerParam(OptimizerKind kind) {
  switch (kind) {
    case ADAGRAD:
      return 1;
    case ADAM:
      return 2;
    default:
      return 0;
  }
}

void InitOptimizerState(const OptimizerConfig& config, absl::Span<float> state) {
  const float value = config.kind() == ADAGRAD ? config.initial_accumulator() : 0.0f;
  std::fill(state.begin(), state.end(), value);
}

void ApplyUpdate(const OptimizerConfig& config, float l2, absl::Span<float> row,
                 absl::Span<float> state, uint32_t* step, absl::Span<const float> grad) {
  const size_t n = row.size();
  ++*step;
  switch (config.kind()) {
    case SGD:
      SgdUpdate(config.lr(), l2, n, row.data(), grad.data());
      break;
    case ADAGRAD:
      AdagradUpdate(config.lr(), config.epsilon(), l2, n, row.data(), state.data(), grad.data());
      break;
    case ADAM:
      AdamUpdate(config, l2, *step, n, row.data(), state.data(), state.data() + n, grad.data());
      break;
    default:
      PSREC_LOG(FATAL) << "ApplyUpdate with an unresolved optimizer kind " << config.kind();
  }
}

}  // namespace psrec

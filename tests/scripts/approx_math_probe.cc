// A program that holds rsqrtps on purpose, for check_exact_math_test.sh to show that
// scripts/check_exact_math.sh catches it.
#include <xmmintrin.h>

#include <cstdio>

__attribute__((noinline)) __m128 ApproximateReciprocalSqrt(__m128 x) { return _mm_rsqrt_ps(x); }

int main(int argc, char** /*argv*/) {
  float out[4];
  _mm_storeu_ps(out, ApproximateReciprocalSqrt(_mm_set1_ps(static_cast<float>(argc))));
  std::printf("%g\n", out[0]);
  return 0;
}

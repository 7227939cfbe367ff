// Counter-based randomness. Every random number in psrec is a pure function of a seed and a
// position, so any process can recompute it: a parameter row's start, a dropout mask, an epoch's
// shuffle.
#ifndef PSREC_COMMON_RNG_H_
#define PSREC_COMMON_RNG_H_

#include <cstdint>
#include <utility>
#include <vector>

namespace psrec {

// SplitMix64's finalizer: a bijection on 64 bits with good avalanche.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t HashCombine(uint64_t a, uint64_t b) { return Mix64(a ^ Mix64(b)); }

// Uniform in [0, 1) from the top 24 bits: exactly representable as float.
inline float UnitFloat(uint64_t bits) {
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

// A small sequential generator (SplitMix64) for loops that need many numbers from one seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) for n > 0, by Lemire's multiply (a tiny bias at 2^64 / n is fine here).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  float Unit() { return UnitFloat(Next()); }

 private:
  uint64_t state_;
};

// Fisher-Yates with Rng, so the order is the same on every platform (std::shuffle's is not).
template <typename T>
void Shuffle(std::vector<T>* v, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = v->size(); i > 1; --i) {
    size_t j = rng.Below(i);
    std::swap((*v)[i - 1], (*v)[j]);
  }
}

}  // namespace psrec

#endif  // PSREC_COMMON_RNG_H_

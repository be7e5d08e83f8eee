// SplitMix64: a 64-bit mix with good statistics, for random streams that must be the same on every
// machine and standard library (std::shuffle and the std distributions are not).
#pragma once

#include <cstdint>

namespace torl {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A counter-based stream: next() is splitmix64 of (seed, draw number).
class Stream {
 public:
  explicit Stream(uint64_t seed) : seed_(splitmix64(seed)) {}
  uint64_t next() { return splitmix64(seed_ + 0x9e3779b97f4a7c15ULL * ++draws_); }
  // Uniform in [low, high].
  int64_t between(int64_t low, int64_t high) {
    return low + static_cast<int64_t>(next() % static_cast<uint64_t>(high - low + 1));
  }
  // True with probability p.
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t seed_;
  uint64_t draws_ = 0;
};

}  // namespace torl

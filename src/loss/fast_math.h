#pragma once
// Branch-free exp and log1p for the ranges the focal-loss kernels need, written so the compiler
// can vectorise the loops that call them (libm calls stop auto-vectorisation). float uses the
// Cephes polynomials (about 1 ulp); double calls libm, because the float64 path exists for exact
// checks and gradients, not for speed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace focaldet::loss::detail {

// Inputs below this give exp = 0: at -88 the rounding below gives n = -127, whose exponent bits
// are 0. Pass it to exp_nonpositive as a value the compiler cannot see (a load, not a literal):
// with a literal, GCC splits the loop on the clamp (jump threading folds the clamped path to a
// constant) and then cannot vectorise it.
inline constexpr float kExpFloor = -88.0f;

// exp(x) for x <= 0 (results below 2^-126 flushed to 0); `floor` is kExpFloor, see above.
inline float exp_nonpositive(float x, float floor) {
  const float xc = std::max(x, floor);
  // n = round(x / ln 2) by truncating -x/ln2 + 0.5 (x <= 0), then r = x - n ln2 in two parts.
  // A NaN x passes the clamp (the loss must come out NaN) and would reach the conversion to
  // int32_t (undefined; on x86 INT_MIN, and then the shift below of a negative value, which
  // UBSan reports): it takes n = 0 instead, and r and y still carry the NaN.
  const float t = -xc * 1.44269504088896341f + 0.5f;
  const float n = -static_cast<float>(static_cast<int32_t>(t <= 128.0f ? t : 0.0f));
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-127, 0]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}
inline double exp_nonpositive(double x, double /*floor*/) { return std::exp(x); }

// log(1 + e) for e in [0, 1]. Writing 1 + e = m * 2^k with m in [sqrt(1/2), sqrt(2)) gives k = 0
// and m - 1 = e exactly for e < sqrt(2) - 1, so tiny e keeps full relative precision.
inline float log1p_unit(float e) {
  const bool high = e > 0.41421356f;
  const float x = high ? (e - 1.0f) * 0.5f : e;  // m - 1
  const float k = high ? 1.0f : 0.0f;
  const float z = x * x;
  float p = 7.0376836292e-2f;
  p = p * x - 1.1514610310e-1f;
  p = p * x + 1.1676998740e-1f;
  p = p * x - 1.2420140846e-1f;
  p = p * x + 1.4249322787e-1f;
  p = p * x - 1.6668057665e-1f;
  p = p * x + 2.0000714765e-1f;
  p = p * x - 2.4999993993e-1f;
  p = p * x + 3.3333331174e-1f;
  float y = p * x * z;
  y += -2.12194440e-4f * k;
  y += -0.5f * z;
  return x + y + 0.693359375f * k;
}
inline double log1p_unit(double e) { return std::log1p(e); }

}  // namespace focaldet::loss::detail

// Scaling between real values and the 2^-fix_pos grid, exact in double.
//
// Why two factors for double inputs: the diffs search may try fix positions whose 2^fp or 2^-fp
// is not a normal double (|fp| > 1022 for float64 tensors near DBL_MAX). Splitting 2^fp into
// 2^(fp/2) * 2^(fp - fp/2) keeps both factors normal, and the first product is always exact,
// so the result is rounded at most once.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "nndct/fix_point.h"
#include "nndct/simd.h"

namespace nndct {

// 2^e as a double, exact; built from the bit pattern for normal results (ldexp is a libm call,
// too slow for the per-channel searches that build many grids), ldexp otherwise.
inline double pow2(int e) {
  if (e >= -1022 && e <= 1023) {
    const uint64_t bits = static_cast<uint64_t>(e + 1023) << 52;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  return std::ldexp(1.0, e);
}

struct Grid {
  double amp;    // 2^fp (used for float32 inputs, where |fp| is small enough for one factor)
  double inv;    // 2^-fp
  double amp_a;  // 2^(fp/2)
  double amp_b;  // 2^(fp - fp/2)
  double inv_a;  // 2^-(fp/2)
  double inv_b;  // 2^-(fp - fp/2)
  double qmin;   // -2^(bw-1)
  double qmax;   // 2^(bw-1) - 1
};

inline Grid make_grid(int bit_width, int fix_pos) {
  const int h = fix_pos / 2;
  Grid g;
  g.amp = pow2(fix_pos);
  g.inv = pow2(-fix_pos);
  g.amp_a = pow2(h);
  g.amp_b = pow2(fix_pos - h);
  g.inv_a = pow2(-h);
  g.inv_b = pow2(-(fix_pos - h));
  g.qmin = static_cast<double>(code_min(bit_width));
  g.qmax = static_cast<double>(code_max(bit_width));
  return g;
}

// The integer code (as a double; NaN for NaN input) of x with method M on grid g.
template <typename T, Method M>
NNDCT_ALWAYS_INLINE double code_of(T x, Grid g) {
  if constexpr (std::is_same_v<T, float>) {
    // float * 2^fp is exact in double for the |fp| <= ~300 the kernels use.
    const double r = static_cast<double>(x) * g.amp;
    return detail::round_real_f32<M>(detail::clamp_nan_through(r, g.qmin, g.qmax));
  } else {
    double r = (static_cast<double>(x) * g.amp_a) * g.amp_b;
    // An underflow to zero would lose the sign that floor/ceil need.
    r = ((r == 0.0) & (x != 0)) ? std::copysign(std::numeric_limits<double>::denorm_min(), static_cast<double>(x)) : r;
    return detail::round_real<M>(detail::clamp_nan_through(r, g.qmin, g.qmax));
  }
}

// q * 2^-fp converted to T (one IEEE rounding, only for codes wider than T's significand or
// results outside T's range). Adding +0.0 turns a -0 code (e.g. trunc(-0.3 - 0.5)) into +0,
// as the reference's cast through int does.
template <typename T>
NNDCT_ALWAYS_INLINE T value_of(double q, Grid g) {
  if constexpr (std::is_same_v<T, float>) {
    return static_cast<float>((q + 0.0) * g.inv);
  } else {
    return ((q + 0.0) * g.inv_a) * g.inv_b;
  }
}

}  // namespace nndct

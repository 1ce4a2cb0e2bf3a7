// Per-element fixed-point rounding shared by every kernel (and by C++ callers such as the LSTM
// time-loop kernel): a value x is represented at fix position fp by the integer code
// q = round_m(x * 2^fp) clamped to [-2^(bw-1), 2^(bw-1)-1]; the fake-quantized value is q * 2^-fp.
//
// Everything here works on the already-scaled real value r = x * 2^fp held in a double. For
// float32 inputs and for the scales used by the kernels that product is exact, so the rounding
// decision (including exact ties) is exact too. The functions are inline and branch-free so that
// array loops built on them vectorize.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace nndct {

// Rounding methods. 2..5 are the numeric codes of the reference fix kernels (Vitis AI RNN
// quantizer); 6 and 7 follow the later vai_q_pytorch numbering (half_down, ceil); 8 (banker's
// rounding) has no reference code.
enum class Method : int {
  kDpuRound = 2,   // ties toward +inf (round-half-up), clamp; the "DPU round"
  kStdRound = 3,   // ties away from zero (C round), clamp
  kFloor = 4,      // floor, then clamp (LSTM activations)
  kOldRnn = 5,     // negative ties -> ceil, positive ties -> half-even, else nearest
  kHalfDown = 6,   // ties toward zero
  kCeil = 7,       // ceil, then clamp
  kHalfEven = 8,   // ties to the even neighbour (banker's / Python 3 round)
};
constexpr Method kHalfUp = Method::kDpuRound;

constexpr int kMinBitWidth = 2;
constexpr int kMaxBitWidth = 32;
constexpr int kMinFixPos = -126;
constexpr int kMaxFixPos = 126;

inline bool is_valid_method(int code) { return code >= 2 && code <= 8; }

// Converts a numeric method code, throwing std::invalid_argument (ValueError in Python) for
// codes the kernels do not implement instead of silently producing zeros like the reference.
inline Method method_from_int(int code) {
  if (!is_valid_method(code)) {
    throw std::invalid_argument("unknown rounding method code " + std::to_string(code) +
                                "; valid codes are 2 (dpu_round), 3 (std_round), 4 (floor), "
                                "5 (old_rnn), 6 (half_down), 7 (ceil), 8 (half_even)");
  }
  return static_cast<Method>(code);
}

inline void check_bit_width(int bit_width) {
  if (bit_width < kMinBitWidth || bit_width > kMaxBitWidth) {
    throw std::invalid_argument("bit_width must be in [2, 32], got " + std::to_string(bit_width));
  }
}

inline void check_fix_pos(int fix_pos) {
  if (fix_pos < kMinFixPos || fix_pos > kMaxFixPos) {
    throw std::invalid_argument("fix_pos must be in [-126, 126], got " + std::to_string(fix_pos));
  }
}

// Smallest and largest code of a signed bw-bit integer: [-2^(bw-1), 2^(bw-1) - 1].
inline int64_t code_min(int bit_width) { return -(int64_t{1} << (bit_width - 1)); }
inline int64_t code_max(int bit_width) { return (int64_t{1} << (bit_width - 1)) - 1; }

namespace detail {

// Rounds r (already clamped to |r| <= 2^31, or NaN) to an integer-valued double with method M.
// The tie test compares r with the midpoint h = floor(r) + 0.5 (exact): e = r - h is exact by
// Sterbenz's lemma whenever |e| could be small, and has the right sign otherwise, so ties are
// detected exactly. (r - floor(r) is NOT always exact: for r = -0.5 + 2^-55 it rounds to 0.5.)
template <Method M>
inline double round_real(double r) {
  const double fl = std::floor(r);
  if constexpr (M == Method::kFloor) {
    return fl;
  } else if constexpr (M == Method::kCeil) {
    return std::ceil(r);
  } else {
    const double e = r - (fl + 0.5);  // < 0: below the midpoint, 0: tie, > 0: above
    if constexpr (M == Method::kDpuRound) {
      return fl + (e >= 0.0 ? 1.0 : 0.0);
    } else if constexpr (M == Method::kStdRound) {
      return fl + (((e > 0.0) | ((e == 0.0) & (fl >= 0.0))) ? 1.0 : 0.0);
    } else if constexpr (M == Method::kHalfDown) {
      return fl + (((e > 0.0) | ((e == 0.0) & (fl < 0.0))) ? 1.0 : 0.0);
    } else if constexpr (M == Method::kHalfEven) {
      const bool odd = (fl - 2.0 * std::floor(0.5 * fl)) != 0.0;
      return fl + (((e > 0.0) | ((e == 0.0) & odd)) ? 1.0 : 0.0);
    } else {  // kOldRnn: negative tie -> ceil, positive tie -> half-even, otherwise nearest
      const bool odd = (fl - 2.0 * std::floor(0.5 * fl)) != 0.0;
      const bool tie_up = (fl < 0.0) | odd;
      return fl + (((e > 0.0) | ((e == 0.0) & tie_up)) ? 1.0 : 0.0);
    }
  }
}

// (Bitwise | and & on the comparisons, not || and &&: no short-circuit branches, so the
// loops using these functions stay vectorizable.)

// Same as round_real for the methods where a float32-derived r allows the cheaper form:
// r + 0.5 is exact in double whenever it matters (|r| >= 0.25 and a 24-bit significand), and
// when it is not exact (|r| < 0.25) the result is 0 either way.
template <Method M>
inline double round_real_f32(double r) {
  if constexpr (M == Method::kDpuRound) {
    return std::floor(r + 0.5);
  } else if constexpr (M == Method::kStdRound) {
    return std::trunc(r + std::copysign(0.5, r));
  } else {
    return round_real<M>(r);
  }
}

// Clamp that lets NaN through unchanged (both comparisons are false for NaN) and maps +-inf
// to the bounds.
inline double clamp_nan_through(double r, double lo, double hi) {
  const double c = r < lo ? lo : r;
  return c > hi ? hi : c;
}

}  // namespace detail

// Rounds the scaled value r with method m and clamps it to [qmin, qmax]; returns the integer
// code as a double (NaN stays NaN, +-inf saturate). Clamping before rounding is equivalent to
// clamping after it because the bounds are integers.
template <Method M>
inline double round_clamp(double r, double qmin, double qmax) {
  return detail::round_real<M>(detail::clamp_nan_through(r, qmin, qmax));
}

inline double round_clamp(double r, Method m, double qmin, double qmax) {
  switch (m) {
    case Method::kDpuRound: return round_clamp<Method::kDpuRound>(r, qmin, qmax);
    case Method::kStdRound: return round_clamp<Method::kStdRound>(r, qmin, qmax);
    case Method::kFloor: return round_clamp<Method::kFloor>(r, qmin, qmax);
    case Method::kOldRnn: return round_clamp<Method::kOldRnn>(r, qmin, qmax);
    case Method::kHalfDown: return round_clamp<Method::kHalfDown>(r, qmin, qmax);
    case Method::kCeil: return round_clamp<Method::kCeil>(r, qmin, qmax);
    case Method::kHalfEven: return round_clamp<Method::kHalfEven>(r, qmin, qmax);
  }
  throw std::invalid_argument("unknown rounding method");
}

// The integer code of the scaled value r: round with m, clamp to [qmin, qmax]; NaN gives 0,
// +-inf saturate. This is the entry point for C++ code (e.g. the LSTM kernel) that computes r
// itself. Exact for every double r as long as |qmin|, |qmax| <= 2^52 (bit widths up to 53).
inline int64_t round_to_code(double r, Method m, int64_t qmin, int64_t qmax) {
  const double q = round_clamp(r, m, static_cast<double>(qmin), static_cast<double>(qmax));
  return q == q ? static_cast<int64_t>(q) : 0;
}

// x * 2^fix_pos, exact for any finite double x unless the result overflows (then +-inf, which
// saturates correctly) or underflows; an underflow to zero keeps the sign information needed by
// floor/ceil by returning the smallest subnormal with x's sign.
inline double scale_to_grid(double x, int fix_pos) {
  const double r = std::ldexp(x, fix_pos);
  return (r == 0.0 && x != 0.0) ? std::copysign(std::numeric_limits<double>::denorm_min(), x) : r;
}

// The code of a real value x at (bit_width, fix_pos) with method m; NaN gives 0.
inline int64_t fix_code(double x, int bit_width, int fix_pos, Method m) {
  return round_to_code(scale_to_grid(x, fix_pos), m, code_min(bit_width), code_max(bit_width));
}

// The fake-quantized value q * 2^-fix_pos of x (NaN stays NaN) as a double.
inline double fix_value(double x, int bit_width, int fix_pos, Method m) {
  const double q = round_clamp(scale_to_grid(x, fix_pos), m, static_cast<double>(code_min(bit_width)),
                               static_cast<double>(code_max(bit_width)));
  return std::ldexp(q + 0.0, -fix_pos);  // + 0.0: a zero code gives +0, never -0
}

}  // namespace nndct

// Integer-code arithmetic of the quantized LSTM cell.
//
// A value v is held as an integer code q at fix position p (v = q * 2^-p). The reference's
// fake-quantization with floor rounding, Q_p(v) = clamp(floor(v * 2^p)), applied to a value that
// is itself a code at another position is then exactly an arithmetic shift and a clamp; sums and
// products of codes are exact integers. These helpers keep that bookkeeping in one place.
#pragma once

#include <cmath>
#include <cstdint>

#include "nndct/fix_point.h"
#include "nndct/grid.h"
#include "nndct/tables.h"

namespace nndct {
namespace lstm {

static_assert((-5 >> 1) == -3, "arithmetic right shift (floor division by 2^k) is required");

struct CodeRange {
  int64_t lo, hi;
  static CodeRange signed_bits(int bit_width) {
    return {code_min(bit_width), code_max(bit_width)};
  }
  int64_t clamp(int64_t v) const { return v < lo ? lo : (v > hi ? hi : v); }
};

// floor(v * 2^(to - from)) without overflow for the shifts that occur (|to - from| < 62).
inline int64_t shift_floor(int64_t v, int from, int to) {
  const int d = to - from;
  if (d >= 0) return v * (int64_t(1) << d);
  if (d <= -63) return v < 0 ? -1 : 0;
  return v >> (-d);
}

// Q_to of a code at position `from`: floor to the coarser grid, then clamp.
inline int64_t requantize(int64_t v, int from, int to, const CodeRange& r) {
  return r.clamp(shift_floor(v, from, to));
}

// Q_to(a + b) for codes a (position fa) and b (position fb): the sum is exact at max(fa, fb).
inline int64_t add_codes(int64_t a, int fa, int64_t b, int fb, int to, const CodeRange& r) {
  const int f = fa > fb ? fa : fb;
  return requantize(shift_floor(a, fa, f) + shift_floor(b, fb, f), f, to, r);
}

// Q_to(a * b): the product of codes is exact at fa + fb.
inline int64_t mul_codes(int64_t a, int fa, int64_t b, int fb, int to, const CodeRange& r) {
  return requantize(a * b, fa + fb, to, r);
}

// Q_p(v) of a float value: floor(v * 2^p), clamped (±inf saturate; NaN is rejected upstream).
// (v * 2^p is ldexp(v, p) exactly: both round the exact product once; pow2 avoids the libm call.)
inline int64_t quantize_value(double v, int p, const CodeRange& r) {
  const double s = std::floor(v * pow2(p));
  if (!(s > static_cast<double>(r.lo))) return r.lo;
  if (s > static_cast<double>(r.hi)) return r.hi;
  return static_cast<int64_t>(s);
}

inline double dequantize(int64_t q, int p) { return static_cast<double>(q) * pow2(-p); }

// The table lookups give codes on the 2^-15 grid. The reference never re-quantizes them (its
// sigmoid/tanh have no output fix in test mode), which equals a requantization to position 15;
// a coarser output position (used for bit widths below 16) floors the table output to it.
inline int64_t table_output(int64_t code15, int to, const CodeRange& r) {
  return to >= kTableOutputFixPos ? code15 : requantize(code15, kTableOutputFixPos, to, r);
}
inline int64_t sigmoid_node(int64_t in, int fin, int fout, const CodeRange& r) {
  return table_output(sigmoid_code(in, fin), fout, r);
}
inline int64_t tanh_node(int64_t in, int fin, int fout, const CodeRange& r) {
  return table_output(tanh_code(in, fin), fout, r);
}

}  // namespace lstm
}  // namespace nndct

// Sigmoid and tanh by table lookup, as the reference RNN quantizer evaluates every sigmoid/tanh
// inside the LSTM cell: the input is on the 2^-fix_pos grid, the output is a code on the 2^-15
// grid.
//
//   sigmoid: k = floor(x * 128);  x >= 8 -> 32767, x < -8 -> 0,      else T_s[1024 + k]
//   tanh:    k = floor(x * 256);  x >= 4 -> 32767, x < -4 -> -32768, else T_t[1024 + k]
//
// with T_s[i] = round(32768 * sigmoid((i - 1024) / 128)) and T_t[i] = round(32768 * tanh((i -
// 1024) / 256)), i = 0..2047, computed on first use (round = half away from zero).
#pragma once

#include <cstdint>

namespace nndct {

constexpr int kTableSize = 2048;
constexpr int kTableOutputFixPos = 15;
constexpr int32_t kTableCodeMax = 32767;

// The 2048-entry tables (built once, thread-safe).
const int16_t* sigmoid_table();
const int16_t* tanh_table();

namespace detail {

// floor(code * 2^shift) for an integer code, saturated to a value outside [-1025, 1024] when
// the exact result is beyond the table (the caller only needs to know it saturates).
inline int64_t table_step(int64_t code, int shift) {
  if (shift <= 0) {
    const int s = -shift;
    if (s >= 63) return code < 0 ? -1 : 0;
    return code >= 0 ? (code >> s) : ~((~code) >> s);  // floor division by 2^s
  }
  const int64_t limit = shift >= 12 ? 0 : (int64_t{2048} >> shift);
  if (code > limit) return 4096;
  if (code < -limit) return -4096;
  return code * (int64_t{1} << shift);
}

}  // namespace detail

// Sigmoid of the value code * 2^-fix_pos, as a code on the 2^-15 grid (0 .. 32767).
inline int32_t sigmoid_code(int64_t code, int fix_pos) {
  const int64_t k = detail::table_step(code, 7 - fix_pos);
  if (k >= 1024) return kTableCodeMax;
  if (k < -1024) return 0;
  return sigmoid_table()[1024 + k];
}

// Tanh of the value code * 2^-fix_pos, as a code on the 2^-15 grid (-32768 .. 32767).
inline int32_t tanh_code(int64_t code, int fix_pos) {
  const int64_t k = detail::table_step(code, 8 - fix_pos);
  if (k >= 1024) return kTableCodeMax;
  if (k < -1024) return -32768;
  return tanh_table()[1024 + k];
}

// Float lookups: x >= 8 (tanh: 4) saturates high, x < -8 (-4) low, NaN stays NaN, otherwise the
// reference truncates x * 2^fix_pos toward zero (exact for inputs on the grid) and indexes the
// table with floor(code * 2^(7 - fix_pos)) (tanh: 8 - fix_pos). Output = code * 2^-15 in T.
template <typename T>
void sigmoid_table_lookup(const T* x, T* out, int64_t n, int fix_pos);
template <typename T>
void tanh_table_lookup(const T* x, T* out, int64_t n, int fix_pos);

// Integer-code variants: input codes at 2^-fix_pos, output codes at 2^-15.
template <typename C>
void sigmoid_table_codes(const C* codes, int16_t* out, int64_t n, int fix_pos);
template <typename C>
void tanh_table_codes(const C* codes, int16_t* out, int64_t n, int fix_pos);

}  // namespace nndct

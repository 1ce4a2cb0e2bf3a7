// Builds the sigmoid/tanh tables on first use and applies them to arrays.
#include "nndct/tables.h"

#include <array>
#include <cmath>
#include <limits>

#include "nndct/fix_point.h"
#include "nndct/parallel.h"

namespace nndct {
namespace {

template <typename Fn>
std::array<int16_t, kTableSize> build_table(Fn&& fn) {
  std::array<int16_t, kTableSize> t{};
  for (int i = 0; i < kTableSize; ++i) t[static_cast<size_t>(i)] = static_cast<int16_t>(std::round(32768.0 * fn(i - 1024)));
  return t;
}

struct TableShape {
  double high;       // inputs >= high saturate to 32767
  double low;        // inputs < low saturate to low_code
  int32_t low_code;  // 0 (sigmoid) or -32768 (tanh)
  int index_bits;    // 7 (sigmoid: step 1/128) or 8 (tanh: step 1/256)
  const int16_t* table;
};

template <typename T>
void lookup(const T* x, T* out, int64_t n, int fix_pos, const TableShape& shape) {
  check_fix_pos(fix_pos);
  const double amp = std::ldexp(1.0, fix_pos);
  const double to_index = std::ldexp(1.0, shape.index_bits - fix_pos);
  const double fuzz = std::ldexp(1.0, -kTableOutputFixPos);
  parallel_for_range(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const double v = static_cast<double>(x[i]);
      double code;
      if (v >= shape.high) {
        code = kTableCodeMax;
      } else if (v < shape.low) {
        code = shape.low_code;
      } else if (v != v) {
        out[i] = x[i];
        continue;
      } else {
        // v in [low, high): truncation then floor keep k in [-1024, 1023].
        const double k = std::floor(std::trunc(v * amp) * to_index);
        code = shape.table[1024 + static_cast<int64_t>(k)];
      }
      out[i] = static_cast<T>(code * fuzz);
    }
  });
}

template <typename C, typename Fn>
void lookup_codes(const C* codes, int16_t* out, int64_t n, int fix_pos, Fn&& fn) {
  check_fix_pos(fix_pos);
  parallel_for_range(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = static_cast<int16_t>(fn(static_cast<int64_t>(codes[i]), fix_pos));
  });
}

}  // namespace

const int16_t* sigmoid_table() {
  static const std::array<int16_t, kTableSize> table =
      build_table([](int i) { return 1.0 / (1.0 + std::exp(-i / 128.0)); });
  return table.data();
}

const int16_t* tanh_table() {
  static const std::array<int16_t, kTableSize> table =
      build_table([](int i) { return std::tanh(i / 256.0); });
  return table.data();
}

template <typename T>
void sigmoid_table_lookup(const T* x, T* out, int64_t n, int fix_pos) {
  lookup(x, out, n, fix_pos, TableShape{8.0, -8.0, 0, 7, sigmoid_table()});
}

template <typename T>
void tanh_table_lookup(const T* x, T* out, int64_t n, int fix_pos) {
  lookup(x, out, n, fix_pos, TableShape{4.0, -4.0, -32768, 8, tanh_table()});
}

template <typename C>
void sigmoid_table_codes(const C* codes, int16_t* out, int64_t n, int fix_pos) {
  sigmoid_table();  // build before the threads start (the static init is thread-safe anyway)
  lookup_codes(codes, out, n, fix_pos, sigmoid_code);
}

template <typename C>
void tanh_table_codes(const C* codes, int16_t* out, int64_t n, int fix_pos) {
  tanh_table();
  lookup_codes(codes, out, n, fix_pos, tanh_code);
}

template void sigmoid_table_lookup<float>(const float*, float*, int64_t, int);
template void sigmoid_table_lookup<double>(const double*, double*, int64_t, int);
template void tanh_table_lookup<float>(const float*, float*, int64_t, int);
template void tanh_table_lookup<double>(const double*, double*, int64_t, int);
#define NNDCT_INSTANTIATE_TABLE_CODES(C)                                      \
  template void sigmoid_table_codes<C>(const C*, int16_t*, int64_t, int);    \
  template void tanh_table_codes<C>(const C*, int16_t*, int64_t, int);
NNDCT_INSTANTIATE_TABLE_CODES(int8_t)
NNDCT_INSTANTIATE_TABLE_CODES(int16_t)
NNDCT_INSTANTIATE_TABLE_CODES(int32_t)
NNDCT_INSTANTIATE_TABLE_CODES(int64_t)

}  // namespace nndct

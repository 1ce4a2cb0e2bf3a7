// Weight layout of the RNN time loops: the matrix kernel (dense_rows.h) reads a weight as
// [in][out] doubles, so that its inner loop runs over the outputs.
#pragma once

#include <cstdint>
#include <vector>

namespace nndct {

// Rows [r0, r1) of a row-major [rows, cols] weight (codes or fake-quantized values) as
// [cols][r1 - r0] doubles.
template <typename T>
std::vector<double> transpose_rows(const T* w, int64_t r0, int64_t r1, int64_t cols) {
  const int64_t n = r1 - r0;
  std::vector<double> t(static_cast<size_t>(n * cols));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < cols; ++k) t[static_cast<size_t>(k * n + j)] = static_cast<double>(w[(r0 + j) * cols + k]);
  return t;
}

}  // namespace nndct

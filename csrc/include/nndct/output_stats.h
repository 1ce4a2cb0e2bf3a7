// Statistics of layer outputs for the accuracy tools.
//
// channel_difference_sums: per-channel sums of (a - b) in float64 over a [outer, channels, inner]
// layout: the mean output error of bias correction, read straight from the outputs' own layout
// (NCHW, NHWC, [N, F]) instead of copying them into one row per channel first.
//
// The order of the additions is part of the definition, so that the result does not depend on
// the number of threads or on the instruction set:
//   d(o, c, i) = double(a[o, c, i]) - double(b[o, c, i])
//   B(o, c)    = sum over i of d(o, c, i) in kSumLanes lanes: lane k adds the elements
//                i = k, k + 8, ... below inner - inner % 8 in order (starting from 0.0), the
//                lanes are combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)), and
//                the last inner % 8 elements are then added in order;
//   S(c)       = (...((0.0 + B(0, c)) + B(1, c)) + ...) + B(outer - 1, c).
#pragma once

#include <cstdint>

#include "nndct/fix_kernels.h"

namespace nndct {

constexpr int kSumLanes = 8;

// out[c] = S(c) for every channel (out has layout.channels entries).
template <typename T>
void channel_difference_sums(const T* a, const T* b, const ChannelLayout& layout, double* out);

// The power-of-two grid a tensor lies on: the fewest fraction bits F such that every value is an
// integer multiple of 2^-F (0 when all are integers or zero), the largest magnitude, and whether
// every value is finite (F and max_abs then cover the finite values only). Bias correction uses
// it to prove that a quantized layer's float products and sums are exact.
struct GridExtent {
  int fraction_bits = 0;
  double max_abs = 0.0;
  bool finite = true;
};
template <typename T>
GridExtent grid_extent(const T* x, int64_t n);

}  // namespace nndct

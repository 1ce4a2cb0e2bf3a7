// channel_difference_sums: see output_stats.h for the order of the additions. Threads split the
// channels (each channel's sum is made by one thread, in the defined order).
// grid_extent: a max-reduction over fixed chunks (the result does not depend on the order).
#include "nndct/output_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "nndct/parallel.h"
#include "nndct/simd.h"

namespace nndct {
namespace {

// B(o, c) of one contiguous run of `inner` elements.
template <typename T>
NNDCT_TARGET_CLONES double run_sum(const T* NNDCT_RESTRICT a, const T* NNDCT_RESTRICT b, int64_t inner) {
  double lane[kSumLanes] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  const int64_t body = inner - inner % kSumLanes;
  for (int64_t i = 0; i < body; i += kSumLanes) {
    for (int k = 0; k < kSumLanes; ++k) {
      lane[k] += static_cast<double>(a[i + k]) - static_cast<double>(b[i + k]);
    }
  }
  double s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (int64_t i = body; i < inner; ++i) s += static_cast<double>(a[i]) - static_cast<double>(b[i]);
  return s;
}

// Channels [c0, c1) with inner == 1 (channels last): S(c) += d(o, c) for o in order, the
// channels side by side (each channel's additions stay in the defined order; 0.0 + d = d).
template <typename T>
NNDCT_TARGET_CLONES void channels_last_sums(const T* NNDCT_RESTRICT a, const T* NNDCT_RESTRICT b, int64_t outer,
                                            int64_t channels, int64_t c0, int64_t c1, double* NNDCT_RESTRICT out) {
  for (int64_t c = c0; c < c1; ++c) out[c] = 0.0;
  for (int64_t o = 0; o < outer; ++o) {
    const T* pa = a + o * channels;
    const T* pb = b + o * channels;
    for (int64_t c = c0; c < c1; ++c) out[c] += static_cast<double>(pa[c]) - static_cast<double>(pb[c]);
  }
}

}  // namespace

template <typename T>
void channel_difference_sums(const T* a, const T* b, const ChannelLayout& layout, double* out) {
  if (layout.outer < 0 || layout.channels < 0 || layout.inner < 0) {
    throw std::invalid_argument("negative dimension in channel layout");
  }
  const int64_t channels = layout.channels;
  if (channels == 0) return;
  // Contiguous channel groups: of about kChunkElements values each when every channel is long
  // runs (NCHW); one per thread, in whole cache lines of channels, when the channels are side by
  // side (inner == 1); one group when the tensor is small.
  const int64_t per_channel = std::max<int64_t>(1, layout.outer * layout.inner);
  int64_t channels_per_group = std::max<int64_t>(1, kChunkElements / per_channel);
  if (layout.inner == 1) {
    constexpr int64_t kLine = 16;
    const int64_t threads = layout.size() < kChunkElements ? 1 : std::max<int64_t>(1, max_threads());
    const int64_t wanted = std::min<int64_t>(threads, (channels + kLine - 1) / kLine);
    channels_per_group = ((channels + wanted - 1) / wanted + kLine - 1) / kLine * kLine;
  }
  const int64_t groups = (channels + channels_per_group - 1) / channels_per_group;
  parallel_for_chunks(groups, [&](int64_t g) {
    const int64_t c0 = g * channels_per_group;
    const int64_t c1 = std::min(channels, c0 + channels_per_group);
    if (layout.inner == 1) {
      channels_last_sums(a, b, layout.outer, channels, c0, c1, out);
      return;
    }
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0.0;
      for (int64_t o = 0; o < layout.outer; ++o) {
        const int64_t at = (o * channels + c) * layout.inner;
        s += run_sum(a + at, b + at, layout.inner);
      }
      out[c] = s;
    }
  });
}

namespace {

// Fraction bits of one finite non-zero value from its bits: value = m * 2^(e - bias - mantissa
// bits) with the implicit bit in m (subnormals: e = 1 without it); the lowest set bit of m is
// the value's finest bit. (float32 has its own branch-free loop below.)
int fraction_bits_of(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  const int field = static_cast<int>((u >> 52) & 0x7ff);
  uint64_t m = u & ((uint64_t{1} << 52) - 1);
  if (field != 0) m |= uint64_t{1} << 52;
  const int e = (field == 0 ? 1 : field) - 1023 - 52;
  return std::max(0, -(e + __builtin_ctzll(m)));
}

struct Extent32 {
  int32_t fraction_bits = 0;
  uint32_t max_abs_bits = 0;  // the largest finite |x| as its bits (ordered like the values)
  uint32_t nonfinite = 0;
};

// The float32 loop without branches (vectorized): the lowest set bit p = m & -m of the
// significand, converted to float, gives its exponent in the float's exponent field.
NNDCT_TARGET_CLONES Extent32 extent_span32(const float* NNDCT_RESTRICT x, int64_t n) {
  int32_t bits = 0;
  uint32_t largest = 0, nonfinite = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t magnitude = __builtin_bit_cast(uint32_t, x[i]) & 0x7fffffffu;
    const int32_t field = static_cast<int32_t>(magnitude >> 23);
    const uint32_t normal = static_cast<uint32_t>(field != 0);
    const uint32_t finite = static_cast<uint32_t>(field != 0xff);
    const uint32_t m = (magnitude & 0x7fffffu) | (normal << 23);
    const float low = static_cast<float>(static_cast<int32_t>(m & (0u - m)));
    const int32_t low_exponent = static_cast<int32_t>(__builtin_bit_cast(uint32_t, low) >> 23) - 127;
    // exponent field 1 for subnormals (field | 1 when field is 0)
    const int32_t fraction = 150 - (field | static_cast<int32_t>(normal ^ 1u)) - low_exponent;
    const int32_t counts = -static_cast<int32_t>(finite & static_cast<uint32_t>(magnitude != 0));
    bits = std::max(bits, fraction & counts);
    largest = std::max(largest, magnitude & (0u - finite));
    nonfinite |= finite ^ 1u;
  }
  return {bits, largest, nonfinite};
}

GridExtent grid_extent_span(const float* x, int64_t n) {
  const Extent32 e = extent_span32(x, n);
  float largest;
  std::memcpy(&largest, &e.max_abs_bits, sizeof largest);
  GridExtent g;
  g.fraction_bits = e.fraction_bits;
  g.max_abs = largest;
  g.finite = e.nonfinite == 0;
  return g;
}

GridExtent grid_extent_span(const double* x, int64_t n) {
  GridExtent g;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (!std::isfinite(v)) {
      g.finite = false;
      continue;
    }
    if (v == 0.0) continue;
    g.max_abs = std::max(g.max_abs, std::fabs(v));
    g.fraction_bits = std::max(g.fraction_bits, fraction_bits_of(v));
  }
  return g;
}

}  // namespace

template <typename T>
GridExtent grid_extent(const T* x, int64_t n) {
  if (n < 0) throw std::invalid_argument("negative size");
  const int64_t chunks = (n + kChunkElements - 1) / kChunkElements;
  std::vector<GridExtent> parts(static_cast<size_t>(chunks));
  parallel_for_chunks(chunks, [&](int64_t c) {
    const int64_t begin = c * kChunkElements;
    parts[static_cast<size_t>(c)] = grid_extent_span(x + begin, std::min(n, begin + kChunkElements) - begin);
  });
  GridExtent total;
  for (const GridExtent& p : parts) {
    total.fraction_bits = std::max(total.fraction_bits, p.fraction_bits);
    total.max_abs = std::max(total.max_abs, p.max_abs);
    total.finite = total.finite && p.finite;
  }
  return total;
}

template GridExtent grid_extent<float>(const float*, int64_t);
template GridExtent grid_extent<double>(const double*, int64_t);

template void channel_difference_sums<float>(const float*, const float*, const ChannelLayout&, double*);
template void channel_difference_sums<double>(const double*, const double*, const ChannelLayout&, double*);

}  // namespace nndct

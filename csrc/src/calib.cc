// Diffs / maxmin fix-position search. Both passes (finite min/max, then the squared error of
// every candidate) walk each channel in fixed blocks of kChunkElements logical elements; every
// block keeps its own partial result and blocks are combined in order, so the answer does not
// depend on the number of threads.
#include "nndct/calib.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "nndct/grid.h"
#include "nndct/parallel.h"
#include "nndct/simd.h"

namespace nndct {
namespace {

template <typename T>
struct MinMax {
  T min = std::numeric_limits<T>::infinity();
  T max = -std::numeric_limits<T>::infinity();
  int64_t finite = 0;
};

// Finite min/max and count. Eight independent lanes (merged at the end) so that the
// NaN-aware selects vectorize; min/max do not depend on the order anyway.
template <typename T>
NNDCT_ALWAYS_INLINE void minmax_loop(const T* x, int64_t n, MinMax<T>& mm) {
  constexpr int kLanes = 8;
  const T big = std::numeric_limits<T>::max();
  const T inf = std::numeric_limits<T>::infinity();
  T lo[kLanes], hi[kLanes];
  int64_t count[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    lo[l] = inf;
    hi[l] = -inf;
    count[l] = 0;
  }
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const T v = x[i + l];
      const bool fin = std::fabs(v) <= big;  // false for NaN and +-inf
      const T vlo = fin ? v : inf;
      const T vhi = fin ? v : -inf;
      lo[l] = vlo < lo[l] ? vlo : lo[l];
      hi[l] = vhi > hi[l] ? vhi : hi[l];
      count[l] += fin ? 1 : 0;
    }
  }
  for (; i < n; ++i) {
    const T v = x[i];
    const bool fin = std::fabs(v) <= big;
    lo[0] = (fin & (v < lo[0])) ? v : lo[0];
    hi[0] = (fin & (v > hi[0])) ? v : hi[0];
    count[0] += fin ? 1 : 0;
  }
  for (int l = 0; l < kLanes; ++l) {
    mm.min = lo[l] < mm.min ? lo[l] : mm.min;
    mm.max = hi[l] > mm.max ? hi[l] : mm.max;
    mm.finite += count[l];
  }
}

// Adds sum((x - fake_quant(x))^2) over finite x to *acc. Eight lane accumulators in a fixed
// order: vectorizable without reassociation, and still deterministic.
template <typename T, Method M>
NNDCT_ALWAYS_INLINE void sse_loop(const T* x, int64_t n, const Grid& grid, double* acc) {
  const Grid g = grid;
  const T big = std::numeric_limits<T>::max();
  constexpr int kLanes = 8;
  double lane[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const T v = x[i + l];
      const T fq = value_of<T>(code_of<T, M>(v, g), g);
      const double d = std::fabs(v) <= big ? static_cast<double>(v) - static_cast<double>(fq) : 0.0;
      lane[l] += d * d;
    }
  }
  for (; i < n; ++i) {
    const T v = x[i];
    const T fq = value_of<T>(code_of<T, M>(v, g), g);
    const double d = std::fabs(v) <= big ? static_cast<double>(v) - static_cast<double>(fq) : 0.0;
    lane[0] += d * d;
  }
  *acc += ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

#define NNDCT_DEFINE_CALIB_SPANS(T)                                                             \
  NNDCT_TARGET_CLONES void minmax_span(const T* x, int64_t n, MinMax<T>& mm) {                 \
    minmax_loop<T>(x, n, mm);                                                                   \
  }                                                                                             \
  NNDCT_TARGET_CLONES void sse_span(const T* x, int64_t n, const Grid* grids, int k, Method m, \
                                    double* acc) {                                              \
    for (int j = 0; j < k; ++j) {                                                               \
      NNDCT_SWITCH_METHOD(m, (sse_loop<T, M>(x, n, grids[j], acc + j)));                        \
    }                                                                                           \
  }
NNDCT_DEFINE_CALIB_SPANS(float)
NNDCT_DEFINE_CALIB_SPANS(double)

// Calls fn(ptr, len) for the contiguous runs holding logical elements [begin, end) of channel c.
template <typename T, typename Fn>
void for_each_run(const T* x, const ChannelLayout& layout, int64_t c, int64_t begin, int64_t end,
                  Fn&& fn) {
  int64_t j = begin;
  while (j < end) {
    const int64_t o = j / layout.inner;
    const int64_t i = j - o * layout.inner;
    const int64_t len = std::min(layout.inner - i, end - j);
    fn(x + (o * layout.channels + c) * layout.inner + i, len);
    j += len;
  }
}

// Runs fn(channel, block_begin, block_end, slot) over all (channel, block) pairs, slot =
// channel * blocks_per_channel + block; in parallel when the tensor is large. Channels that fit
// one block are grouped so that each parallel task still covers about kChunkElements elements.
template <typename Fn>
void for_each_block(const ChannelLayout& layout, int64_t blocks_per_channel, Fn&& fn) {
  const int64_t per_channel = layout.outer * layout.inner;
  const bool serial = layout.size() < kChunkElements;
  if (blocks_per_channel == 1) {
    const int64_t per_task = std::max<int64_t>(1, kChunkElements / per_channel);
    const int64_t tasks = (layout.channels + per_task - 1) / per_task;
    auto task = [&](int64_t t) {
      const int64_t last = std::min(layout.channels, (t + 1) * per_task);
      for (int64_t c = t * per_task; c < last; ++c) fn(c, int64_t{0}, per_channel, c);
    };
    if (serial) {
      for (int64_t t = 0; t < tasks; ++t) task(t);
    } else {
      parallel_for_chunks(tasks, task);
    }
    return;
  }
  const int64_t tasks = layout.channels * blocks_per_channel;
  auto task = [&](int64_t t) {
    const int64_t c = t / blocks_per_channel;
    const int64_t b = t - c * blocks_per_channel;
    const int64_t begin = b * kChunkElements;
    fn(c, begin, std::min(per_channel, begin + kChunkElements), t);
  };
  if (serial) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    parallel_for_chunks(tasks, task);
  }
}

// Channel-major copy of a layout whose channel runs are short (a channel axis near the end):
// the searches then walk long contiguous runs. The logical order of each channel's elements is
// unchanged, so the fixed blocks, and therefore the results, are the same as without the copy.
template <typename T>
std::vector<T> channel_major_copy(const T* x, const ChannelLayout& layout) {
  const int64_t per_channel = layout.outer * layout.inner;
  std::vector<T> buf(static_cast<size_t>(layout.size()));
  for (int64_t o = 0; o < layout.outer; ++o) {
    for (int64_t c = 0; c < layout.channels; ++c) {
      const T* src = x + (o * layout.channels + c) * layout.inner;
      std::copy(src, src + layout.inner, buf.data() + c * per_channel + o * layout.inner);
    }
  }
  return buf;
}

// Runs shorter than this are gathered into a channel-major copy first.
constexpr int64_t kShortRun = 256;

void check_search(const FixPosSearch& s) {
  check_bit_width(s.bit_width);
  method_from_int(static_cast<int>(s.method));
  if (s.search_range < 1 || s.search_range > kMaxSearchRange) {
    throw std::invalid_argument("search_range must be in [1, " + std::to_string(kMaxSearchRange) +
                                "], got " + std::to_string(s.search_range));
  }
}

// The largest fix position at which [x_min, x_max] fits the code range (with the reference's
// half-step margins), computed in T like the reference template kernel; nullopt when the step is
// below 2^-126 (see calib.h).
template <typename T>
std::optional<int> max_scale_of(T x_min, T x_max, int bit_width) {
  const T lb = static_cast<T>(-std::ldexp(1.0, bit_width - 1) - 0.5);
  const T ub = static_cast<T>(std::ldexp(1.0, bit_width - 1) - 0.5);
  const T step = std::max(static_cast<T>(x_min / lb), static_cast<T>(x_max / ub));
  if (!(step >= static_cast<T>(FLT_MIN))) return std::nullopt;
  const T inv = static_cast<T>(T(1) / step);
  return static_cast<int>(std::floor(std::log2(inv)));
}

int cap(int fp, const std::optional<int>& max_fix_pos) {
  return max_fix_pos ? std::min(fp, *max_fix_pos) : fp;
}

int zero_result(const std::optional<int>& max_fix_pos) {
  return max_fix_pos ? *max_fix_pos : kZeroTensorFixPos;
}

template <typename T>
std::vector<int32_t> search_channels(const T* x, const ChannelLayout& layout, const FixPosSearch& s,
                                     bool per_channel) {
  check_search(s);
  if (layout.outer < 0 || layout.channels < 0 || layout.inner < 0) {
    throw std::invalid_argument("negative dimension in channel layout");
  }
  const int64_t per_channel_n = layout.outer * layout.inner;
  if (layout.channels == 0 || per_channel_n == 0) {
    throw std::invalid_argument(
        "cannot calibrate a fix position from an empty tensor (or empty channel); pass at least "
        "one finite value");
  }
  std::vector<T> gathered;
  ChannelLayout view = layout;
  if (layout.outer > 1 && layout.inner < kShortRun && layout.channels > 1) {
    gathered = channel_major_copy(x, layout);
    x = gathered.data();
    view = ChannelLayout{1, layout.channels, per_channel_n};
  }
  const int64_t blocks = (per_channel_n + kChunkElements - 1) / kChunkElements;
  const int64_t channels = layout.channels;

  // Pass 1: finite min/max per (channel, block).
  std::vector<MinMax<T>> mm(static_cast<size_t>(channels * blocks));
  for_each_block(view, blocks, [&](int64_t c, int64_t b, int64_t e, int64_t t) {
    MinMax<T>& acc = mm[static_cast<size_t>(t)];
    for_each_run(x, view, c, b, e, [&](const T* p, int64_t len) { minmax_span(p, len, acc); });
  });

  const int k = s.search_range;
  std::vector<int32_t> result(static_cast<size_t>(channels));
  std::vector<int> first_fp(static_cast<size_t>(channels), 0);
  std::vector<char> needs_search(static_cast<size_t>(channels), 0);
  std::vector<Grid> grids(static_cast<size_t>(channels * k));
  for (int64_t c = 0; c < channels; ++c) {
    MinMax<T> total;
    for (int64_t b = 0; b < blocks; ++b) {
      const MinMax<T>& part = mm[static_cast<size_t>(c * blocks + b)];
      total.min = std::min(total.min, part.min);
      total.max = std::max(total.max, part.max);
      total.finite += part.finite;
    }
    if (total.finite == 0) {
      throw std::invalid_argument(
          std::string("cannot calibrate a fix position: ") +
          (per_channel ? "channel " + std::to_string(c) + " has" : "the tensor has") +
          " no finite value (all NaN or inf)");
    }
    const std::optional<int> max_scale = max_scale_of<T>(total.min, total.max, s.bit_width);
    if (!max_scale) {
      result[static_cast<size_t>(c)] = zero_result(s.max_fix_pos);
      continue;
    }
    first_fp[static_cast<size_t>(c)] = *max_scale;
    // Every candidate is max_scale + j (j >= 0) and the result is capped last: when max_scale is
    // already at the cap, every candidate ends at the cap, so the errors need not be computed.
    // (Frequent in LSTM calibration: gate outputs in [0, 1) have a max_scale of 15 at 16 bits.)
    if (k == 1 || (s.max_fix_pos && *max_scale >= *s.max_fix_pos)) {
      result[static_cast<size_t>(c)] = cap(*max_scale, s.max_fix_pos);
      continue;
    }
    needs_search[static_cast<size_t>(c)] = 1;
    for (int j = 0; j < k; ++j) {
      grids[static_cast<size_t>(c * k + j)] = make_grid(s.bit_width, *max_scale + j);
    }
  }

  // Pass 2: squared error of every candidate per (channel, block).
  if (k > 1 && std::find(needs_search.begin(), needs_search.end(), 1) != needs_search.end()) {
    std::vector<double> sse(static_cast<size_t>(channels * blocks * k), 0.0);
    for_each_block(view, blocks, [&](int64_t c, int64_t b, int64_t e, int64_t t) {
      if (!needs_search[static_cast<size_t>(c)]) return;
      double* acc = sse.data() + t * k;
      const Grid* g = grids.data() + c * k;
      for_each_run(x, view, c, b, e,
                   [&](const T* p, int64_t len) { sse_span(p, len, g, k, s.method, acc); });
    });
    for (int64_t c = 0; c < channels; ++c) {
      if (!needs_search[static_cast<size_t>(c)]) continue;
      int best = 0;
      double best_err = 0.0;
      for (int j = 0; j < k; ++j) {
        double err = 0.0;
        for (int64_t b = 0; b < blocks; ++b) err += sse[static_cast<size_t>((c * blocks + b) * k + j)];
        if (j == 0 || err < best_err) {
          best = j;
          best_err = err;
        }
      }
      result[static_cast<size_t>(c)] = cap(first_fp[static_cast<size_t>(c)] + best, s.max_fix_pos);
    }
  }
  return result;
}

}  // namespace

template <typename T>
int diffs_fix_pos(const T* x, int64_t n, const FixPosSearch& search) {
  return search_channels(x, ChannelLayout{1, 1, n}, search, false)[0];
}

template <typename T>
int maxmin_fix_pos(const T* x, int64_t n, int bit_width, std::optional<int> max_fix_pos) {
  FixPosSearch s;
  s.bit_width = bit_width;
  s.search_range = 1;
  s.max_fix_pos = max_fix_pos;
  return search_channels(x, ChannelLayout{1, 1, n}, s, false)[0];
}

template <typename T>
std::vector<int32_t> diffs_fix_pos_per_channel(const T* x, const ChannelLayout& layout,
                                               const FixPosSearch& search) {
  return search_channels(x, layout, search, true);
}

template <typename T>
std::vector<int32_t> maxmin_fix_pos_per_channel(const T* x, const ChannelLayout& layout,
                                                int bit_width, std::optional<int> max_fix_pos) {
  FixPosSearch s;
  s.bit_width = bit_width;
  s.search_range = 1;
  s.max_fix_pos = max_fix_pos;
  return search_channels(x, layout, s, true);
}

FiniteRange finite_range(const double* x, int64_t n) {
  MinMax<double> mm;
  minmax_span(x, n, mm);
  return {mm.min, mm.max, mm.finite};
}

FiniteRange combine(const FiniteRange& a, const FiniteRange& b) {
  if (a.finite == 0) return b;
  if (b.finite == 0) return a;
  return {std::min(a.min, b.min), std::max(a.max, b.max), a.finite + b.finite};
}

// The one-channel case of search_channels (same blocks, same lane order, same comparisons),
// serial and with the candidates' grids and error sums on the stack.
int diffs_fix_pos_in_range(const double* x, int64_t n, const FiniteRange& range, const FixPosSearch& s) {
  check_search(s);
  if (n <= 0) {
    throw std::invalid_argument(
        "cannot calibrate a fix position from an empty tensor (or empty channel); pass at least "
        "one finite value");
  }
  if (range.finite == 0) {
    throw std::invalid_argument("cannot calibrate a fix position: the tensor has no finite value (all NaN or inf)");
  }
  const std::optional<int> max_scale = max_scale_of<double>(range.min, range.max, s.bit_width);
  if (!max_scale) return zero_result(s.max_fix_pos);
  const int k = s.search_range;
  if (k == 1 || (s.max_fix_pos && *max_scale >= *s.max_fix_pos)) return cap(*max_scale, s.max_fix_pos);
  Grid grids[kMaxSearchRange];
  double err[kMaxSearchRange];
  for (int j = 0; j < k; ++j) {
    grids[j] = make_grid(s.bit_width, *max_scale + j);
    err[j] = 0.0;
  }
  for (int64_t begin = 0; begin < n; begin += kChunkElements) {
    double block[kMaxSearchRange];
    for (int j = 0; j < k; ++j) block[j] = 0.0;
    sse_span(x + begin, std::min(kChunkElements, n - begin), grids, k, s.method, block);
    for (int j = 0; j < k; ++j) err[j] += block[j];
  }
  int best = 0;
  for (int j = 1; j < k; ++j)
    if (err[j] < err[best]) best = j;
  return cap(*max_scale + best, s.max_fix_pos);
}

#define NNDCT_INSTANTIATE_CALIB(T)                                                            \
  template int diffs_fix_pos<T>(const T*, int64_t, const FixPosSearch&);                     \
  template int maxmin_fix_pos<T>(const T*, int64_t, int, std::optional<int>);                \
  template std::vector<int32_t> diffs_fix_pos_per_channel<T>(const T*, const ChannelLayout&, \
                                                             const FixPosSearch&);           \
  template std::vector<int32_t> maxmin_fix_pos_per_channel<T>(                               \
      const T*, const ChannelLayout&, int, std::optional<int>);
NNDCT_INSTANTIATE_CALIB(float)
NNDCT_INSTANTIATE_CALIB(double)

}  // namespace nndct

// fix_neuron / fix_codes over arrays: per-method specialised loops, multi-versioned for AVX2,
// spread over threads in fixed chunks.
#include "nndct/fix_kernels.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "nndct/grid.h"
#include "nndct/parallel.h"
#include "nndct/simd.h"

namespace nndct {
namespace {

template <typename T, Method M>
NNDCT_ALWAYS_INLINE void fake_quant_loop(const T* NNDCT_RESTRICT x, T* NNDCT_RESTRICT out,
                                         int64_t n, const Grid& grid) {
  const Grid g = grid;  // a local copy: stores through `out` cannot alias it
  for (int64_t i = 0; i < n; ++i) out[i] = value_of<T>(code_of<T, M>(x[i], g), g);
}

// In place: one pointer, so no aliasing question (and no __restrict__ lie) arises.
template <typename T, Method M>
NNDCT_ALWAYS_INLINE void fake_quant_loop_inplace(T* data, int64_t n, const Grid& grid) {
  const Grid g = grid;
  for (int64_t i = 0; i < n; ++i) data[i] = value_of<T>(code_of<T, M>(data[i], g), g);
}

template <typename T, typename C, Method M>
NNDCT_ALWAYS_INLINE void code_loop(const T* NNDCT_RESTRICT x, C* NNDCT_RESTRICT out, int64_t n,
                                   const Grid& grid) {
  const Grid g = grid;
  for (int64_t i = 0; i < n; ++i) {
    const double q = code_of<T, M>(x[i], g);
    out[i] = static_cast<C>(static_cast<int32_t>(q == q ? q : 0.0));  // |q| <= 2^31: int32 is exact and vectorizes
  }
}

// Consecutive runs [first, last) of a [outer, channels, inner] layout; run r starts at element
// r * inner and belongs to channel r % channels.
struct Runs {
  int64_t first;
  int64_t last;
  int64_t inner;
  int64_t channels;
  const Grid* grids;  // one per channel
};

template <typename T, Method M>
NNDCT_ALWAYS_INLINE void fake_quant_runs(const T* x, T* out, const Runs& runs) {
  int64_t c = runs.first % runs.channels;
  for (int64_t r = runs.first; r < runs.last; ++r) {
    const int64_t off = r * runs.inner;
    if (x == out) {
      fake_quant_loop_inplace<T, M>(out + off, runs.inner, runs.grids[c]);
    } else {
      fake_quant_loop<T, M>(x + off, out + off, runs.inner, runs.grids[c]);
    }
    if (++c == runs.channels) c = 0;
  }
}

template <typename T, typename C, Method M>
NNDCT_ALWAYS_INLINE void code_runs(const T* x, C* out, const Runs& runs) {
  int64_t c = runs.first % runs.channels;
  for (int64_t r = runs.first; r < runs.last; ++r) {
    const int64_t off = r * runs.inner;
    code_loop<T, C, M>(x + off, out + off, runs.inner, runs.grids[c]);
    if (++c == runs.channels) c = 0;
  }
}

// The multi-versioned entry points: the method switch sits outside the loops, and the per-run
// loop is inside the clone so that short runs (e.g. a channel axis that is the last one) cost no
// call each.
#define NNDCT_DEFINE_FAKE_QUANT_SPAN(T)                                                       \
  NNDCT_TARGET_CLONES void fake_quant_span(const T* x, T* out, int64_t n, const Grid& g,       \
                                           Method m) {                                        \
    if (x == out) {                                                                           \
      NNDCT_SWITCH_METHOD(m, (fake_quant_loop_inplace<T, M>(out, n, g)));                     \
    } else {                                                                                  \
      NNDCT_SWITCH_METHOD(m, (fake_quant_loop<T, M>(x, out, n, g)));                          \
    }                                                                                         \
  }                                                                                           \
  NNDCT_TARGET_CLONES void fake_quant_runs_span(const T* x, T* out, const Runs& runs,         \
                                                Method m) {                                   \
    NNDCT_SWITCH_METHOD(m, (fake_quant_runs<T, M>(x, out, runs)));                            \
  }
NNDCT_DEFINE_FAKE_QUANT_SPAN(float)
NNDCT_DEFINE_FAKE_QUANT_SPAN(double)

#define NNDCT_DEFINE_CODE_SPAN(T, C)                                                            \
  NNDCT_TARGET_CLONES void code_span(const T* x, C* out, int64_t n, const Grid& g, Method m) { \
    NNDCT_SWITCH_METHOD(m, (code_loop<T, C, M>(x, out, n, g)));                                \
  }                                                                                             \
  NNDCT_TARGET_CLONES void code_runs_span(const T* x, C* out, const Runs& runs, Method m) {    \
    NNDCT_SWITCH_METHOD(m, (code_runs<T, C, M>(x, out, runs)));                                \
  }
NNDCT_DEFINE_CODE_SPAN(float, int8_t)
NNDCT_DEFINE_CODE_SPAN(float, int16_t)
NNDCT_DEFINE_CODE_SPAN(float, int32_t)
NNDCT_DEFINE_CODE_SPAN(double, int8_t)
NNDCT_DEFINE_CODE_SPAN(double, int16_t)
NNDCT_DEFINE_CODE_SPAN(double, int32_t)

template <typename C>
void check_code_type(int bit_width) {
  if (bit_width > static_cast<int>(8 * sizeof(C))) {
    throw std::invalid_argument("codes of bit_width " + std::to_string(bit_width) +
                                " do not fit the " + std::to_string(8 * sizeof(C)) +
                                "-bit output type; use a wider integer type");
  }
}

void check_common(int64_t n, int bit_width, Method method) {
  if (n < 0) throw std::invalid_argument("negative element count");
  check_bit_width(bit_width);
  method_from_int(static_cast<int>(method));
}

// Calls span(Runs) over all runs of a layout, grouped so that each parallel task covers about
// kChunkElements elements.
template <typename SpanFn>
void for_each_run_group(const ChannelLayout& layout, const Grid* grids, SpanFn&& span) {
  const int64_t runs = layout.outer * layout.channels;
  if (runs == 0 || layout.inner == 0) return;
  const int64_t runs_per_task = std::max<int64_t>(1, kChunkElements / layout.inner);
  const int64_t tasks = (runs + runs_per_task - 1) / runs_per_task;
  auto task = [&](int64_t t) {
    const int64_t first = t * runs_per_task;
    span(Runs{first, std::min(runs, first + runs_per_task), layout.inner, layout.channels, grids});
  };
  if (layout.size() < kChunkElements) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    parallel_for_chunks(tasks, task);
  }
}

std::vector<Grid> channel_grids(const ChannelLayout& layout, int bit_width, const int32_t* fix_pos) {
  if (layout.outer < 0 || layout.channels < 0 || layout.inner < 0) {
    throw std::invalid_argument("negative dimension in channel layout");
  }
  std::vector<Grid> grids;
  grids.reserve(static_cast<size_t>(layout.channels));
  for (int64_t c = 0; c < layout.channels; ++c) {
    check_fix_pos(fix_pos[c]);
    grids.push_back(make_grid(bit_width, fix_pos[c]));
  }
  return grids;
}

}  // namespace

template <typename T>
void fix_neuron(const T* x, T* out, int64_t n, int bit_width, int fix_pos, Method method) {
  check_common(n, bit_width, method);
  check_fix_pos(fix_pos);
  const Grid g = make_grid(bit_width, fix_pos);
  parallel_for_range(n, [&](int64_t b, int64_t e) { fake_quant_span(x + b, out + b, e - b, g, method); });
}

template <typename T, typename C>
void fix_codes(const T* x, C* out, int64_t n, int bit_width, int fix_pos, Method method) {
  check_common(n, bit_width, method);
  check_fix_pos(fix_pos);
  check_code_type<C>(bit_width);
  const Grid g = make_grid(bit_width, fix_pos);
  parallel_for_range(n, [&](int64_t b, int64_t e) { code_span(x + b, out + b, e - b, g, method); });
}

template <typename T>
void fix_neuron_per_channel(const T* x, T* out, const ChannelLayout& layout, int bit_width,
                            const int32_t* fix_pos, Method method) {
  check_common(layout.size(), bit_width, method);
  const std::vector<Grid> grids = channel_grids(layout, bit_width, fix_pos);
  for_each_run_group(layout, grids.data(), [&](const Runs& runs) { fake_quant_runs_span(x, out, runs, method); });
}

template <typename T, typename C>
void fix_codes_per_channel(const T* x, C* out, const ChannelLayout& layout, int bit_width,
                           const int32_t* fix_pos, Method method) {
  check_common(layout.size(), bit_width, method);
  check_code_type<C>(bit_width);
  const std::vector<Grid> grids = channel_grids(layout, bit_width, fix_pos);
  for_each_run_group(layout, grids.data(), [&](const Runs& runs) { code_runs_span(x, out, runs, method); });
}

template void fix_neuron<float>(const float*, float*, int64_t, int, int, Method);
template void fix_neuron<double>(const double*, double*, int64_t, int, int, Method);
template void fix_neuron_per_channel<float>(const float*, float*, const ChannelLayout&, int,
                                            const int32_t*, Method);
template void fix_neuron_per_channel<double>(const double*, double*, const ChannelLayout&, int,
                                             const int32_t*, Method);
#define NNDCT_INSTANTIATE_CODES(T, C)                                                        \
  template void fix_codes<T, C>(const T*, C*, int64_t, int, int, Method);                   \
  template void fix_codes_per_channel<T, C>(const T*, C*, const ChannelLayout&, int,        \
                                            const int32_t*, Method);
NNDCT_INSTANTIATE_CODES(float, int8_t)
NNDCT_INSTANTIATE_CODES(float, int16_t)
NNDCT_INSTANTIATE_CODES(float, int32_t)
NNDCT_INSTANTIATE_CODES(double, int8_t)
NNDCT_INSTANTIATE_CODES(double, int16_t)
NNDCT_INSTANTIATE_CODES(double, int32_t)

}  // namespace nndct

// gate_matmul: packing, the overflow bounds, and one kernel per instruction set (see
// gate_matmul.h for the layout and the exactness argument).
#include "nndct/gate_matmul.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#define NNDCT_X86_KERNELS 1
#include <immintrin.h>
#endif

namespace nndct {

template <typename T>
void AlignedArray<T>::resize(int64_t n) {
  n_ = n;
  const size_t bytes = ((static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  p_.reset(static_cast<T*>(p));
}
template class AlignedArray<int16_t>;
template class AlignedArray<int32_t>;
template class AlignedArray<int64_t>;
template class AlignedArray<double>;
template class AlignedArray<float>;

namespace {

constexpr int64_t kInt32Limit = std::numeric_limits<int32_t>::max();
constexpr int kLanes = static_cast<int>(kUnitBlock);

}  // namespace

PackedGates::PackedGates(const int32_t* codes, int gates, int64_t units, int64_t in)
    : gates_(gates), units_(units), in_(in) {
  if (gates < 1 || gates > 4) throw std::invalid_argument("PackedGates supports 1 to 4 gates");
  if (units < 1 || in < 0) throw std::invalid_argument("PackedGates needs units >= 1 and in >= 0");
  const int64_t P = pairs(), B = blocks();
  data_.resize(B * P * gates * 2 * kUnitBlock);
  for (int64_t g = 0; g < gates; ++g)
    for (int64_t j = 0; j < units; ++j) {
      const int32_t* row = codes + (g * units + j) * in;
      const int64_t b = j / kUnitBlock, l = j % kUnitBlock;
      for (int64_t k = 0; k < in; ++k) {
        const int32_t v = row[k];
        if (v < std::numeric_limits<int16_t>::min() || v > std::numeric_limits<int16_t>::max())
          throw std::invalid_argument("weight code " + std::to_string(v) + " does not fit 16 bits");
        const int64_t p = k / 2, e = k % 2;
        data_[((b * P + p) * gates + g) * 2 * kUnitBlock + 2 * l + e] = static_cast<int16_t>(v);
      }
    }
  // l1_[e] = max over rows and aligned groups of 2^e pairs of sum |w|.
  std::vector<int64_t> cur(static_cast<size_t>(P)), best;
  for (int64_t row = 0; row < gates * units; ++row) {
    const int32_t* w = codes + row * in;
    int64_t n = P;
    for (int64_t p = 0; p < P; ++p) {
      const int64_t a = std::abs(static_cast<int64_t>(w[2 * p]));
      const int64_t b = 2 * p + 1 < in ? std::abs(static_cast<int64_t>(w[2 * p + 1])) : 0;
      cur[static_cast<size_t>(p)] = a + b;
    }
    for (size_t level = 0;; ++level) {
      int64_t m = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, cur[static_cast<size_t>(i)]);
      if (best.size() <= level) best.push_back(0);
      best[level] = std::max(best[level], m);
      if (n <= 1) break;
      for (int64_t i = 0; i < (n + 1) / 2; ++i)
        cur[static_cast<size_t>(i)] = cur[static_cast<size_t>(2 * i)] + (2 * i + 1 < n ? cur[static_cast<size_t>(2 * i + 1)] : 0);
      n = (n + 1) / 2;
    }
  }
  l1_ = best.empty() ? std::vector<int64_t>{0} : best;
}

int64_t PackedGates::flush_pairs(int64_t max_abs_x) const {
  const int64_t never = std::max<int64_t>(pairs(), 1);
  if (max_abs_x == 0) return never;
  if (l1_[0] * max_abs_x > kInt32Limit) return 0;
  size_t e = 0;
  while (e + 1 < l1_.size() && l1_[e + 1] * max_abs_x <= kInt32Limit) ++e;
  if (e + 1 == l1_.size()) return never;  // the whole row is one group
  return int64_t{1} << e;
}

namespace {

enum class Isa : int { kPortable = 0, kAvx2 = 1, kAvx512Bw = 2, kAvx512Vnni = 3 };

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kAvx512Bw: return "avx512bw";
    case Isa::kAvx2: return "avx2";
    case Isa::kPortable: break;
  }
  return "portable";
}

Isa best_isa() {
#ifdef NNDCT_X86_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    return __builtin_cpu_supports("avx512vnni") ? Isa::kAvx512Vnni : Isa::kAvx512Bw;
  }
  if (__builtin_cpu_supports("avx2")) return Isa::kAvx2;
#endif
  return Isa::kPortable;
}

std::atomic<int>& chosen_isa() {
  static std::atomic<int> isa{static_cast<int>(best_isa())};
  return isa;
}

// The portable loop: int64 sums, no flush needed (|sum| <= in * 2^30).
void block_portable(const int16_t* wb, int G, int64_t pairs, const int16_t* x, int64_t* acc, int64_t col,
                    int64_t gstride) {
  int64_t sum[4][kLanes] = {};
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t x0 = x[2 * p], x1 = x[2 * p + 1];
    const int16_t* w = wb + p * G * 2 * kLanes;
    for (int g = 0; g < G; ++g)
      for (int l = 0; l < kLanes; ++l)
        sum[g][l] += x0 * w[(g * kLanes + l) * 2] + x1 * w[(g * kLanes + l) * 2 + 1];
  }
  for (int g = 0; g < G; ++g)
    for (int l = 0; l < kLanes; ++l) acc[g * gstride + col + l] = sum[g][l];
}

inline int32_t load_pair(const int16_t* x) {
  int32_t v;
  std::memcpy(&v, x, sizeof v);
  return v;
}

#ifdef NNDCT_X86_KERNELS

// ---- AVX-512: R rows x G gates x 16 lanes of int32 accumulators per tile. R <= 2 keeps a
// second accumulator set for odd pairs (two independent dependency chains per register).
// dst[0..16) (+)= the 16 int32 lanes of v widened to int64 (the first flush stores).
__attribute__((target("avx512f"))) inline void flush_lanes_512(int64_t* dst, __m512i v, bool first) {
  __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
  __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1));
  if (!first) {
    lo = _mm512_add_epi64(_mm512_loadu_si512(dst), lo);
    hi = _mm512_add_epi64(_mm512_loadu_si512(dst + 8), hi);
  }
  _mm512_storeu_si512(dst, lo);
  _mm512_storeu_si512(dst + 8, hi);
}

#define NNDCT_BLOCK_512_BODY(DOT)                                                                 \
  constexpr bool kTwo = R <= 2;                                                                   \
  for (int64_t p0 = 0; p0 == 0 || p0 < pairs; p0 += flush) {                                      \
    const int64_t p1 = pairs - p0 < flush ? pairs : p0 + flush;                                   \
    __m512i a[R][G], b[R][G];                                                                     \
    for (int r = 0; r < R; ++r)                                                                   \
      for (int g = 0; g < G; ++g) a[r][g] = b[r][g] = _mm512_setzero_si512();                     \
    int64_t p = p0;                                                                               \
    if (kTwo) {                                                                                   \
      for (; p + 2 <= p1; p += 2) {                                                               \
        const __m512i* w0 = reinterpret_cast<const __m512i*>(wb + p * G * 2 * kLanes);            \
        const __m512i* w1 = w0 + G;                                                               \
        for (int r = 0; r < R; ++r) {                                                             \
          const __m512i x0 = _mm512_set1_epi32(load_pair(x[r] + 2 * p));                          \
          const __m512i x1 = _mm512_set1_epi32(load_pair(x[r] + 2 * p + 2));                      \
          for (int g = 0; g < G; ++g) {                                                           \
            a[r][g] = DOT(a[r][g], x0, _mm512_load_si512(w0 + g));                                \
            b[r][g] = DOT(b[r][g], x1, _mm512_load_si512(w1 + g));                                \
          }                                                                                       \
        }                                                                                         \
      }                                                                                           \
    }                                                                                             \
    for (; p < p1; ++p) {                                                                         \
      const __m512i* w0 = reinterpret_cast<const __m512i*>(wb + p * G * 2 * kLanes);              \
      __m512i wv[G];                                                                              \
      for (int g = 0; g < G; ++g) wv[g] = _mm512_load_si512(w0 + g);                              \
      for (int r = 0; r < R; ++r) {                                                               \
        const __m512i x0 = _mm512_set1_epi32(load_pair(x[r] + 2 * p));                           \
        for (int g = 0; g < G; ++g) a[r][g] = DOT(a[r][g], x0, wv[g]);                            \
      }                                                                                           \
    }                                                                                             \
    for (int r = 0; r < R; ++r)                                                                   \
      for (int g = 0; g < G; ++g)                                                                 \
        flush_lanes_512(acc[r] + g * gstride + col, kTwo ? _mm512_add_epi32(a[r][g], b[r][g]) : a[r][g], \
                        p0 == 0);                                                                 \
  }

#define NNDCT_DOT_VNNI(acc, x, w) _mm512_dpwssd_epi32(acc, x, w)
#define NNDCT_DOT_BW(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))

template <int G, int R>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void block_vnni(const int16_t* wb, int64_t pairs,
                                                                       const int16_t* const* x, int64_t flush,
                                                                       int64_t* const* acc, int64_t col,
                                                                       int64_t gstride) {
  NNDCT_BLOCK_512_BODY(NNDCT_DOT_VNNI)
}

template <int G, int R>
__attribute__((target("avx512f,avx512bw"))) void block_bw(const int16_t* wb, int64_t pairs, const int16_t* const* x,
                                                          int64_t flush, int64_t* const* acc, int64_t col,
                                                          int64_t gstride) {
  NNDCT_BLOCK_512_BODY(NNDCT_DOT_BW)
}

// ---- AVX2: one row, G gates x 2 halves of 8 int32 lanes (vpmaddwd + vpaddd).
__attribute__((target("avx2"))) inline void flush_lanes_256(int64_t* dst, __m256i v, bool first) {
  __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
  __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1));
  if (!first) {
    lo = _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(dst)), lo);
    hi = _mm256_add_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(dst + 4)), hi);
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), lo);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4), hi);
}

template <int G, int R>
__attribute__((target("avx2"))) void block_avx2(const int16_t* wb, int64_t pairs, const int16_t* const* x,
                                                int64_t flush, int64_t* const* acc, int64_t col, int64_t gstride) {
  for (int r = 0; r < R; ++r) {
    int64_t* out = acc[r];
    for (int64_t p0 = 0; p0 == 0 || p0 < pairs; p0 += flush) {
      const int64_t p1 = pairs - p0 < flush ? pairs : p0 + flush;
      __m256i a[G][2];
      for (int g = 0; g < G; ++g) a[g][0] = a[g][1] = _mm256_setzero_si256();
      for (int64_t p = p0; p < p1; ++p) {
        const __m256i* w = reinterpret_cast<const __m256i*>(wb + p * G * 2 * kLanes);
        const __m256i xv = _mm256_set1_epi32(load_pair(x[r] + 2 * p));
        for (int g = 0; g < G; ++g) {
          a[g][0] = _mm256_add_epi32(a[g][0], _mm256_madd_epi16(xv, _mm256_load_si256(w + 2 * g)));
          a[g][1] = _mm256_add_epi32(a[g][1], _mm256_madd_epi16(xv, _mm256_load_si256(w + 2 * g + 1)));
        }
      }
      for (int g = 0; g < G; ++g) {
        flush_lanes_256(out + g * gstride + col, a[g][0], p0 == 0);
        flush_lanes_256(out + g * gstride + col + 8, a[g][1], p0 == 0);
      }
    }
  }
}

#endif  // NNDCT_X86_KERNELS

using BlockFn = void (*)(const int16_t*, int64_t, const int16_t* const*, int64_t, int64_t* const*, int64_t, int64_t);

#ifdef NNDCT_X86_KERNELS
template <int G>
BlockFn pick_block(Isa isa, int R) {
  switch (isa) {
    case Isa::kAvx512Vnni:
      return R == 4 ? block_vnni<G, 4> : R == 3 ? block_vnni<G, 3> : R == 2 ? block_vnni<G, 2> : block_vnni<G, 1>;
    case Isa::kAvx512Bw:
      return R == 4 ? block_bw<G, 4> : R == 3 ? block_bw<G, 3> : R == 2 ? block_bw<G, 2> : block_bw<G, 1>;
    case Isa::kAvx2:
      return R == 4 ? block_avx2<G, 4> : R == 3 ? block_avx2<G, 3> : R == 2 ? block_avx2<G, 2> : block_avx2<G, 1>;
    case Isa::kPortable: break;
  }
  return nullptr;
}

BlockFn block_kernel(Isa isa, int G, int R) {
  switch (G) {
    case 1: return pick_block<1>(isa, R);
    case 2: return pick_block<2>(isa, R);
    case 3: return pick_block<3>(isa, R);
    default: return pick_block<4>(isa, R);
  }
}
#endif

int64_t max_abs(const int16_t* const* x, int64_t rows, int64_t n) {
  int32_t m = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int16_t* v = x[r];
    int32_t mr = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int32_t a = v[k] < 0 ? -int32_t{v[k]} : int32_t{v[k]};
      mr = a > mr ? a : mr;
    }
    m = mr > m ? mr : m;
  }
  return m;
}

// The SIMD kernels with a flush interval that keeps every int32 partial sum exact.
void simd_matmul(Isa isa, const PackedGates& w, const int16_t* const* x, int64_t rows, int64_t b0, int64_t b1,
                 int64_t* const* acc, int64_t flush) {
#ifdef NNDCT_X86_KERNELS
  const int G = w.gates();
  const int64_t gstride = w.padded_units(), P = w.pairs();
  for (int64_t b = b0; b < b1; ++b) {
    const int16_t* wb = w.block(b);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) block_kernel(isa, G, 4)(wb, P, x + r, flush, acc + r, b * kUnitBlock, gstride);
    const int left = static_cast<int>(rows - r);
    if (left > 0) block_kernel(isa, G, left)(wb, P, x + r, flush, acc + r, b * kUnitBlock, gstride);
  }
#else
  (void)isa, (void)w, (void)x, (void)rows, (void)b0, (void)b1, (void)acc, (void)flush;
#endif
}

}  // namespace

const char* gate_matmul_isa() { return isa_name(static_cast<Isa>(chosen_isa().load())); }

bool set_gate_matmul_isa(const char* name) {
  const Isa best = best_isa();
  const std::string n(name);
  Isa want;
  if (n == "auto") {
    want = best;
  } else if (n == "avx512vnni") {
    want = Isa::kAvx512Vnni;
  } else if (n == "avx512bw") {
    want = Isa::kAvx512Bw;
  } else if (n == "avx2") {
    want = Isa::kAvx2;
  } else if (n == "portable") {
    want = Isa::kPortable;
  } else {
    return false;
  }
  if (static_cast<int>(want) > static_cast<int>(best)) return false;
  chosen_isa().store(static_cast<int>(want));
  return true;
}

void gate_matmul(const PackedGates& w, const int16_t* const* x, int64_t rows, int64_t b0, int64_t b1,
                 int64_t* const* acc) {
  if (rows <= 0 || b0 >= b1) return;
  const Isa isa = static_cast<Isa>(chosen_isa().load(std::memory_order_relaxed));
  const int G = w.gates();
  const int64_t gstride = w.padded_units(), P = w.pairs();
  if (isa == Isa::kPortable) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = b0; b < b1; ++b) block_portable(w.block(b), G, P, x[r], acc[r], b * kUnitBlock, gstride);
    return;
  }
  const int64_t flush = w.flush_pairs(max_abs(x, rows, w.in()));
  if (flush > 0) {
    simd_matmul(isa, w, x, rows, b0, b1, acc, flush);
    return;
  }
  // A pair of -32768 weights meets a -32768 input: x = 256 * hi + lo, two exact products.
  const int64_t n = w.padded_in(), width = G * gstride;
  AlignedArray<int16_t> parts(2 * rows * n);
  AlignedArray<int64_t> sums(rows * width);
  std::vector<const int16_t*> lo_rows(static_cast<size_t>(rows)), hi_rows(static_cast<size_t>(rows));
  std::vector<int64_t*> hi_acc(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    int16_t* lo = parts.data() + (2 * r) * n;
    int16_t* hi = parts.data() + (2 * r + 1) * n;
    for (int64_t k = 0; k < w.in(); ++k) {
      lo[k] = static_cast<int16_t>(x[r][k] & 0xff);
      hi[k] = static_cast<int16_t>(x[r][k] >> 8);
    }
    lo_rows[static_cast<size_t>(r)] = lo;
    hi_rows[static_cast<size_t>(r)] = hi;
    hi_acc[static_cast<size_t>(r)] = sums.data() + r * width;
  }
  simd_matmul(isa, w, lo_rows.data(), rows, b0, b1, acc, w.flush_pairs(255));
  simd_matmul(isa, w, hi_rows.data(), rows, b0, b1, hi_acc.data(), w.flush_pairs(128));
  for (int64_t r = 0; r < rows; ++r)
    for (int g = 0; g < G; ++g)
      for (int64_t j = b0 * kUnitBlock; j < b1 * kUnitBlock; ++j)
        acc[r][g * gstride + j] += 256 * hi_acc[static_cast<size_t>(r)][g * gstride + j];
}

}  // namespace nndct

// dense_rows: a portable loop and AVX2+FMA / AVX-512 register-tiled kernels, picked once per process.
#include "nndct/dense_rows.h"

#include <algorithm>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NNDCT_HAVE_AVX2_KERNEL 1
#include <immintrin.h>
#endif

namespace nndct {

void dense_rows_portable(const double* const* rows, int64_t nrows, int64_t in, const double* wt,
                         int64_t cols, double* acc) {
  std::fill(acc, acc + nrows * cols, 0.0);
  for (int64_t r = 0; r < nrows; ++r) {
    double* dst = acc + r * cols;
    for (int64_t k = 0; k < in; ++k) {
      const double a = rows[r][k];
      if (a == 0.0) continue;
      const double* w = wt + k * cols;
      for (int64_t j = 0; j < cols; ++j) dst[j] += a * w[j];
    }
  }
}

#ifdef NNDCT_HAVE_AVX2_KERNEL
namespace {

// One row against columns [j0, width) of a [in][stride] block with the portable loop (tails).
void row_tail(const double* x, int64_t in, const double* wt, int64_t stride, int64_t j0, int64_t width,
              double* dst) {
  for (int64_t j = j0; j < width; ++j) dst[j] = 0.0;
  for (int64_t k = 0; k < in; ++k) {
    const double a = x[k];
    const double* w = wt + k * stride;
    for (int64_t j = j0; j < width; ++j) dst[j] += a * w[j];
  }
}

// R rows (1..4) x 8 columns per tile: 2R accumulators, 2 weight loads and R broadcasts per k.
// Columns [0, width) of a [in][stride] weight block.
template <int R>
__attribute__((target("avx2,fma"))) void tile_rows_cols(const double* const* x, int64_t in, const double* wt,
                                                        int64_t stride, int64_t width, double* const* dst) {
  int64_t j = 0;
  for (; j + 8 <= width; j += 8) {
    __m256d lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_pd();
    const double* w = wt + j;
    for (int64_t k = 0; k < in; ++k, w += stride) {
      const __m256d w0 = _mm256_loadu_pd(w);
      const __m256d w1 = _mm256_loadu_pd(w + 4);
      for (int r = 0; r < R; ++r) {
        const __m256d a = _mm256_broadcast_sd(x[r] + k);
        lo[r] = _mm256_fmadd_pd(a, w0, lo[r]);
        hi[r] = _mm256_fmadd_pd(a, w1, hi[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_pd(dst[r] + j, lo[r]);
      _mm256_storeu_pd(dst[r] + j + 4, hi[r]);
    }
  }
  if (j < width)
    for (int r = 0; r < R; ++r) row_tail(x[r], in, wt, stride, j, width, dst[r]);
}

// The same tile with AVX-512: R rows x 16 columns, twice the work per instruction.
template <int R>
__attribute__((target("avx512f"))) void tile_rows_512(const double* const* x, int64_t in, const double* wt,
                                                       int64_t cols, double* const* dst) {
  int64_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    __m512d lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_pd();
    const double* w = wt + j;
    for (int64_t k = 0; k < in; ++k, w += cols) {
      const __m512d w0 = _mm512_loadu_pd(w);
      const __m512d w1 = _mm512_loadu_pd(w + 8);
      for (int r = 0; r < R; ++r) {
        const __m512d a = _mm512_set1_pd(x[r][k]);
        lo[r] = _mm512_fmadd_pd(a, w0, lo[r]);
        hi[r] = _mm512_fmadd_pd(a, w1, hi[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_pd(dst[r] + j, lo[r]);
      _mm512_storeu_pd(dst[r] + j + 8, hi[r]);
    }
  }
  if (j < cols) {  // the last < 16 columns with the AVX2 tile
    const double* sub[R];
    double* sub_dst[R];
    for (int r = 0; r < R; ++r) { sub[r] = x[r]; sub_dst[r] = dst[r] + j; }
    tile_rows_cols<R>(sub, in, wt + j, cols, cols - j, sub_dst);
  }
}

enum class Isa { kPortable, kAvx2, kAvx512 };

template <template <int> class Tile>
void tiled(const double* const* rows, int64_t nrows, int64_t in, const double* wt, int64_t cols, double* acc) {
  int64_t r = 0;
  double* dst[4];
  for (; r + 4 <= nrows; r += 4) {
    for (int i = 0; i < 4; ++i) dst[i] = acc + (r + i) * cols;
    Tile<4>::run(rows + r, in, wt, cols, dst);
  }
  const int64_t left = nrows - r;
  for (int i = 0; i < left; ++i) dst[i] = acc + (r + i) * cols;
  if (left == 3) Tile<3>::run(rows + r, in, wt, cols, dst);
  if (left == 2) Tile<2>::run(rows + r, in, wt, cols, dst);
  if (left == 1) Tile<1>::run(rows + r, in, wt, cols, dst);
}

template <int R>
struct Avx2Tile {
  static void run(const double* const* x, int64_t in, const double* wt, int64_t cols, double* const* dst) {
    tile_rows_cols<R>(x, in, wt, cols, cols, dst);
  }
};

template <int R>
struct Avx512Tile {
  static void run(const double* const* x, int64_t in, const double* wt, int64_t cols, double* const* dst) {
    tile_rows_512<R>(x, in, wt, cols, dst);
  }
};

Isa detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kPortable;
}

Isa isa() {
  static const Isa value = detect_isa();
  return value;
}

}  // namespace
#endif

const char* dense_rows_isa() {
#ifdef NNDCT_HAVE_AVX2_KERNEL
  switch (isa()) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kPortable: break;
  }
#endif
  return "portable";
}

void dense_rows(const double* const* rows, int64_t nrows, int64_t in, const double* wt,
                int64_t cols, double* acc) {
#ifdef NNDCT_HAVE_AVX2_KERNEL
  switch (isa()) {
    case Isa::kAvx512: return tiled<Avx512Tile>(rows, nrows, in, wt, cols, acc);
    case Isa::kAvx2: return tiled<Avx2Tile>(rows, nrows, in, wt, cols, acc);
    case Isa::kPortable: break;
  }
#endif
  dense_rows_portable(rows, nrows, in, wt, cols, acc);
}

}  // namespace nndct

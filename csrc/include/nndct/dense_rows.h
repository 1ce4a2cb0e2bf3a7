// The matrix products of the LSTM loops: acc[r][j] = sum_k rows[r][k] * wt[k][j].
//
// Why one kernel with an exactness contract: in both LSTM modes every operand is a code (or a
// value on a power-of-two grid) whose products and sums are integers times one common scale
// below 2^53, so every partial sum is exact and the result does not depend on the order of the
// additions. That freedom is what lets the AVX2 / AVX-512 paths keep a 4-row x 8/16-column tile of
// accumulators in registers and use FMA, and still give bit-identical results to the portable
// loop (the tests compare both paths).
#pragma once

#include <cstdint>

namespace nndct {

// acc[r * cols + j] = sum_k rows[r][k] * wt[k * cols + j], for r < nrows, j < cols.
// `rows` are nrows pointers to `in` values each; `wt` is [in][cols] (a transposed weight).
void dense_rows(const double* const* rows, int64_t nrows, int64_t in, const double* wt,
                int64_t cols, double* acc);

// The same with the portable loop only (for tests of the dispatch).
void dense_rows_portable(const double* const* rows, int64_t nrows, int64_t in, const double* wt,
                         int64_t cols, double* acc);

// The kernel dense_rows uses on this CPU: "avx512", "avx2" (with FMA) or "portable".
const char* dense_rows_isa();

}  // namespace nndct

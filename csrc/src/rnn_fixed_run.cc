// The shared parts of the recurrent cells' test-mode loops (see rnn_fixed_run.h).
#include "nndct/rnn_fixed_run.h"

#include <algorithm>

#include "nndct/fix_point.h"

namespace nndct {
namespace rnn {

InputProjection::InputProjection(int gates, int64_t units, int64_t in, const int32_t* w_codes,
                                 const int32_t* bias_codes, int bit_width, int in_fp, const int* w_fp,
                                 const int* node_fp, const int* bias_fp, int input_bits, const int* dense_bits)
    : w(w_codes, gates, units, in), input_fp(in_fp), lo(code_min(input_bits ? input_bits : bit_width)),
      hi(code_max(input_bits ? input_bits : bit_width)) {
  for (int g = 0; g < gates; ++g) {
    const int bits = dense_bits && dense_bits[g] ? dense_bits[g] : bit_width;
    dense_lo[g] = code_min(bits);
    dense_hi[g] = code_max(bits);
  }
  const int64_t Hp = w.padded_units();
  if (bias_codes) {
    bias.assign(static_cast<size_t>(gates * Hp), 0);
    for (int g = 0; g < gates; ++g)
      std::copy(bias_codes + g * units, bias_codes + (g + 1) * units, bias.begin() + g * Hp);
  }
  for (int g = 0; g < gates; ++g) dense[g] = DenseBiasPlan::make(in_fp + w_fp[g], node_fp[g], bias_fp[g]);
}

ProjectionScratch::ProjectionScratch(const InputProjection& p)
    : acc(kProjectionRows * p.w.gates() * p.w.padded_units()), xq(kProjectionRows * p.w.padded_in()),
      in_rows(kProjectionRows), acc_rows(kProjectionRows), dst(kProjectionRows) {}

template <typename TIn>
void project_steps(const InputProjection& p, const Sequence<TIn>& seq, const int64_t* len, int64_t r0, int64_t r1,
                   int64_t b0, int64_t b1, int64_t t0, int64_t t1, int32_t* proj, ProjectionScratch& sc,
                   StepRecord* record) {
  const int64_t T = seq.steps, I = seq.input_size, G = p.w.gates(), Hp = p.w.padded_units(), Ip = p.w.padded_in();
  const int64_t width = G * Hp, rows = r1 - r0;
  const int64_t j0 = b0 * kUnitBlock, j1 = std::min(p.w.units(), b1 * kUnitBlock);
  const bool record_input = record && r0 == 0 && b0 == 0;
  int64_t n = 0;
  auto flush = [&]() {
    gate_matmul(p.w, sc.in_rows.data(), n, b0, b1, sc.acc_rows.data());
    for (int64_t k = 0; k < n; ++k)
      for (int g = 0; g < G; ++g)
        lstm::dense_bias_codes(p.dense[g], p.dense_lo[g], p.dense_hi[g], j1 - j0, sc.acc_rows[static_cast<size_t>(k)] + g * Hp + j0,
                               p.bias.empty() ? nullptr : p.bias.data() + g * Hp + j0,
                               sc.dst[static_cast<size_t>(k)] + g * Hp + j0);
    n = 0;
  };
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t L = len[r];
      if (t >= L) continue;
      const int64_t pos = seq.reverse ? L - 1 - t : t;
      int16_t* q = sc.xq.data() + n * Ip;
      lstm::floor_codes16<TIn>(seq.x + (r * T + pos) * I, I, p.input_fp, p.lo, p.hi, q);
      if (record_input && r == 0) std::copy(q, q + I, record->input0.begin() + t * I);
      sc.in_rows[static_cast<size_t>(n)] = q;
      sc.acc_rows[static_cast<size_t>(n)] = sc.acc.data() + n * width;
      sc.dst[static_cast<size_t>(n)] = proj + ((t - t0) * rows + (r - r0)) * width;
      if (++n == kProjectionRows) flush();
    }
  if (n) flush();
}
template void project_steps<double>(const InputProjection&, const Sequence<double>&, const int64_t*, int64_t, int64_t,
                                    int64_t, int64_t, int64_t, int64_t, int32_t*, ProjectionScratch&, StepRecord*);
template void project_steps<float>(const InputProjection&, const Sequence<float>&, const int64_t*, int64_t, int64_t,
                                   int64_t, int64_t, int64_t, int64_t, int32_t*, ProjectionScratch&, StepRecord*);

namespace {

// Below this many multiply-adds in a whole call, one thread does everything.
constexpr int64_t kMinParallelMacs = int64_t{1} << 22;
// Batch slices: at least this many rows each (the matrix kernel's register tile), about
// kSlicesPerThread slices per thread so that a late helper finds work left to claim.
constexpr int64_t kMinSliceRows = 4;
constexpr int64_t kSlicesPerThread = 4;
// Unit slices synchronise every step phase; they need this many recurrent multiply-adds per
// step and slice to win back the hand-offs (batch 1 at hidden >= 1024).
constexpr int64_t kMinUnitSliceMacs = int64_t{1} << 21;

}  // namespace

Split choose_split(int64_t B, int64_t step_macs, int64_t total_macs, int64_t blocks, int num_threads) {
  const int64_t n = std::max(1, num_threads);
  if (n <= 1 || total_macs < kMinParallelMacs) return {};
  const int64_t rows = std::max(kMinSliceRows, (B + kSlicesPerThread * n - 1) / (kSlicesPerThread * n));
  const int64_t slices = (B + rows - 1) / rows;
  if (slices >= 2) return {static_cast<int>(n), slices, false};
  if (step_macs / n >= kMinUnitSliceMacs && blocks >= 2 * n) return {static_cast<int>(n), n, true};
  return {};
}

SlicePlan::SlicePlan(const Split& split, int64_t B, int64_t T, int64_t nb) {
  const int64_t n = split.slices;
  slices.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Slice& sl = slices[static_cast<size_t>(i)];
    if (split.by_units) {
      sl.r1 = B;
      sl.b0 = i * nb / n;
      sl.b1 = (i + 1) * nb / n;
    } else {
      sl.r0 = i * B / n;
      sl.r1 = (i + 1) * B / n;
      sl.b1 = nb;
    }
    max_rows = std::max(max_rows, sl.rows());
  }
  chunk = std::max<int64_t>(1, kChunkPositions / std::max<int64_t>(max_rows, 1));
  chunks = (T + chunk - 1) / chunk;
  scratches = split.by_units ? n : std::max(1, split.threads);
}

std::vector<int64_t> sequence_lengths(const int64_t* lengths, int64_t B, int64_t T) {
  std::vector<int64_t> len(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) len[static_cast<size_t>(b)] = lengths ? std::min(std::max<int64_t>(lengths[b], 0), T) : T;
  return len;
}

}  // namespace rnn
}  // namespace nndct

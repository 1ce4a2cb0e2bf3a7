// Test mode of the quantized StandardLstmCell: integer codes end to end.
//
// Every value is held as an integer code at a known fix position; the matrix products are exact
// integer sums (gate_matmul.h), and each node's fake-quantization Q_fp (floor, then clamp)
// becomes a shift and a clamp (lstm_step_kernel.h). This is what the fixed-point hardware
// computes.
//
// Memory stays proportional to one chunk of time steps: the input projections (the
// dense-with-bias nodes) are computed for kChunkPositions positions at a time, just before the
// steps that read them, so a 20,000-step sequence needs no [steps, 4H] buffer.
#include <algorithm>
#include <cmath>
#include <vector>

#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_loops.h"
#include "nndct/thread_team.h"

namespace nndct {
namespace lstm {

FixedCell::FixedCell(const CellFix& f, int64_t in, int64_t h, const int32_t* w_ih_codes, const int32_t* w_hh_codes,
                     const int32_t* bias_codes)
    : fix(f), input_size(in), hidden(h), w_ih(w_ih_codes, kNumGates, h, in), w_hh(w_hh_codes, kNumGates, h, h),
      plan(StepPlan::make(f)) {
  const int64_t Hp = w_hh.padded_units();
  if (bias_codes) {
    bias.assign(static_cast<size_t>(kNumGates * Hp), 0);
    for (int g = 0; g < kNumGates; ++g)
      std::copy(bias_codes + g * h, bias_codes + (g + 1) * h, bias.begin() + g * Hp);
  }
  for (int g = 0; g < kNumGates; ++g)
    dense[g] = DenseBiasPlan::make(fix.node[kInput0] + fix.w_ih[g], fix.node[dense_x_node(g)], fix.bias[g]);
}

namespace {

// Positions whose input projections one thread computes ahead of its steps (a few hundred KiB
// of codes at hidden 512), and rows per projection product.
constexpr int64_t kChunkPositions = 32;
constexpr int64_t kProjectionRows = 8;

// Below this many multiply-adds in a whole call, one thread does everything (a hand-off to the
// team costs a futex wake-up, tens of microseconds on a loaded or virtual machine).
constexpr int64_t kMinParallelMacs = int64_t{1} << 22;
// Below this many recurrent multiply-adds per step and thread, a split of the units (one
// barrier per step) loses to one thread.
constexpr int64_t kMinUnitSplitMacs = int64_t{1} << 17;
// Recurrent weights up to this size stay in each core's cache when every thread reads all of
// them (a split of the batch); larger ones are better split by units when the batch is small.
constexpr int64_t kSharedWeightBytes = int64_t{512} << 10;

struct Split {
  int threads = 1;
  bool by_units = false;  // all threads step all rows, each its own units (barrier per step)
};

Split choose_split(int64_t B, int64_t T, int64_t I, int64_t H, int64_t blocks, int num_threads) {
  const int64_t step_macs = B * 4 * H * H;
  const int64_t total = T * (step_macs + B * 4 * H * I);
  const int64_t n = std::max(1, num_threads);
  if (n <= 1 || total < kMinParallelMacs) return {};
  const int64_t weight_bytes = 4 * H * H * 2;
  if (B >= 2 * n && (B >= 16 || weight_bytes <= kSharedWeightBytes)) return {static_cast<int>(n), false};
  if (step_macs / n >= kMinUnitSplitMacs && blocks >= 2 * n) return {static_cast<int>(n), true};
  if (B >= n) return {static_cast<int>(n), false};
  return {};
}

template <typename TIn, typename TOut>
class FixedRun {
 public:
  FixedRun(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, double* c_n, StepRecord* record)
      : cell_(cell), seq_(seq), out_(out), h_n_(h_n), c_n_(c_n), record_(record),
        range_(CodeRange::signed_bits(cell.fix.bit_width)), Hp_(cell.w_hh.padded_units()),
        Ip_(cell.w_ih.padded_in()) {
    const int64_t B = seq.batch, H = seq.hidden, T = seq.steps;
    len_.resize(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b)
      len_[static_cast<size_t>(b)] =
          seq.lengths ? std::min<int64_t>(std::max<int64_t>(seq.lengths[b], 0), T) : T;
    state_h_.resize(2 * B * Hp_);
    state_c_.resize(B * Hp_);
    const int* f = cell.fix.node;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t hq = seq.h0 ? quantize_value(seq.h0[b * H + j], f[kInput1], range_) : 0;
        const int64_t cq = seq.c0 ? quantize_value(seq.c0[b * H + j], f[kInput2], range_) : 0;
        state_h_[b * Hp_ + j] = static_cast<int16_t>(hq);
        state_c_[b * Hp_ + j] = static_cast<int32_t>(cq);
        // Final states of sequences of length 0 are their (quantized) initial states.
        h_n[b * H + j] = dequantize(hq, f[kInput1]);
        c_n[b * H + j] = dequantize(cq, f[kInput2]);
      }
    if (record) {
      record->input0.assign(static_cast<size_t>(T * seq.input_size), 0);
      record->nodes.assign(static_cast<size_t>(T * (kNumNodes - 1) * H), 0);
      record->steps_recorded = B > 0 ? len_[0] : 0;
    }
  }

  // One thread's share: rows [r0, r1) and unit blocks [b0, b1) through all time steps.
  void run(TeamRegion& region, const Split& split) {
    const int64_t B = seq_.batch, T = seq_.steps, I = seq_.input_size, H = seq_.hidden, G4 = kNumGates * Hp_;
    const int64_t nb = cell_.w_hh.blocks(), i = region.index(), n = region.size();
    int64_t r0 = 0, r1 = B, b0 = 0, b1 = nb;
    if (split.by_units) {
      b0 = i * nb / n;
      b1 = (i + 1) * nb / n;
    } else {
      r0 = i * B / n;
      r1 = (i + 1) * B / n;
    }
    const int64_t rows = r1 - r0, j0 = b0 * kUnitBlock, j1 = std::min(H, b1 * kUnitBlock);
    const int64_t chunk = std::max<int64_t>(1, kChunkPositions / std::max<int64_t>(rows, 1));
    const bool record_here = record_ && r0 == 0 && rows > 0;
    // Scratch (allocated before the first barrier).
    AlignedArray<int32_t> proj(chunk * rows * G4), gates(kNumGates * Hp_), codes(kNumNodes * H);
    AlignedArray<int64_t> acc_h(rows * G4), acc_x(kProjectionRows * G4);
    AlignedArray<int16_t> xq(kProjectionRows * Ip_);
    std::vector<const int16_t*> in_rows(static_cast<size_t>(std::max(rows, kProjectionRows)));
    std::vector<int64_t*> acc_rows(static_cast<size_t>(std::max(rows, kProjectionRows)));
    std::vector<int32_t*> proj_dst(kProjectionRows);
    std::vector<int64_t> active(static_cast<size_t>(rows));
    std::vector<StepRow> plain_rows(static_cast<size_t>(rows));
    std::vector<TOut*> plain_outs(static_cast<size_t>(rows));
    if (b0 == 0) zero_tails(r0, r1);

    const int* f = cell_.fix.node;
    const double h_scale = pow2(-f[kHNext]), c_scale = pow2(-f[kCNext]);
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t t1 = std::min(T, t0 + chunk);
      project(t0, t1, r0, r1, b0, b1, j0, j1, proj.data(), acc_x, xq, in_rows, acc_rows, proj_dst,
              record_here && b0 == 0);
      for (int64_t t = t0; t < t1; ++t) {
        int16_t* h_cur = state_h_.data() + (t & 1) * B * Hp_;
        int16_t* h_nxt = state_h_.data() + ((t + 1) & 1) * B * Hp_;
        int64_t m = 0;
        for (int64_t r = r0; r < r1; ++r)
          if (t < len_[static_cast<size_t>(r)]) {
            active[static_cast<size_t>(m)] = r;
            in_rows[static_cast<size_t>(m)] = h_cur + r * Hp_;
            acc_rows[static_cast<size_t>(m)] = acc_h.data() + m * G4;
            ++m;
          }
        gate_matmul(cell_.w_hh, in_rows.data(), m, b0, b1, acc_rows.data());
        // Rows that record nothing go through step_rows together; the recorded row and rows at
        // their last step (whose codes give h_n / c_n) one by one.
        int64_t plain = 0;
        for (int64_t k = 0; k < m; ++k) {
          const int64_t r = active[static_cast<size_t>(k)], L = len_[static_cast<size_t>(r)];
          const int64_t pos = seq_.reverse ? L - 1 - t : t;
          const bool rec = record_here && r == 0, last = t == L - 1;
          StepRow row;
          row.a = proj.data() + ((t - t0) * rows + (r - r0)) * G4 + j0;
          row.acc = acc_h.data() + k * G4 + j0;
          row.h = h_cur + r * Hp_ + j0;
          row.h_next = h_nxt + r * Hp_ + j0;
          row.c = state_c_.data() + r * Hp_ + j0;
          row.gates = gates.data();
          row.codes = nullptr;
          TOut* o = out_ + (r * T + pos) * H + j0;
          if (!rec && !last) {
            plain_rows[static_cast<size_t>(plain)] = row;
            plain_outs[static_cast<size_t>(plain)] = o;
            ++plain;
            continue;
          }
          row.codes = codes.data() + j0;
          step_units<TOut>(cell_.plan, j1 - j0, Hp_, H, row, o, h_scale);
          if (rec)
            for (int node = 1; node < kNumNodes; ++node)
              std::copy(codes.data() + node * H + j0, codes.data() + node * H + j1,
                        record_->nodes.begin() + (t * (kNumNodes - 1) + node - 1) * H + j0);
          if (last)
            for (int64_t j = j0; j < j1; ++j) {
              h_n_[r * H + j] = codes[kHNext * H + j] * h_scale;
              c_n_[r * H + j] = codes[kCNext * H + j] * c_scale;
            }
        }
        step_rows<TOut>(cell_.plan, j1 - j0, Hp_, plain_rows.data(), plain_outs.data(), plain, h_scale);
        if (split.by_units) region.barrier();
      }
    }
    (void)I;
  }

 private:
  // Rows past a sequence's length are zeros.
  void zero_tails(int64_t r0, int64_t r1) {
    const int64_t T = seq_.steps, H = seq_.hidden;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t L = len_[static_cast<size_t>(r)];
      std::fill(out_ + (r * T + L) * H, out_ + (r + 1) * T * H, TOut(0));
    }
  }

  // The dense-with-bias codes of steps [t0, t1) for rows [r0, r1) and units [j0, j1).
  void project(int64_t t0, int64_t t1, int64_t r0, int64_t r1, int64_t b0, int64_t b1, int64_t j0, int64_t j1,
               int32_t* proj, AlignedArray<int64_t>& acc_x, AlignedArray<int16_t>& xq,
               std::vector<const int16_t*>& in_rows, std::vector<int64_t*>& acc_rows,
               std::vector<int32_t*>& dst, bool record_input) {
    const int64_t T = seq_.steps, I = seq_.input_size, G4 = kNumGates * Hp_, rows = r1 - r0;
    const int fx = cell_.fix.node[kInput0];
    int64_t n = 0;
    auto flush = [&]() {
      gate_matmul(cell_.w_ih, in_rows.data(), n, b0, b1, acc_rows.data());
      for (int64_t k = 0; k < n; ++k)
        for (int g = 0; g < kNumGates; ++g)
          dense_bias_codes(cell_.dense[g], range_.lo, range_.hi, j1 - j0, acc_rows[static_cast<size_t>(k)] + g * Hp_ + j0,
                           cell_.bias.empty() ? nullptr : cell_.bias.data() + g * Hp_ + j0,
                           dst[static_cast<size_t>(k)] + g * Hp_ + j0);
      n = 0;
    };
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t L = len_[static_cast<size_t>(r)];
        if (t >= L) continue;
        const int64_t pos = seq_.reverse ? L - 1 - t : t;
        int16_t* q = xq.data() + n * Ip_;
        floor_codes16<TIn>(seq_.x + (r * T + pos) * I, I, fx, range_.lo, range_.hi, q);
        if (record_input && r == 0) std::copy(q, q + I, record_->input0.begin() + t * I);
        in_rows[static_cast<size_t>(n)] = q;
        acc_rows[static_cast<size_t>(n)] = acc_x.data() + n * G4;
        dst[static_cast<size_t>(n)] = proj + ((t - t0) * rows + (r - r0)) * G4;
        if (++n == kProjectionRows) flush();
      }
    if (n) flush();
  }

  const FixedCell& cell_;
  const Sequence<TIn>& seq_;
  TOut* out_;
  double* h_n_;
  double* c_n_;
  StepRecord* record_;
  CodeRange range_;
  int64_t Hp_, Ip_;
  std::vector<int64_t> len_;
  AlignedArray<int16_t> state_h_;  // [2][batch][Hp]: the input_1 codes read / written by a step
  AlignedArray<int32_t> state_c_;  // [batch][Hp]: the input_2 codes
};

}  // namespace

template <typename TIn, typename TOut>
void fixed_forward(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, double* c_n,
                   StepRecord* record, int num_threads) {
  FixedRun<TIn, TOut> run(cell, seq, out, h_n, c_n, record);
  const Split split = choose_split(seq.batch, seq.steps, seq.input_size, seq.hidden, cell.w_hh.blocks(), num_threads);
  run_team(split.threads, [&](TeamRegion& region) {
    // A busy team gives a region of one thread: then it does everything.
    run.run(region, region.size() == split.threads ? split : Split{});
  });
}

#define NNDCT_INSTANTIATE_FIXED(TIn, TOut)                                                                   \
  template void fixed_forward<TIn, TOut>(const FixedCell&, const Sequence<TIn>&, TOut*, double*, double*, \
                                         StepRecord*, int);
NNDCT_INSTANTIATE_FIXED(double, double)
NNDCT_INSTANTIATE_FIXED(double, float)
NNDCT_INSTANTIATE_FIXED(float, double)
NNDCT_INSTANTIATE_FIXED(float, float)
#undef NNDCT_INSTANTIATE_FIXED

}  // namespace lstm
}  // namespace nndct

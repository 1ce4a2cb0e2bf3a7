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

// Positions whose input projections one slice computes ahead of its steps (a few hundred KiB
// of codes at hidden 512), and rows per projection product.
constexpr int64_t kChunkPositions = 32;
constexpr int64_t kProjectionRows = 8;

// Below this many multiply-adds in a whole call, one thread does everything.
constexpr int64_t kMinParallelMacs = int64_t{1} << 22;
// Batch slices: at least this many rows each (the matrix kernel's register tile), about
// kSlicesPerThread slices per thread so that a late helper finds work left to claim.
constexpr int64_t kMinSliceRows = 4;
constexpr int64_t kSlicesPerThread = 4;
// Unit slices synchronise every time step; they need this many recurrent multiply-adds per
// step and slice to win back the hand-offs (batch 1 at hidden >= 1024).
constexpr int64_t kMinUnitSliceMacs = int64_t{1} << 21;

// How a call is cut: `slices` independent batch slices (each runs all its time steps alone),
// or, with by_units, one slice per thread of the units, stepped together one section per step.
struct Split {
  int threads = 1;
  int64_t slices = 1;
  bool by_units = false;
};

Split choose_split(int64_t B, int64_t T, int64_t I, int64_t H, int64_t blocks, int num_threads) {
  const int64_t step_macs = B * 4 * H * H;
  const int64_t total = T * (step_macs + B * 4 * H * I);
  const int64_t n = std::max(1, num_threads);
  if (n <= 1 || total < kMinParallelMacs) return {};
  const int64_t rows = std::max(kMinSliceRows, (B + kSlicesPerThread * n - 1) / (kSlicesPerThread * n));
  const int64_t slices = (B + rows - 1) / rows;
  if (slices >= 2) return {static_cast<int>(n), slices, false};
  if (step_macs / n >= kMinUnitSliceMacs && blocks >= 2 * n) return {static_cast<int>(n), n, true};
  return {};
}

template <typename TIn, typename TOut>
class FixedRun {
  // One slice: rows [r0, r1) and unit blocks [b0, b1).
  struct Slice {
    int64_t r0 = 0, r1 = 0, b0 = 0, b1 = 0;
  };
  // The scratch of one thread (batch slices) or one slice (unit slices).
  struct Scratch {
    AlignedArray<int32_t> proj, gates, codes;
    AlignedArray<int64_t> acc_h, acc_x;
    AlignedArray<int16_t> xq;
    std::vector<const int16_t*> in_rows;
    std::vector<int64_t*> acc_rows;
    std::vector<int32_t*> proj_dst;
    std::vector<int64_t> active;
    std::vector<StepRow> plain_rows;
    std::vector<TOut*> plain_outs;
  };

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
    for (int64_t b = 0; b < B; ++b) {  // outputs past a sequence's length are zeros
      const int64_t L = len_[static_cast<size_t>(b)];
      std::fill(out + (b * T + L) * H, out + (b + 1) * T * H, TOut(0));
    }
    if (record) {
      record->input0.assign(static_cast<size_t>(T * seq.input_size), 0);
      record->nodes.assign(static_cast<size_t>(T * (kNumNodes - 1) * H), 0);
      record->steps_recorded = B > 0 ? len_[0] : 0;
    }
  }

  void run(const Split& split, int threads) {
    const int64_t B = seq_.batch, T = seq_.steps, nb = cell_.w_hh.blocks(), n = split.slices;
    std::vector<Slice> slices(static_cast<size_t>(n));
    int64_t max_rows = 0;
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
      max_rows = std::max(max_rows, sl.r1 - sl.r0);
    }
    const int64_t chunk = std::max<int64_t>(1, kChunkPositions / std::max<int64_t>(max_rows, 1));
    const int64_t chunks = (T + chunk - 1) / chunk;
    std::vector<Scratch> scratch(static_cast<size_t>(split.by_units ? n : std::max(1, threads)));
    for (Scratch& sc : scratch) prepare(sc, max_rows, chunk);
    if (!split.by_units) {
      // Batch slices are chains of chunks of time steps: any thread continues any slice.
      run_chains(threads, n, chunks, [&](int slot, int64_t i, int64_t k) {
        const Slice& sl = slices[static_cast<size_t>(i)];
        Scratch& sc = scratch[static_cast<size_t>(slot)];
        const int64_t t0 = k * chunk, t1 = std::min(T, t0 + chunk);
        project(sl, sc, t0, t1);
        for (int64_t t = t0; t < t1; ++t) step(sl, sc, t, t0);
      });
      return;
    }
    // Unit slices share the rows: every time step is one section of n tasks.
    SectionPacer pacer(threads);
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t t1 = std::min(T, t0 + chunk);
      pacer.run(n, [&](int64_t i) { project(slices[static_cast<size_t>(i)], scratch[static_cast<size_t>(i)], t0, t1); });
      for (int64_t t = t0; t < t1; ++t)
        pacer.run(n, [&](int64_t i) { step(slices[static_cast<size_t>(i)], scratch[static_cast<size_t>(i)], t, t0); });
    }
  }

 private:
  void prepare(Scratch& sc, int64_t rows, int64_t chunk) const {
    const int64_t G4 = kNumGates * Hp_;
    sc.proj.resize(chunk * rows * G4);
    sc.gates.resize(kNumGates * Hp_);
    sc.codes.resize(kNumNodes * seq_.hidden);
    sc.acc_h.resize(rows * G4);
    sc.acc_x.resize(kProjectionRows * G4);
    sc.xq.resize(kProjectionRows * Ip_);
    const size_t m = static_cast<size_t>(std::max(rows, kProjectionRows));
    sc.in_rows.resize(m);
    sc.acc_rows.resize(m);
    sc.proj_dst.resize(kProjectionRows);
    sc.active.resize(static_cast<size_t>(rows));
    sc.plain_rows.resize(static_cast<size_t>(rows));
    sc.plain_outs.resize(static_cast<size_t>(rows));
  }

  // One time step of a slice: the recurrent product of its active rows and units, then the
  // cell. The recorded row and rows at their last step (whose codes give h_n / c_n) go through
  // step_units one by one; the others through step_rows together.
  void step(const Slice& sl, Scratch& sc, int64_t t, int64_t t0) {
    const int64_t B = seq_.batch, T = seq_.steps, H = seq_.hidden, G4 = kNumGates * Hp_, rows = sl.r1 - sl.r0;
    const int64_t j0 = sl.b0 * kUnitBlock, j1 = std::min(H, sl.b1 * kUnitBlock);
    const bool record_here = record_ && sl.r0 == 0;
    const double h_scale = pow2(-cell_.fix.node[kHNext]), c_scale = pow2(-cell_.fix.node[kCNext]);
    int16_t* h_cur = state_h_.data() + (t & 1) * B * Hp_;
    int16_t* h_nxt = state_h_.data() + ((t + 1) & 1) * B * Hp_;
    int64_t m = 0;
    for (int64_t r = sl.r0; r < sl.r1; ++r)
      if (t < len_[static_cast<size_t>(r)]) {
        sc.active[static_cast<size_t>(m)] = r;
        sc.in_rows[static_cast<size_t>(m)] = h_cur + r * Hp_;
        sc.acc_rows[static_cast<size_t>(m)] = sc.acc_h.data() + m * G4;
        ++m;
      }
    gate_matmul(cell_.w_hh, sc.in_rows.data(), m, sl.b0, sl.b1, sc.acc_rows.data());
    std::vector<TOut*>& outs = sc.plain_outs;
    int64_t plain = 0;
    for (int64_t k = 0; k < m; ++k) {
      const int64_t r = sc.active[static_cast<size_t>(k)], L = len_[static_cast<size_t>(r)];
      const int64_t pos = seq_.reverse ? L - 1 - t : t;
      const bool rec = record_here && r == 0, last = t == L - 1;
      StepRow row;
      row.a = sc.proj.data() + ((t - t0) * rows + (r - sl.r0)) * G4 + j0;
      row.acc = sc.acc_h.data() + k * G4 + j0;
      row.h = h_cur + r * Hp_ + j0;
      row.h_next = h_nxt + r * Hp_ + j0;
      row.c = state_c_.data() + r * Hp_ + j0;
      row.gates = sc.gates.data();
      row.codes = nullptr;
      TOut* o = out_ + (r * T + pos) * H + j0;
      if (!rec && !last) {
        sc.plain_rows[static_cast<size_t>(plain)] = row;
        outs[static_cast<size_t>(plain)] = o;
        ++plain;
        continue;
      }
      row.codes = sc.codes.data() + j0;
      step_units<TOut>(cell_.plan, j1 - j0, Hp_, H, row, o, h_scale);
      const int32_t* codes = sc.codes.data();
      if (rec)
        for (int node = 1; node < kNumNodes; ++node)
          std::copy(codes + node * H + j0, codes + node * H + j1,
                    record_->nodes.begin() + (t * (kNumNodes - 1) + node - 1) * H + j0);
      if (last)
        for (int64_t j = j0; j < j1; ++j) {
          h_n_[r * H + j] = codes[kHNext * H + j] * h_scale;
          c_n_[r * H + j] = codes[kCNext * H + j] * c_scale;
        }
    }
    step_rows<TOut>(cell_.plan, j1 - j0, Hp_, sc.plain_rows.data(), outs.data(), plain, h_scale);
  }

  // The dense-with-bias codes of steps [t0, t1) for the slice's rows and units.
  void project(const Slice& sl, Scratch& sc, int64_t t0, int64_t t1) {
    const int64_t T = seq_.steps, I = seq_.input_size, G4 = kNumGates * Hp_, rows = sl.r1 - sl.r0;
    const int64_t j0 = sl.b0 * kUnitBlock, j1 = std::min(seq_.hidden, sl.b1 * kUnitBlock);
    const bool record_input = record_ && sl.r0 == 0 && sl.b0 == 0;
    const int fx = cell_.fix.node[kInput0];
    int64_t n = 0;
    auto flush = [&]() {
      gate_matmul(cell_.w_ih, sc.in_rows.data(), n, sl.b0, sl.b1, sc.acc_rows.data());
      for (int64_t k = 0; k < n; ++k)
        for (int g = 0; g < kNumGates; ++g)
          dense_bias_codes(cell_.dense[g], range_.lo, range_.hi, j1 - j0,
                           sc.acc_rows[static_cast<size_t>(k)] + g * Hp_ + j0,
                           cell_.bias.empty() ? nullptr : cell_.bias.data() + g * Hp_ + j0,
                           sc.proj_dst[static_cast<size_t>(k)] + g * Hp_ + j0);
      n = 0;
    };
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t r = sl.r0; r < sl.r1; ++r) {
        const int64_t L = len_[static_cast<size_t>(r)];
        if (t >= L) continue;
        const int64_t pos = seq_.reverse ? L - 1 - t : t;
        int16_t* q = sc.xq.data() + n * Ip_;
        floor_codes16<TIn>(seq_.x + (r * T + pos) * I, I, fx, range_.lo, range_.hi, q);
        if (record_input && r == 0) std::copy(q, q + I, record_->input0.begin() + t * I);
        sc.in_rows[static_cast<size_t>(n)] = q;
        sc.acc_rows[static_cast<size_t>(n)] = sc.acc_x.data() + n * G4;
        sc.proj_dst[static_cast<size_t>(n)] = sc.proj.data() + ((t - t0) * rows + (r - sl.r0)) * G4;
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
  run.run(split, split.threads);
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

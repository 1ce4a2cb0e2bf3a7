// Test mode of the quantized StandardLstmCell: integer codes end to end.
//
// Every value is held as an integer code at a known fix position; the matrix products are exact
// integer sums (gate_matmul.h), and each node's fake-quantization Q_fp (floor, then clamp)
// becomes a shift and a clamp (lstm_step_kernel.h). This is what the fixed-point hardware
// computes.
//
// Memory stays proportional to one chunk of time steps: the input projections (the
// dense-with-bias nodes) are computed for rnn::kChunkPositions positions at a time, just before
// the steps that read them, so a 20,000-step sequence needs no [steps, 4H] buffer. The input
// projections and the work split are rnn_fixed_run.h's (shared with the GRU).
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_loops.h"
#include "nndct/thread_team.h"

namespace nndct {
namespace lstm {

namespace {

// The fix positions of the four dense_x nodes, in gate order.
std::array<int, kNumGates> dense_x_fix(const CellFix& f) {
  return {f.node[dense_x_node(0)], f.node[dense_x_node(1)], f.node[dense_x_node(2)], f.node[dense_x_node(3)]};
}
// Their bit widths.
std::array<int, kNumGates> dense_x_bits(const CellFix& f) {
  return {f.bits(dense_x_node(0)), f.bits(dense_x_node(1)), f.bits(dense_x_node(2)), f.bits(dense_x_node(3))};
}

}  // namespace

FixedCell::FixedCell(const CellFix& f, int64_t in, int64_t h, const int32_t* w_ih_codes, const int32_t* w_hh_codes,
                     const int32_t* bias_codes)
    : fix(f), input_size(in), hidden(h),
      input(kNumGates, h, in, w_ih_codes, bias_codes, f.bit_width, f.node[kInput0], f.w_ih, dense_x_fix(f).data(),
            f.bias, f.bits(kInput0), dense_x_bits(f).data()),
      w_hh(w_hh_codes, kNumGates, h, h), plan(StepPlan::make(f)) {}

namespace {

using rnn::Slice;

template <typename TIn, typename TOut>
class FixedRun {
  // The scratch of one thread (batch slices) or one slice (unit slices).
  struct Scratch {
    AlignedArray<int32_t> proj, gates, codes;
    AlignedArray<int64_t> acc_h;
    rnn::ProjectionScratch projection;
    std::vector<const int16_t*> in_rows;
    std::vector<int64_t*> acc_rows;
    std::vector<int64_t> active;
    std::vector<StepRow> plain_rows;
    std::vector<TOut*> plain_outs;
  };

 public:
  FixedRun(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, double* c_n, StepRecord* record)
      : cell_(cell), seq_(seq), out_(out), h_n_(h_n), c_n_(c_n), record_(record),
        h_range_(CodeRange::signed_bits(cell.fix.bits(kInput1))),
        c_range_(CodeRange::signed_bits(cell.fix.bits(kInput2))), Hp_(cell.w_hh.padded_units()),
        len_(rnn::sequence_lengths(seq.lengths, seq.batch, seq.steps)) {
    const int64_t B = seq.batch, H = seq.hidden, T = seq.steps;
    state_h_.resize(2 * B * Hp_);
    state_c_.resize(B * Hp_);
    const int* f = cell.fix.node;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t hq = seq.h0 ? quantize_value(seq.h0[b * H + j], f[kInput1], h_range_) : 0;
        const int64_t cq = seq.c0 ? quantize_value(seq.c0[b * H + j], f[kInput2], c_range_) : 0;
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

  void run(int num_threads) {
    const int64_t B = seq_.batch, T = seq_.steps, H = seq_.hidden, I = seq_.input_size;
    const int64_t step_macs = B * kNumGates * H * H;
    const rnn::Split split =
        rnn::choose_split(B, step_macs, T * (step_macs + B * kNumGates * H * I), cell_.w_hh.blocks(), num_threads);
    const rnn::SlicePlan plan(split, B, T, cell_.w_hh.blocks());
    std::vector<Scratch> scratch(static_cast<size_t>(plan.scratches));
    for (Scratch& sc : scratch) prepare(sc, plan.max_rows, plan.chunk);
    rnn::run_slices(
        split, plan, T, 1, scratch,
        [&](Scratch& sc, const Slice& sl, int64_t t0, int64_t t1) {
          rnn::project_steps<TIn>(cell_.input, seq_, len_.data(), sl.r0, sl.r1, sl.b0, sl.b1, t0, t1, sc.proj.data(),
                                  sc.projection, record_);
        },
        [&](Scratch& sc, const Slice& sl, int64_t t, int64_t t0, int) { step(sl, sc, t, t0); });
  }

 private:
  void prepare(Scratch& sc, int64_t rows, int64_t chunk) const {
    const int64_t G4 = kNumGates * Hp_;
    sc.proj.resize(chunk * rows * G4);
    sc.gates.resize(kNumGates * Hp_);
    sc.codes.resize(kNumNodes * seq_.hidden);
    sc.acc_h.resize(rows * G4);
    sc.projection = rnn::ProjectionScratch(cell_.input);
    sc.in_rows.resize(static_cast<size_t>(rows));
    sc.acc_rows.resize(static_cast<size_t>(rows));
    sc.active.resize(static_cast<size_t>(rows));
    sc.plain_rows.resize(static_cast<size_t>(rows));
    sc.plain_outs.resize(static_cast<size_t>(rows));
  }

  // One time step of a slice: the recurrent product of its active rows and units, then the
  // cell. The recorded row and rows at their last step (whose codes give h_n / c_n) go through
  // step_units one by one; the others through step_rows together.
  void step(const Slice& sl, Scratch& sc, int64_t t, int64_t t0) {
    const int64_t B = seq_.batch, T = seq_.steps, H = seq_.hidden, G4 = kNumGates * Hp_, rows = sl.rows();
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

  const FixedCell& cell_;
  const Sequence<TIn>& seq_;
  TOut* out_;
  double* h_n_;
  double* c_n_;
  StepRecord* record_;
  CodeRange h_range_, c_range_;  // input_1's and input_2's (the initial states)
  int64_t Hp_;
  std::vector<int64_t> len_;
  AlignedArray<int16_t> state_h_;  // [2][batch][Hp]: the input_1 codes read / written by a step
  AlignedArray<int32_t> state_c_;  // [batch][Hp]: the input_2 codes
};

}  // namespace

template <typename TIn, typename TOut>
void fixed_forward(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, double* c_n,
                   StepRecord* record, int num_threads) {
  FixedRun<TIn, TOut>(cell, seq, out, h_n, c_n, record).run(num_threads);
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

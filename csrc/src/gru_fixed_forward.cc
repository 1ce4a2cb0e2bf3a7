// Test mode of the quantized StandardGruCell: integer codes end to end (the GRU twin of
// lstm_fixed_forward.cc, on the same layout: weight codes packed once per cell for gate_matmul,
// input projections a chunk of positions at a time, the thread team's batch or unit slices, all
// from rnn_fixed_run.h).
//
// A step of a slice: one gate_matmul of the active rows' states by W_hh, then gate_rows (r and z;
// reset-before also node 11 = r * h as int16 codes) and candidate_rows (n, h_next). Reset-before
// multiplies node 11's codes by W_hn between the two, which reads every unit of node 11: the step
// has two phases, and unit slices run them as two sections.
#include <algorithm>
#include <array>
#include <vector>

#include "nndct/gru_loops.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/thread_team.h"

namespace nndct {
namespace gru {

namespace {

std::array<int, kNumGates> dense_x_fix(const CellFix& f) {
  return {f.node[dense_x_node(0)], f.node[dense_x_node(1)], f.node[dense_x_node(2)]};
}
// Their bit widths (mixed widths).
std::array<int, kNumGates> dense_x_bits(const CellFix& f) {
  return {f.bits(dense_x_node(0)), f.bits(dense_x_node(1)), f.bits(dense_x_node(2))};
}

}  // namespace

FixedCell::FixedCell(Variant v, const CellFix& f, int64_t in, int64_t h, const int32_t* w_ih_codes,
                     const int32_t* w_hh_codes, const int32_t* b_ih_codes, const int32_t* b_hh_codes)
    : variant(v), fix(f), input_size(in), hidden(h),
      input(kNumGates, h, in, w_ih_codes, b_ih_codes, f.bit_width, f.node[kInput0], f.w_ih, dense_x_fix(f).data(),
            f.b_ih, f.bits(kInput0), dense_x_bits(f).data()),
      w_hh(w_hh_codes, v == Variant::kResetAfter ? kNumGates : 2, h, h), plan(StepPlan::make(v, f)) {
  if (v == Variant::kResetBefore) w_hn = PackedGates(w_hh_codes + 2 * h * h, 1, h, h);
  const int64_t Hp = w_hh.padded_units();
  b_hh.resize(kNumGates * Hp);  // zeros
  if (v == Variant::kResetAfter && b_hh_codes)
    for (int g = 0; g < kNumGates; ++g) std::copy(b_hh_codes + g * h, b_hh_codes + (g + 1) * h, b_hh.data() + g * Hp);
}

namespace {

using lstm::CodeRange;
using lstm::dequantize;
using lstm::quantize_value;
using rnn::Slice;

template <typename TIn, typename TOut>
class FixedRun {
  // The scratch of one thread (batch slices) or one slice (unit slices); both phases of a step
  // of a slice use the same one.
  struct Scratch {
    AlignedArray<int32_t> proj, gates, codes;
    AlignedArray<int64_t> acc;
    rnn::ProjectionScratch projection;
    std::vector<const int16_t*> in_rows;
    std::vector<int64_t*> acc_rows;
    std::vector<int64_t> active;
    std::vector<StepRow> rows;  // the active rows: those before their last step, then the others
    std::vector<TOut*> outs;
    std::vector<double*> last_outs;
    int64_t plain = 0, m = 0;
  };

 public:
  FixedRun(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, StepRecord* record)
      : cell_(cell), seq_(seq), out_(out), h_n_(h_n), record_(record), Hp_(cell.padded_units()),
        after_(cell.variant == Variant::kResetAfter), len_(rnn::sequence_lengths(seq.lengths, seq.batch, seq.steps)) {
    const int64_t B = seq.batch, H = seq.hidden, T = seq.steps;
    const CodeRange range = CodeRange::signed_bits(cell.fix.bits(kInput1));
    const int f1 = cell.fix.node[kInput1];
    state_h_.resize(2 * B * Hp_);
    if (!after_) rh_.resize(B * Hp_);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t hq = seq.h0 ? quantize_value(seq.h0[b * H + j], f1, range) : 0;
        state_h_[b * Hp_ + j] = static_cast<int16_t>(hq);
        h_n[b * H + j] = dequantize(hq, f1);  // sequences of length 0 keep their (quantized) h0
      }
    rnn::zero_past_lengths(out, len_, T, H);
    if (record) rnn::start_record(record, T, seq.input_size, kNumNodes, H, B > 0 ? len_[0] : 0);
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
        split, plan, T, after_ ? 1 : 2, scratch,
        [&](Scratch& sc, const Slice& sl, int64_t t0, int64_t t1) {
          rnn::project_steps<TIn>(cell_.input, seq_, len_.data(), sl.r0, sl.r1, sl.b0, sl.b1, t0, t1, sc.proj.data(),
                                  sc.projection, record_);
        },
        [&](Scratch& sc, const Slice& sl, int64_t t, int64_t t0, int phase) {
          if (phase == 0) {
            gates(sl, sc, t, t0);
            if (after_) candidate(sl, sc, t);
          } else {
            candidate(sl, sc, t);
          }
        });
  }

 private:
  void prepare(Scratch& sc, int64_t rows, int64_t chunk) const {
    const int64_t G3 = kNumGates * Hp_;
    sc.proj.resize(chunk * rows * G3);
    sc.gates.resize(rows * 2 * Hp_);
    sc.codes.resize(kNumNodes * seq_.hidden);
    sc.acc.resize(rows * G3);
    sc.projection = rnn::ProjectionScratch(cell_.input);
    sc.in_rows.resize(static_cast<size_t>(rows));
    sc.acc_rows.resize(static_cast<size_t>(rows));
    sc.active.resize(static_cast<size_t>(rows));
    sc.rows.resize(static_cast<size_t>(rows));
    sc.outs.resize(static_cast<size_t>(rows));
    sc.last_outs.resize(static_cast<size_t>(rows));
  }

  int16_t* h_cur(int64_t t) { return state_h_.data() + (t & 1) * seq_.batch * Hp_; }
  int16_t* h_nxt(int64_t t) { return state_h_.data() + ((t + 1) & 1) * seq_.batch * Hp_; }

  // Phase 0: the recurrent product of the slice's active rows and units by W_hh, then gate_rows.
  // Rows at their last step go to the end of sc.rows: their output goes to h_n first.
  void gates(const Slice& sl, Scratch& sc, int64_t t, int64_t t0) {
    const int64_t H = seq_.hidden, G3 = kNumGates * Hp_, rows = sl.rows(), j0 = sl.b0 * kUnitBlock;
    const int64_t j1 = std::min(H, sl.b1 * kUnitBlock);
    int16_t* hc = h_cur(t);
    int16_t* hn = h_nxt(t);
    int64_t m = 0;
    for (int64_t r = sl.r0; r < sl.r1; ++r)
      if (t < len_[static_cast<size_t>(r)]) {
        sc.in_rows[static_cast<size_t>(m)] = hc + r * Hp_;
        sc.acc_rows[static_cast<size_t>(m)] = sc.acc.data() + m * G3;
        ++m;
      }
    gate_matmul(cell_.w_hh, sc.in_rows.data(), m, sl.b0, sl.b1, sc.acc_rows.data());
    const bool record_here = record_ && sl.r0 == 0;
    int64_t k = 0, plain = 0, last = m;
    for (int64_t r = sl.r0; r < sl.r1; ++r) {
      const int64_t L = len_[static_cast<size_t>(r)];
      if (t >= L) continue;
      StepRow row;
      row.a = sc.proj.data() + ((t - t0) * rows + (r - sl.r0)) * G3 + j0;
      row.acc = sc.acc.data() + k * G3 + j0;
      row.b_hh = cell_.b_hh.data() + j0;
      row.h = hc + r * Hp_ + j0;
      row.h_next = hn + r * Hp_ + j0;
      row.rh = after_ ? nullptr : rh_.data() + r * Hp_ + j0;
      row.codes = record_here && r == 0 ? sc.codes.data() + j0 : nullptr;
      const int64_t slot = t == L - 1 ? --last : plain++;
      row.gates = sc.gates.data() + slot * 2 * Hp_ + j0;
      sc.rows[static_cast<size_t>(slot)] = row;
      sc.active[static_cast<size_t>(slot)] = r;
      ++k;
    }
    sc.m = m;
    sc.plain = plain;
    gate_rows(cell_.plan, j1 - j0, Hp_, H, sc.rows.data(), m);
  }

  // Phase 1 (reset-before: after W_hn times node 11's codes): candidate_rows, the record.
  void candidate(const Slice& sl, Scratch& sc, int64_t t) {
    const int64_t H = seq_.hidden, T = seq_.steps, G3 = kNumGates * Hp_, m = sc.m, plain = sc.plain;
    const int64_t j0 = sl.b0 * kUnitBlock, j1 = std::min(H, sl.b1 * kUnitBlock);
    if (!after_) {
      for (int64_t k = 0; k < m; ++k) {
        const int64_t r = sc.active[static_cast<size_t>(k)];
        sc.in_rows[static_cast<size_t>(k)] = rh_.data() + r * Hp_;
        // The row's sums sit where gates() put them: row k of the product is sc.rows[k].acc - j0.
        sc.acc_rows[static_cast<size_t>(k)] = const_cast<int64_t*>(sc.rows[static_cast<size_t>(k)].acc) - j0 + 2 * Hp_;
      }
      gate_matmul(cell_.w_hn, sc.in_rows.data(), m, sl.b0, sl.b1, sc.acc_rows.data());
    }
    const double h_scale = pow2(-cell_.fix.node[kHNext]);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t r = sc.active[static_cast<size_t>(k)], L = len_[static_cast<size_t>(r)];
      const int64_t pos = seq_.reverse ? L - 1 - t : t;
      if (k < plain) {
        sc.outs[static_cast<size_t>(k)] = out_ + (r * T + pos) * H + j0;
      } else {
        sc.last_outs[static_cast<size_t>(k - plain)] = h_n_ + r * H + j0;
      }
    }
    candidate_rows<TOut>(cell_.plan, j1 - j0, Hp_, H, sc.rows.data(), sc.outs.data(), plain, h_scale);
    candidate_rows<double>(cell_.plan, j1 - j0, Hp_, H, sc.rows.data() + plain, sc.last_outs.data(), m - plain,
                           h_scale);
    for (int64_t k = plain; k < m; ++k) {  // the final state, and the last output from it
      const int64_t r = sc.active[static_cast<size_t>(k)], L = len_[static_cast<size_t>(r)];
      const int64_t pos = seq_.reverse ? L - 1 - t : t;
      const double* src = h_n_ + r * H;
      TOut* o = out_ + (r * T + pos) * H;
      for (int64_t j = j0; j < j1; ++j) o[j] = static_cast<TOut>(src[j]);
    }
    if (record_ && sl.r0 == 0 && t < len_[0]) {
      const int32_t* codes = sc.codes.data();
      for (int node = 1; node < kNumNodes; ++node)
        std::copy(codes + node * H + j0, codes + node * H + j1,
                  record_->nodes.begin() + (t * (kNumNodes - 1) + node - 1) * H + j0);
    }
  }

  const FixedCell& cell_;
  const Sequence<TIn>& seq_;
  TOut* out_;
  double* h_n_;
  StepRecord* record_;
  int64_t Hp_;
  bool after_;
  std::vector<int64_t> len_;
  AlignedArray<int16_t> state_h_;  // [2][batch][Hp]: the input_1 codes read / written by a step
  AlignedArray<int16_t> rh_;       // reset-before: [batch][Hp] node 11's codes, the operand of W_hn
};

}  // namespace

template <typename TIn, typename TOut>
void fixed_forward(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, StepRecord* record,
                   int num_threads) {
  FixedRun<TIn, TOut>(cell, seq, out, h_n, record).run(num_threads);
}

#define NNDCT_INSTANTIATE_FIXED(TIn, TOut) \
  template void fixed_forward<TIn, TOut>(const FixedCell&, const Sequence<TIn>&, TOut*, double*, StepRecord*, int);
NNDCT_INSTANTIATE_FIXED(double, double)
NNDCT_INSTANTIATE_FIXED(double, float)
NNDCT_INSTANTIATE_FIXED(float, double)
NNDCT_INSTANTIATE_FIXED(float, float)
#undef NNDCT_INSTANTIATE_FIXED

}  // namespace gru
}  // namespace nndct

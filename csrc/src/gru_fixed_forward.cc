// Test mode of the quantized StandardGruCell: integer codes end to end (the GRU twin of the LSTM's
// test-mode loop, with the same contract: every matmul is an exact integer sum held in double,
// every node's fake-quantization is a shift and a clamp, batch rows run in independent slices).
//
// Per position the input projections of all steps are computed at once (dense-with-bias codes
// of nodes 2, 5 and 10); the time loop then multiplies the state of a block of rows by W_hh (the
// reset-before variant: by W_hr and W_hz, then the block's r * h codes by W_hn) and runs the
// per-row step loops of gru_step_kernel.h.
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "nndct/dense_rows.h"
#include "nndct/gru_cell.h"
#include "nndct/gru_step_kernel.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/rnn_weights.h"

namespace nndct {
namespace gru {
namespace {

using lstm::CodeRange;
using lstm::quantize_value;

constexpr int64_t kRowBlock = 8;

// The exact integer sums dense_rows holds in doubles, as the int64 the node plans read.
void exact_integers(const double* acc, int64_t n, int64_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(acc[i]);
}

struct Weights {
  std::vector<double> wih_t;  // [I][3H]
  std::vector<double> whh_t;  // [H][3H] (reset-after) or [H][2H] (reset-before: r, z)
  std::vector<double> whn_t;  // [H][H] (reset-before only)
  const int32_t* b_ih;
  const int32_t* b_hh;
};

class SliceRunner {
 public:
  SliceRunner(Variant variant, const CellFix& fix, const SequenceBatch& seq, const Weights& w, int64_t b0,
              int64_t b1)
      : variant_(variant), fix_(fix), seq_(seq), w_(w), b0_(b0), b1_(b1),
        range_(CodeRange::signed_bits(fix.bit_width)), plan_(StepPlan::make(variant, fix)) {}

  void run(double* out, double* h_n, StepRecord* record) {
    const int64_t H = seq_.hidden, T = seq_.steps, G = kNumGates * H, nb = b1_ - b0_;
    const bool after = variant_ == Variant::kResetAfter;
    const int64_t rec_cols = after ? G : 2 * H;
    project_inputs();
    init_state();
    for (int64_t r = 0; r < nb; ++r) std::fill(out + (b0_ + r) * T * H, out + (b0_ + r + 1) * T * H, 0.0);
    std::vector<double> acc(kRowBlock * rec_cols), acc_n(kRowBlock * H), reset_in(kRowBlock * H);
    std::vector<int64_t> iacc(kRowBlock * std::max(rec_cols, H));
    std::vector<const double*> rows(kRowBlock), reset_rows(kRowBlock);
    std::vector<int64_t> active(kRowBlock);
    std::vector<int32_t> codes(kRowBlock * kNumNodes * H);
    const double h_scale = std::ldexp(1.0, -fix_.node[kHNext]);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t rb = 0; rb < nb; rb += kRowBlock) {
        int64_t n = 0;
        for (int64_t r = rb; r < std::min(nb, rb + kRowBlock); ++r)
          if (t < len_[r]) { active[n] = r; rows[n] = h_.data() + r * H; ++n; }
        if (n == 0) continue;
        dense_rows(rows.data(), n, H, w_.whh_t.data(), rec_cols, acc.data());
        exact_integers(acc.data(), n * rec_cols, iacc.data());
        for (int64_t k = 0; k < n; ++k) {
          const int64_t r = active[k];
          int32_t* c = codes.data() + k * kNumNodes * H;
          step_gates(plan_, H, proj_.data() + (r * T + position(r, t)) * G, iacc.data() + k * rec_cols, w_.b_hh,
                     h_.data() + r * H, c);
          if (!after) {
            double* dst = reset_in.data() + k * H;
            for (int64_t j = 0; j < H; ++j) dst[j] = c[11 * H + j];
            reset_rows[k] = dst;
          }
        }
        if (!after) {
          dense_rows(reset_rows.data(), n, H, w_.whn_t.data(), H, acc_n.data());
          exact_integers(acc_n.data(), n * H, iacc.data());
          for (int64_t k = 0; k < n; ++k)
            lstm::dense_bias_codes(plan_.dense_h[2], range_.lo, range_.hi, H, iacc.data() + k * H, nullptr,
                                   codes.data() + (k * kNumNodes + 12) * H);
        }
        for (int64_t k = 0; k < n; ++k) {
          const int64_t r = active[k], pos = position(r, t);
          int32_t* c = codes.data() + k * kNumNodes * H;
          step_output(plan_, H, h_.data() + r * H, c);
          double* o = out + ((b0_ + r) * T + pos) * H;
          for (int64_t j = 0; j < H; ++j) {
            o[j] = c[kHNext * H + j] * h_scale;
            h_n[(b0_ + r) * H + j] = o[j];
          }
          if (record && b0_ + r == 0) save(record, t, pos, c);
        }
      }
    }
  }

 private:
  int64_t position(int64_t r, int64_t t) const { return seq_.reverse ? len_[r] - 1 - t : t; }

  int64_t length(int64_t b) const {
    if (!seq_.lengths) return seq_.steps;
    return std::min<int64_t>(std::max<int64_t>(seq_.lengths[b], 0), seq_.steps);
  }

  // The dense-with-bias nodes 2, 5, 10 of every valid position: codes [r][t][3H].
  void project_inputs() {
    const int64_t I = seq_.input_size, H = seq_.hidden, T = seq_.steps, G = kNumGates * H, nb = b1_ - b0_;
    len_.resize(nb);
    for (int64_t r = 0; r < nb; ++r) len_[r] = length(b0_ + r);
    proj_.assign(nb * T * G, 0);
    std::vector<double> xq(kRowBlock * I), acc(kRowBlock * G);
    std::vector<int64_t> iacc(kRowBlock * G);
    std::vector<const double*> rows(kRowBlock);
    std::vector<int32_t*> dst(kRowBlock);
    DenseBiasPlan plans[kNumGates];
    for (int g = 0; g < kNumGates; ++g)
      plans[g] = DenseBiasPlan::make(fix_.node[kInput0] + fix_.w_ih[g], fix_.node[dense_x_node(g)], fix_.b_ih[g]);
    int64_t n = 0;
    auto flush = [&]() {
      dense_rows(rows.data(), n, I, w_.wih_t.data(), G, acc.data());
      exact_integers(acc.data(), n * G, iacc.data());
      for (int64_t k = 0; k < n; ++k)
        for (int g = 0; g < kNumGates; ++g)
          lstm::dense_bias_codes(plans[g], range_.lo, range_.hi, H, iacc.data() + k * G + g * H,
                                 w_.b_ih ? w_.b_ih + g * H : nullptr, dst[k] + g * H);
      n = 0;
    };
    for (int64_t r = 0; r < nb; ++r)
      for (int64_t t = 0; t < len_[r]; ++t) {
        double* q = xq.data() + n * I;
        const double* xr = seq_.x + ((b0_ + r) * T + t) * I;
        for (int64_t i = 0; i < I; ++i) q[i] = static_cast<double>(quantize_value(xr[i], fix_.node[kInput0], range_));
        rows[n] = q;
        dst[n] = proj_.data() + (r * T + t) * G;
        if (++n == kRowBlock) flush();
      }
    if (n) flush();
  }

  void init_state() {
    const int64_t H = seq_.hidden, nb = b1_ - b0_;
    h_.assign(nb * H, 0.0);
    if (!seq_.h0) return;
    for (int64_t r = 0; r < nb; ++r)
      for (int64_t j = 0; j < H; ++j)
        h_[r * H + j] = static_cast<double>(quantize_value(seq_.h0[(b0_ + r) * H + j], fix_.node[kInput1], range_));
  }

  void save(StepRecord* record, int64_t t, int64_t pos, const int32_t* codes) const {
    const int64_t I = seq_.input_size, H = seq_.hidden;
    const double* x = seq_.x + pos * I;  // batch element 0
    for (int64_t i = 0; i < I; ++i)
      record->input0[t * I + i] = static_cast<int32_t>(quantize_value(x[i], fix_.node[kInput0], range_));
    std::copy(codes + H, codes + kNumNodes * H, record->nodes.begin() + t * (kNumNodes - 1) * H);
    record->steps_recorded = t + 1;
  }

  Variant variant_;
  const CellFix& fix_;
  const SequenceBatch& seq_;
  const Weights& w_;
  int64_t b0_, b1_;
  CodeRange range_;
  StepPlan plan_;
  std::vector<int64_t> len_;
  std::vector<int32_t> proj_;
  std::vector<double> h_;  // state codes as doubles, the operand of the recurrent product
};

}  // namespace

void fixed_forward(Variant variant, const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih,
                   const int32_t* w_hh, const int32_t* b_ih, const int32_t* b_hh, double* out, double* h_n,
                   StepRecord* record, int num_threads) {
  const int64_t H = seq.hidden, G = kNumGates * H;
  const bool after = variant == Variant::kResetAfter;
  Weights w;
  w.wih_t = transpose_rows(w_ih, 0, G, seq.input_size);
  w.whh_t = transpose_rows(w_hh, 0, after ? G : 2 * H, H);
  if (!after) w.whn_t = transpose_rows(w_hh, 2 * H, G, H);
  w.b_ih = b_ih;
  w.b_hh = after ? b_hh : nullptr;
  // Final states of sequences of length 0 are their (quantized) initial states.
  const CodeRange range = CodeRange::signed_bits(fix.bit_width);
  for (int64_t i = 0; i < seq.batch * H; ++i)
    h_n[i] = seq.h0 ? lstm::dequantize(quantize_value(seq.h0[i], fix.node[kInput1], range), fix.node[kInput1]) : 0.0;
  if (record) {
    record->input0.assign(seq.steps * seq.input_size, 0);
    record->nodes.assign(seq.steps * (kNumNodes - 1) * H, 0);
    record->steps_recorded = 0;
  }
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(num_threads, seq.batch));
  const int64_t chunk = (seq.batch + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int64_t k = 1; k < threads; ++k) {
    const int64_t b0 = k * chunk, b1 = std::min(seq.batch, b0 + chunk);
    if (b0 >= b1) break;
    pool.emplace_back([&, b0, b1]() { SliceRunner(variant, fix, seq, w, b0, b1).run(out, h_n, nullptr); });
  }
  SliceRunner(variant, fix, seq, w, 0, std::min(seq.batch, chunk)).run(out, h_n, record);
  for (auto& th : pool) th.join();
}

}  // namespace gru
}  // namespace nndct

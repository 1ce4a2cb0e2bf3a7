// Test mode of the quantized StandardLstmCell: integer codes end to end.
//
// Every value is held as an integer code at a known fix position; a matmul accumulates exact
// integer products (in double, exact while |sum| < 2^53, i.e. always for 16-bit codes, so the
// tiled kernel of dense_rows.h may add them in any order), and each
// node's fake-quantization Q_fp (floor, then clamp) becomes a shift and a clamp. This is what the
// fixed-point hardware computes. Batch rows are independent, so each thread runs a slice of the
// batch through all time steps without any synchronisation.
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "nndct/dense_rows.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_step_kernel.h"

namespace nndct {
namespace lstm {
namespace {

constexpr int64_t kRowBlock = 8;

// Weight codes transposed to [rows_in][4H] doubles so that the inner loop runs over outputs.
std::vector<double> transpose_codes(const int32_t* codes, int64_t four_h, int64_t rows_in) {
  std::vector<double> wt(four_h * rows_in);
  for (int64_t j = 0; j < four_h; ++j)
    for (int64_t k = 0; k < rows_in; ++k) wt[k * four_h + j] = codes[j * rows_in + k];
  return wt;
}

class SliceRunner {
 public:
  SliceRunner(const CellFix& fix, const SequenceBatch& seq, const std::vector<double>& wih_t,
              const std::vector<double>& whh_t, const int32_t* bias, int64_t b0, int64_t b1)
      : fix_(fix), seq_(seq), wih_t_(wih_t), whh_t_(whh_t), bias_(bias), b0_(b0), b1_(b1),
        range_(CodeRange::signed_bits(fix.bit_width)) {}

  void run(double* out, double* h_n, double* c_n, StepRecord* record) {
    const int64_t H = seq_.hidden, T = seq_.steps, G = 4 * H, nb = b1_ - b0_;
    project_inputs();
    init_state();
    for (int64_t r = 0; r < nb; ++r)
      std::fill(out + (b0_ + r) * T * H, out + (b0_ + r + 1) * T * H, 0.0);
    std::vector<double> acc(kRowBlock * G);
    std::vector<const double*> rows(kRowBlock);
    std::vector<int64_t> active(kRowBlock);
    std::vector<int32_t> codes(kNumNodes * H);
    const double h_scale = std::ldexp(1.0, -fix_.node[kHNext]);
    const double c_scale = std::ldexp(1.0, -fix_.node[kCNext]);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t rb = 0; rb < nb; rb += kRowBlock) {
        int64_t n = 0;
        for (int64_t r = rb; r < std::min(nb, rb + kRowBlock); ++r)
          if (t < len_[r]) { active[n] = r; rows[n] = h_.data() + r * H; ++n; }
        if (n == 0) continue;
        dense_rows(rows.data(), n, H, whh_t_.data(), G, acc.data());
        for (int64_t k = 0; k < n; ++k) {
          const int64_t r = active[k];
          const int64_t pos = seq_.reverse ? len_[r] - 1 - t : t;
          step(proj_.data() + (r * T + pos) * G, acc.data() + k * G, r, codes.data());
          double* o = out + ((b0_ + r) * T + pos) * H;
          for (int64_t j = 0; j < H; ++j) {
            o[j] = codes[kHNext * H + j] * h_scale;
            h_n[(b0_ + r) * H + j] = o[j];
            c_n[(b0_ + r) * H + j] = codes[kCNext * H + j] * c_scale;
          }
          if (record && b0_ + r == 0) save(record, t, pos, codes.data());
        }
      }
    }
  }

 private:
  int64_t length(int64_t b) const {
    if (!seq_.lengths) return seq_.steps;
    return std::min<int64_t>(std::max<int64_t>(seq_.lengths[b], 0), seq_.steps);
  }

  int32_t x_code(int64_t b, int64_t pos, int64_t i) const {
    const double v = seq_.x[(b * seq_.steps + pos) * seq_.input_size + i];
    return static_cast<int32_t>(quantize_value(v, fix_.node[kInput0], range_));
  }

  // The dense-with-bias nodes of every valid position: codes at their fix positions, [r][t][4H].
  void project_inputs() {
    const int64_t I = seq_.input_size, H = seq_.hidden, T = seq_.steps, G = 4 * H;
    const int64_t nb = b1_ - b0_;
    len_.resize(nb);
    for (int64_t r = 0; r < nb; ++r) len_[r] = length(b0_ + r);
    proj_.assign(nb * T * G, 0);
    std::vector<double> xq(kRowBlock * I), acc(kRowBlock * G);
    std::vector<const double*> rows(kRowBlock);
    std::vector<int32_t*> dst(kRowBlock);
    int64_t n = 0;
    DenseBiasPlan gate_plan[kNumGates];
    for (int g = 0; g < kNumGates; ++g)
      gate_plan[g] = DenseBiasPlan::make(fix_.node[kInput0] + fix_.w_ih[g], fix_.node[dense_x_node(g)], fix_.bias[g]);
    auto flush = [&]() {
      dense_rows(rows.data(), n, I, wih_t_.data(), G, acc.data());
      for (int64_t k = 0; k < n; ++k)
        for (int g = 0; g < kNumGates; ++g)
          dense_bias_codes(gate_plan[g], range_.lo, range_.hi, H, acc.data() + k * G + g * H,
                           bias_ ? bias_ + g * H : nullptr, dst[k] + g * H);
      n = 0;
    };
    for (int64_t r = 0; r < nb; ++r)
      for (int64_t t = 0; t < len_[r]; ++t) {
        double* q = xq.data() + n * I;
        floor_codes(seq_.x + ((b0_ + r) * T + t) * I, I, fix_.node[kInput0], range_.lo, range_.hi, 1.0, q);
        rows[n] = q;
        dst[n] = proj_.data() + (r * T + t) * G;
        if (++n == kRowBlock) flush();
      }
    if (n) flush();
  }

  void init_state() {
    const int64_t H = seq_.hidden, nb = b1_ - b0_;
    h_.assign(nb * H, 0.0);
    c_.assign(nb * H, 0);
    for (int64_t r = 0; r < nb; ++r)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t idx = (b0_ + r) * H + j;
        if (seq_.h0) h_[r * H + j] = static_cast<double>(quantize_value(seq_.h0[idx], fix_.node[kInput1], range_));
        if (seq_.c0) c_[r * H + j] = quantize_value(seq_.c0[idx], fix_.node[kInput2], range_);
      }
  }

  // One cell step of slice row r (lstm_step_kernel.h). `a` holds the dense-with-bias codes of
  // this position, `acc_h` the recurrent accumulators (fix position input_1 + w_hh).
  void step(const int32_t* a, const double* acc_h, int64_t r, int32_t* codes) {
    const int64_t H = seq_.hidden;
    step_row(plan_, H, a, acc_h, h_.data() + r * H, c_.data() + r * H, codes);
  }

  void save(StepRecord* record, int64_t t, int64_t pos, const int32_t* codes) const {
    const int64_t I = seq_.input_size, H = seq_.hidden;
    for (int64_t i = 0; i < I; ++i) record->input0[t * I + i] = x_code(0, pos, i);
    std::copy(codes + H, codes + kNumNodes * H, record->nodes.begin() + t * (kNumNodes - 1) * H);
    record->steps_recorded = t + 1;
  }

  const CellFix& fix_;
  const SequenceBatch& seq_;
  const std::vector<double>& wih_t_;
  const std::vector<double>& whh_t_;
  const int32_t* bias_;
  int64_t b0_, b1_;
  CodeRange range_;
  std::vector<int64_t> len_;
  std::vector<int32_t> proj_;
  std::vector<double> h_;
  std::vector<int64_t> c_;  // state codes; h_ as doubles, the operand of the recurrent product
  StepPlan plan_ = StepPlan::make(fix_);
};

}  // namespace

void fixed_forward(const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih_codes,
                   const int32_t* w_hh_codes, const int32_t* bias_codes, double* out,
                   double* h_n, double* c_n, StepRecord* record, int num_threads) {
  const int64_t H = seq.hidden, G = 4 * H;
  const std::vector<double> wih_t = transpose_codes(w_ih_codes, G, seq.input_size);
  const std::vector<double> whh_t = transpose_codes(w_hh_codes, G, H);
  // Final states of sequences of length 0 are their (quantized) initial states.
  const CodeRange range = CodeRange::signed_bits(fix.bit_width);
  for (int64_t i = 0; i < seq.batch * H; ++i) {
    h_n[i] = seq.h0 ? dequantize(quantize_value(seq.h0[i], fix.node[kInput1], range), fix.node[kInput1]) : 0.0;
    c_n[i] = seq.c0 ? dequantize(quantize_value(seq.c0[i], fix.node[kInput2], range), fix.node[kInput2]) : 0.0;
  }
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
    pool.emplace_back([&, b0, b1]() {
      SliceRunner(fix, seq, wih_t, whh_t, bias_codes, b0, b1).run(out, h_n, c_n, nullptr);
    });
  }
  SliceRunner(fix, seq, wih_t, whh_t, bias_codes, 0, std::min(seq.batch, chunk))
      .run(out, h_n, c_n, record);
  for (auto& th : pool) th.join();
}

}  // namespace lstm
}  // namespace nndct

// Test mode of the quantized StandardLstmCell: integer codes end to end.
//
// Every value is held as an integer code at a known fix position; a matmul accumulates exact
// integer products (in double, exact while |sum| < 2^53, i.e. always for 16-bit codes), and each
// node's fake-quantization Q_fp (floor, then clamp) becomes a shift and a clamp. This is what the
// fixed-point hardware computes. Batch rows are independent, so each thread runs a slice of the
// batch through all time steps without any synchronisation.
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "nndct/lstm_cell.h"
#include "nndct/lstm_int_ops.h"

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

// acc[r][j] = sum_k rows[r][k] * wt[k][j] for a block of rows. Zero inputs are skipped, which
// pays for padded sequences and zero initial states.
void block_matvec(const double* const* rows, int64_t nrows, int64_t in, const double* wt,
                  int64_t four_h, double* acc) {
  std::fill(acc, acc + nrows * four_h, 0.0);
  for (int64_t k = 0; k < in; ++k) {
    const double* wrow = wt + k * four_h;
    for (int64_t r = 0; r < nrows; ++r) {
      const double a = rows[r][k];
      if (a == 0.0) continue;
      double* dst = acc + r * four_h;
      for (int64_t j = 0; j < four_h; ++j) dst[j] += a * wrow[j];
    }
  }
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
        block_matvec(rows.data(), n, H, whh_t_.data(), G, acc.data());
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
    auto flush = [&]() {
      block_matvec(rows.data(), n, I, wih_t_.data(), G, acc.data());
      for (int64_t k = 0; k < n; ++k)
        for (int g = 0; g < kNumGates; ++g) {
          const int fa = fix_.node[dense_x_node(g)];
          const int f_acc = fix_.node[kInput0] + fix_.w_ih[g];
          for (int64_t j = 0; j < H; ++j) {
            const int64_t prod = requantize(static_cast<int64_t>(acc[k * G + g * H + j]), f_acc, fa, range_);
            const int64_t b = bias_ ? bias_[g * H + j] : 0;
            dst[k][g * H + j] = static_cast<int32_t>(add_codes(prod, fa, b, fix_.bias[g], fa, range_));
          }
        }
      n = 0;
    };
    for (int64_t r = 0; r < nb; ++r)
      for (int64_t t = 0; t < len_[r]; ++t) {
        double* q = xq.data() + n * I;
        for (int64_t i = 0; i < I; ++i) q[i] = x_code(b0_ + r, t, i);
        rows[n] = q;
        dst[n] = proj_.data() + (r * T + t) * G;
        if (++n == kRowBlock) flush();
      }
    if (n) flush();
  }

  void init_state() {
    const int64_t H = seq_.hidden, nb = b1_ - b0_;
    h_.assign(nb * H, 0.0);
    c_.assign(nb * H, 0.0);
    for (int64_t r = 0; r < nb; ++r)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t idx = (b0_ + r) * H + j;
        if (seq_.h0) h_[r * H + j] = static_cast<double>(quantize_value(seq_.h0[idx], fix_.node[kInput1], range_));
        if (seq_.c0) c_[r * H + j] = static_cast<double>(quantize_value(seq_.c0[idx], fix_.node[kInput2], range_));
      }
  }

  // One cell step of slice row r. `a` holds the dense-with-bias codes of this position, `acc_h`
  // the recurrent accumulators (fix position input_1 + w_hh). Writes all 24 node codes.
  void step(const int32_t* a, const double* acc_h, int64_t r, int32_t* codes) {
    const int64_t H = seq_.hidden;
    const int* f = fix_.node;
    double* h = h_.data() + r * H;
    double* c = c_.data() + r * H;
    for (int64_t j = 0; j < H; ++j) {
      int64_t gate[kNumGates];
      for (int g = 0; g < kNumGates; ++g) {
        const int fa = f[dense_x_node(g)], fb = f[dense_h_node(g)], fy = f[sum_node(g)];
        const int64_t av = a[g * H + j];
        const int64_t bv = requantize(static_cast<int64_t>(acc_h[g * H + j]), f[kInput1] + fix_.w_hh[g], fb, range_);
        const int64_t y = add_codes(av, fa, bv, fb, fy, range_);
        gate[g] = g == 2 ? tanh_node(y, fy, f[gate_node(g)], range_)
                         : sigmoid_node(y, fy, f[gate_node(g)], range_);
        codes[dense_x_node(g) * H + j] = static_cast<int32_t>(av);
        codes[dense_h_node(g) * H + j] = static_cast<int32_t>(bv);
        codes[sum_node(g) * H + j] = static_cast<int32_t>(y);
        codes[gate_node(g) * H + j] = static_cast<int32_t>(gate[g]);
      }
      const int64_t cin = static_cast<int64_t>(c[j]);
      const int64_t ig = mul_codes(gate[0], f[kIt], gate[2], f[kCct], f[kItCct], range_);
      const int64_t fc = mul_codes(gate[1], f[kFt], cin, f[kInput2], f[kFtC], range_);
      const int64_t cn = add_codes(ig, f[kItCct], fc, f[kFtC], f[kCNext], range_);
      const int64_t ct = tanh_node(cn, f[kCNext], f[kCTemp], range_);
      const int64_t hn = mul_codes(gate[3], f[kOt], ct, f[kCTemp], f[kHNext], range_);
      codes[kInput1 * H + j] = static_cast<int32_t>(h[j]);
      codes[kInput2 * H + j] = static_cast<int32_t>(cin);
      codes[kItCct * H + j] = static_cast<int32_t>(ig);
      codes[kFtC * H + j] = static_cast<int32_t>(fc);
      codes[kCNext * H + j] = static_cast<int32_t>(cn);
      codes[kCTemp * H + j] = static_cast<int32_t>(ct);
      codes[kHNext * H + j] = static_cast<int32_t>(hn);
      // The next step reads h_next / c_next through input_1 / input_2 (Q at their positions).
      h[j] = static_cast<double>(requantize(hn, f[kHNext], f[kInput1], range_));
      c[j] = static_cast<double>(requantize(cn, f[kCNext], f[kInput2], range_));
    }
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
  std::vector<double> h_, c_;
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

// Calibration mode of the quantized StandardGruCell: the reference's fake-quantized float cell,
// one time step of the active rows at a time (the GRU twin of lstm_calibrate_forward.cc).
//
// Every node computes its output in float64 from already fake-quantized inputs (weights and
// biases arrive fake-quantized), is scanned by RnnNodeScanner (diffs vote, floor at the mode) and
// feeds the next node. Dense nodes are one matmul plus bias, scanned once after the bias, as the
// reference's calibration scans only a dense op's output. The sums are exact (every operand is
// on a power-of-two grid), so dense_rows' tiling cannot change a bit.
#include <algorithm>
#include <vector>

#include "nndct/dense_rows.h"
#include "nndct/gru_cell.h"
#include "nndct/rnn_node_scanner.h"
#include "nndct/rnn_weights.h"
#include "nndct/tables.h"

namespace nndct {
namespace gru {
namespace {

// out[r][j] = sum_k a[r][k] * wt[k][j] (+ bias[j]); rows of `a` are `in` apart.
void dense(const double* a, int64_t rows, int64_t in, const std::vector<double>& wt, const double* bias,
           int64_t cols, double* out) {
  std::vector<const double*> ptrs(rows);
  for (int64_t r = 0; r < rows; ++r) ptrs[r] = a + r * in;
  dense_rows(ptrs.data(), rows, in, wt.data(), cols, out);
  if (!bias) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) out[r * cols + j] += bias[j];
}

// Gate g's columns [g*H, (g+1)*H) of a [n][cols] matrix into dst [n][H].
void gather_gate(const double* m, int64_t n, int64_t cols, int g, int64_t H, double* dst) {
  for (int64_t k = 0; k < n; ++k) std::copy(m + k * cols + g * H, m + k * cols + (g + 1) * H, dst + k * H);
}

}  // namespace

void calibrate_forward(Variant variant, int bit_width, int search_range, int max_fix_pos, const SequenceBatch& seq,
                       const double* w_ih, const double* w_hh, const double* b_ih, const double* b_hh,
                       int64_t* fp_counts, double* out, double* h_n) {
  const int64_t B = seq.batch, T = seq.steps, I = seq.input_size, H = seq.hidden, G = kNumGates * H;
  const bool after = variant == Variant::kResetAfter;
  const int64_t rec_cols = after ? G : 2 * H;
  RnnNodeScanner scanner(bit_width, search_range, max_fix_pos, fp_counts);
  const std::vector<double> wih_t = transpose_rows(w_ih, 0, G, I);
  const std::vector<double> whh_t = transpose_rows(w_hh, 0, rec_cols, H);
  const std::vector<double> whn_t = after ? std::vector<double>() : transpose_rows(w_hh, 2 * H, G, H);
  std::vector<int64_t> len(B);
  for (int64_t b = 0; b < B; ++b) len[b] = seq.lengths ? std::min<int64_t>(std::max<int64_t>(seq.lengths[b], 0), T) : T;
  std::vector<double> h(B * H, 0.0);  // each row's state: the fake-quantized h_next of its last step
  if (seq.h0) std::copy(seq.h0, seq.h0 + B * H, h.begin());
  std::fill(out, out + B * T * H, 0.0);

  std::vector<int64_t> rows;
  std::vector<double> x, hin, ax(B * G), ah(B * rec_cols), node(kNumNodes * B * H);
  auto buf = [&](int idx) { return node.data() + idx * B * H; };
  for (int64_t t = 0; t < T; ++t) {
    rows.clear();
    for (int64_t b = 0; b < B; ++b)
      if (t < len[b]) rows.push_back(b);
    const int64_t n = static_cast<int64_t>(rows.size());
    if (n == 0) continue;
    const int64_t nh = n * H;
    x.resize(n * I);
    hin.resize(nh);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = rows[k], pos = seq.reverse ? len[b] - 1 - t : t;
      std::copy(seq.x + (b * T + pos) * I, seq.x + (b * T + pos + 1) * I, x.begin() + k * I);
      std::copy(h.begin() + b * H, h.begin() + (b + 1) * H, hin.begin() + k * H);
    }
    scanner.scan(kInput0, x.data(), n * I, true);
    scanner.scan(kInput1, hin.data(), nh, true);
    dense(x.data(), n, I, wih_t, b_ih, G, ax.data());
    dense(hin.data(), n, H, whh_t, after ? b_hh : nullptr, rec_cols, ah.data());
    for (int g = 0; g < 2; ++g) {  // reset and update gates
      double* a = buf(dense_x_node(g));
      double* r = buf(dense_h_node(variant, g));
      double* y = buf(sum_node(g));
      gather_gate(ax.data(), n, G, g, H, a);
      gather_gate(ah.data(), n, rec_cols, g, H, r);
      scanner.scan(dense_x_node(g), a, nh, false);
      scanner.scan(dense_h_node(variant, g), r, nh, false);
      for (int64_t i = 0; i < nh; ++i) y[i] = a[i] + r[i];
      scanner.scan(sum_node(g), y, nh, false);
      sigmoid_table_lookup<double>(y, buf(kR + g), nh, scanner.fix_pos(sum_node(g)));
      scanner.scan(kR + g, buf(kR + g), nh, false);
    }
    const double *rt = buf(kR), *zt = buf(kZ);
    double* xn = buf(kDenseXn);
    gather_gate(ax.data(), n, G, 2, H, xn);
    scanner.scan(kDenseXn, xn, nh, false);
    double *n11 = buf(11), *n12 = buf(12);
    if (after) {  // r * (W_hn h + b_hn)
      gather_gate(ah.data(), n, rec_cols, 2, H, n11);
      scanner.scan(11, n11, nh, false);
      for (int64_t i = 0; i < nh; ++i) n12[i] = rt[i] * n11[i];
    } else {      // W_hn (r * h)
      for (int64_t i = 0; i < nh; ++i) n11[i] = rt[i] * hin[i];
      scanner.scan(11, n11, nh, false);
      dense(n11, n, H, whn_t, nullptr, H, n12);
    }
    scanner.scan(12, n12, nh, false);
    double* yn = buf(kYn);
    for (int64_t i = 0; i < nh; ++i) yn[i] = xn[i] + n12[i];
    scanner.scan(kYn, yn, nh, false);
    double* nt = buf(kN);
    tanh_table_lookup<double>(yn, nt, nh, scanner.fix_pos(kYn));
    scanner.scan(kN, nt, nh, false);
    double *zn = buf(kZN), *d = buf(kNMinusZN), *zh = buf(kZH), *hn = buf(kHNext);
    for (int64_t i = 0; i < nh; ++i) zn[i] = zt[i] * nt[i];
    scanner.scan(kZN, zn, nh, false);
    for (int64_t i = 0; i < nh; ++i) d[i] = nt[i] - zn[i];
    scanner.scan(kNMinusZN, d, nh, false);
    for (int64_t i = 0; i < nh; ++i) zh[i] = zt[i] * hin[i];
    scanner.scan(kZH, zh, nh, false);
    for (int64_t i = 0; i < nh; ++i) hn[i] = d[i] + zh[i];
    scanner.scan(kHNext, hn, nh, false);

    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = rows[k], pos = seq.reverse ? len[b] - 1 - t : t;
      std::copy(hn + k * H, hn + (k + 1) * H, out + (b * T + pos) * H);
      std::copy(hn + k * H, hn + (k + 1) * H, h.begin() + b * H);
    }
  }
  std::copy(h.begin(), h.end(), h_n);
}

}  // namespace gru
}  // namespace nndct

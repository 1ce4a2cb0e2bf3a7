// The scalar reference loops of gru_reference.h.
#include "nndct/gru_reference.h"

#include <algorithm>
#include <vector>

#include "nndct/lstm_int_ops.h"
#include "nndct/rnn_node_scanner.h"
#include "nndct/rnn_step_rows.h"
#include "nndct/tables.h"

namespace nndct {
namespace gru {
namespace {

using lstm::add_codes;
using lstm::CodeRange;
using lstm::dequantize;
using lstm::mul_codes;
using lstm::quantize_value;
using lstm::requantize;

using rnn::sequence_length;

}  // namespace

void fixed_forward_scalar(Variant variant, const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih,
                          const int32_t* w_hh, const int32_t* b_ih, const int32_t* b_hh, double* out, double* h_n,
                          StepRecord* record) {
  const int64_t B = seq.batch, T = seq.steps, I = seq.input_size, H = seq.hidden;
  const bool after = variant == Variant::kResetAfter;
  CodeRange rg[kNumNodes];  // each node's own code range (mixed widths)
  for (int k = 0; k < kNumNodes; ++k) rg[k] = CodeRange::signed_bits(fix.bits(k));
  const int* f = fix.node;
  std::fill(out, out + B * T * H, 0.0);
  if (record) {
    record->input0.assign(static_cast<size_t>(T * I), 0);
    record->nodes.assign(static_cast<size_t>(T * (kNumNodes - 1) * H), 0);
    record->steps_recorded = B > 0 ? sequence_length(seq, 0) : 0;
  }
  std::vector<int64_t> x(static_cast<size_t>(I)), h(static_cast<size_t>(H));
  std::vector<int64_t> node(static_cast<size_t>(kNumNodes * H));
  auto code = [&](int k, int64_t j) -> int64_t& { return node[static_cast<size_t>(k * H + j)]; };
  auto dot = [](const int64_t* a, const int32_t* w, int64_t n) {
    int64_t s = 0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * w[i];
    return s;
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < H; ++j) {
      h[static_cast<size_t>(j)] = seq.h0 ? quantize_value(seq.h0[b * H + j], f[kInput1], rg[kInput1]) : 0;
      h_n[b * H + j] = dequantize(h[static_cast<size_t>(j)], f[kInput1]);
    }
    const int64_t L = sequence_length(seq, b);
    for (int64_t t = 0; t < L; ++t) {
      const int64_t pos = seq.reverse ? L - 1 - t : t;
      for (int64_t i = 0; i < I; ++i)
        x[static_cast<size_t>(i)] = quantize_value(seq.x[(b * T + pos) * I + i], f[kInput0], rg[kInput0]);
      for (int64_t j = 0; j < H; ++j) code(kInput1, j) = h[static_cast<size_t>(j)];
      // The dense_x nodes, and the recurrent dense nodes of r and z (+ reset-after: of n).
      for (int g = 0; g < kNumGates; ++g) {
        const int fa = f[dense_x_node(g)], fb = f[dense_h_node(variant, g)];
        const CodeRange& ra = rg[dense_x_node(g)];
        const CodeRange& rb = rg[dense_h_node(variant, g)];
        for (int64_t j = 0; j < H; ++j) {
          const int64_t ax = dot(x.data(), w_ih + (g * H + j) * I, I);
          code(dense_x_node(g), j) = add_codes(requantize(ax, f[kInput0] + fix.w_ih[g], fa, ra), fa,
                                               b_ih ? b_ih[g * H + j] : 0, fix.b_ih[g], fa, ra);
          if (!after && g == 2) continue;
          const int64_t ah = requantize(dot(h.data(), w_hh + (g * H + j) * H, H), f[kInput1] + fix.w_hh[g], fb, rb);
          code(dense_h_node(variant, g), j) =
              after ? add_codes(ah, fb, b_hh ? b_hh[g * H + j] : 0, fix.b_hh[g], fb, rb) : ah;
        }
      }
      for (int g = 0; g < 2; ++g)
        for (int64_t j = 0; j < H; ++j) {
          const int fy = f[sum_node(g)];
          const int64_t y = add_codes(code(dense_x_node(g), j), f[dense_x_node(g)], code(dense_h_node(variant, g), j),
                                      f[dense_h_node(variant, g)], fy, rg[sum_node(g)]);
          code(sum_node(g), j) = y;
          code(kR + g, j) = lstm::sigmoid_node(y, fy, f[kR + g], rg[kR + g]);
        }
      if (after) {  // r * (W_hn h + b_hn)
        for (int64_t j = 0; j < H; ++j) code(12, j) = mul_codes(code(kR, j), f[kR], code(11, j), f[11], f[12], rg[12]);
      } else {      // W_hn (r * h)
        for (int64_t j = 0; j < H; ++j)
          code(11, j) = mul_codes(code(kR, j), f[kR], h[static_cast<size_t>(j)], f[kInput1], f[11], rg[11]);
        for (int64_t j = 0; j < H; ++j) {
          int64_t s = 0;
          for (int64_t k = 0; k < H; ++k) s += code(11, k) * w_hh[(2 * H + j) * H + k];
          code(12, j) = requantize(s, f[11] + fix.w_hh[2], f[12], rg[12]);
        }
      }
      for (int64_t j = 0; j < H; ++j) {
        const int64_t y = add_codes(code(kDenseXn, j), f[kDenseXn], code(12, j), f[12], f[kYn], rg[kYn]);
        const int64_t n = lstm::tanh_node(y, f[kYn], f[kN], rg[kN]);
        const int64_t z = code(kZ, j);
        const int64_t zn = mul_codes(z, f[kZ], n, f[kN], f[kZN], rg[kZN]);
        // n - z*n: both move to the finer grid exactly, so -zn may be added.
        const int64_t d = add_codes(n, f[kN], -zn, f[kZN], f[kNMinusZN], rg[kNMinusZN]);
        const int64_t zh = mul_codes(z, f[kZ], h[static_cast<size_t>(j)], f[kInput1], f[kZH], rg[kZH]);
        const int64_t hn = add_codes(d, f[kNMinusZN], zh, f[kZH], f[kHNext], rg[kHNext]);
        code(kYn, j) = y;
        code(kN, j) = n;
        code(kZN, j) = zn;
        code(kNMinusZN, j) = d;
        code(kZH, j) = zh;
        code(kHNext, j) = hn;
        out[(b * T + pos) * H + j] = dequantize(hn, f[kHNext]);
        h_n[b * H + j] = dequantize(hn, f[kHNext]);
      }
      for (int64_t j = 0; j < H; ++j) h[static_cast<size_t>(j)] = requantize(code(kHNext, j), f[kHNext], f[kInput1], rg[kInput1]);
      if (record && b == 0) {
        for (int64_t i = 0; i < I; ++i)
          record->input0[static_cast<size_t>(t * I + i)] = static_cast<int32_t>(x[static_cast<size_t>(i)]);
        for (int k = 1; k < kNumNodes; ++k)
          for (int64_t j = 0; j < H; ++j)
            record->nodes[static_cast<size_t>((t * (kNumNodes - 1) + k - 1) * H + j)] = static_cast<int32_t>(code(k, j));
      }
    }
  }
}

void calibrate_forward_scalar(Variant variant, int bit_width, int search_range, int max_fix_pos,
                              const SequenceBatch& seq, const double* w_ih, const double* w_hh, const double* b_ih,
                              const double* b_hh, int64_t* fp_counts, double* out, double* h_n,
                              const int* node_bits) {
  const int64_t B = seq.batch, T = seq.steps, I = seq.input_size, H = seq.hidden, G = kNumGates * H;
  const bool after = variant == Variant::kResetAfter;
  RnnNodeScanner scanner(bit_width, search_range, max_fix_pos, fp_counts, node_bits);
  std::vector<double> h(static_cast<size_t>(B * H), 0.0);  // each row's fake-quantized h_next (raw h0 at first)
  if (seq.h0) std::copy(seq.h0, seq.h0 + B * H, h.begin());
  std::fill(out, out + B * T * H, 0.0);
  rnn::StepRows rows;
  std::vector<double> x, hin, ax, ah, node(static_cast<size_t>(kNumNodes * B * H));
  auto buf = [&](int idx) { return node.data() + idx * B * H; };
  // out[k][j] = sum_i a[k][i] * w[j][i] (+ bias[j]): exact, every operand on a power-of-two grid.
  auto dense = [](const double* a, int64_t n, int64_t in, const double* w, int64_t cols, const double* bias,
                  double* dst) {
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < cols; ++j) {
        double s = 0.0;
        for (int64_t i = 0; i < in; ++i) s += a[k * in + i] * w[j * in + i];
        dst[k * cols + j] = bias ? s + bias[j] : s;
      }
  };
  // Gate g's columns of a [n][cols] matrix into dst [n][H].
  auto gate_cols = [&](const std::vector<double>& m, int64_t n, int64_t cols, int g, double* dst) {
    for (int64_t k = 0; k < n; ++k)
      std::copy(m.begin() + k * cols + g * H, m.begin() + k * cols + (g + 1) * H, dst + k * H);
  };
  const int64_t hcols = after ? G : 2 * H;  // reset-before: W_hn multiplies r * h, below
  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = rows.select(seq, t);
    if (n == 0) continue;
    const int64_t N = n * H;
    rows.gather_x(seq, t, x);
    rows.gather(h, H, hin);
    scanner.scan(kInput0, x.data(), n * I, true);
    scanner.scan(kInput1, hin.data(), N, true);
    ax.assign(static_cast<size_t>(n * G), 0.0);
    ah.assign(static_cast<size_t>(n * hcols), 0.0);
    dense(x.data(), n, I, w_ih, G, b_ih, ax.data());
    dense(hin.data(), n, H, w_hh, hcols, after ? b_hh : nullptr, ah.data());
    for (int g = 0; g < 2; ++g) {  // reset and update gates
      double* a = buf(dense_x_node(g));
      double* rr = buf(dense_h_node(variant, g));
      double* y = buf(sum_node(g));
      gate_cols(ax, n, G, g, a);
      gate_cols(ah, n, hcols, g, rr);
      scanner.scan(dense_x_node(g), a, N, false);
      scanner.scan(dense_h_node(variant, g), rr, N, false);
      for (int64_t i = 0; i < N; ++i) y[i] = a[i] + rr[i];
      scanner.scan(sum_node(g), y, N, false);
      sigmoid_table_lookup<double>(y, buf(kR + g), N, scanner.fix_pos(sum_node(g)));
      scanner.scan(kR + g, buf(kR + g), N, false);
    }
    const double *rt = buf(kR), *zt = buf(kZ);
    double* xn = buf(kDenseXn);
    gate_cols(ax, n, G, 2, xn);
    scanner.scan(kDenseXn, xn, N, false);
    double *n11 = buf(11), *n12 = buf(12);
    if (after) {  // r * (W_hn h + b_hn)
      gate_cols(ah, n, hcols, 2, n11);
      scanner.scan(11, n11, N, false);
      for (int64_t i = 0; i < N; ++i) n12[i] = rt[i] * n11[i];
    } else {      // W_hn (r * h)
      for (int64_t i = 0; i < N; ++i) n11[i] = rt[i] * hin[static_cast<size_t>(i)];
      scanner.scan(11, n11, N, false);
      dense(n11, n, H, w_hh + 2 * H * H, H, nullptr, n12);
    }
    scanner.scan(12, n12, N, false);
    double* yn = buf(kYn);
    for (int64_t i = 0; i < N; ++i) yn[i] = xn[i] + n12[i];
    scanner.scan(kYn, yn, N, false);
    double* nt = buf(kN);
    tanh_table_lookup<double>(yn, nt, N, scanner.fix_pos(kYn));
    scanner.scan(kN, nt, N, false);
    double *zn = buf(kZN), *d = buf(kNMinusZN), *zh = buf(kZH), *hn = buf(kHNext);
    for (int64_t i = 0; i < N; ++i) zn[i] = zt[i] * nt[i];
    scanner.scan(kZN, zn, N, false);
    for (int64_t i = 0; i < N; ++i) d[i] = nt[i] - zn[i];
    scanner.scan(kNMinusZN, d, N, false);
    for (int64_t i = 0; i < N; ++i) zh[i] = zt[i] * hin[static_cast<size_t>(i)];
    scanner.scan(kZH, zh, N, false);
    for (int64_t i = 0; i < N; ++i) hn[i] = d[i] + zh[i];
    scanner.scan(kHNext, hn, N, false);
    rows.scatter_out(seq, t, hn, out);
    rows.scatter(hn, H, h);
  }
  std::copy(h.begin(), h.end(), h_n);
}

}  // namespace gru
}  // namespace nndct

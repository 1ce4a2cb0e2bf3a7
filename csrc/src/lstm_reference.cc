// The scalar reference loops of lstm_reference.h.
#include "nndct/lstm_reference.h"

#include <algorithm>
#include <vector>

#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_step_kernel.h"
#include "nndct/rnn_node_scanner.h"
#include "nndct/rnn_step_rows.h"

namespace nndct {
namespace lstm {
namespace {

using rnn::sequence_length;

}  // namespace

void fixed_forward_scalar(const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih,
                          const int32_t* w_hh, const int32_t* bias, double* out, double* h_n, double* c_n,
                          StepRecord* record) {
  const int64_t B = seq.batch, T = seq.steps, I = seq.input_size, H = seq.hidden;
  CodeRange rg[kNumNodes];  // each node's own code range (mixed widths)
  for (int k = 0; k < kNumNodes; ++k) rg[k] = CodeRange::signed_bits(fix.bits(k));
  const int* f = fix.node;
  std::fill(out, out + B * T * H, 0.0);
  if (record) {
    record->input0.assign(static_cast<size_t>(T * I), 0);
    record->nodes.assign(static_cast<size_t>(T * (kNumNodes - 1) * H), 0);
    record->steps_recorded = B > 0 ? sequence_length(seq, 0) : 0;
  }
  std::vector<int64_t> x(static_cast<size_t>(I)), h(static_cast<size_t>(H)), c(static_cast<size_t>(H));
  std::vector<int64_t> node(static_cast<size_t>(kNumNodes * H));
  auto code = [&](int k, int64_t j) -> int64_t& { return node[static_cast<size_t>(k * H + j)]; };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < H; ++j) {
      h[static_cast<size_t>(j)] = seq.h0 ? quantize_value(seq.h0[b * H + j], f[kInput1], rg[kInput1]) : 0;
      c[static_cast<size_t>(j)] = seq.c0 ? quantize_value(seq.c0[b * H + j], f[kInput2], rg[kInput2]) : 0;
      h_n[b * H + j] = dequantize(h[static_cast<size_t>(j)], f[kInput1]);
      c_n[b * H + j] = dequantize(c[static_cast<size_t>(j)], f[kInput2]);
    }
    const int64_t L = sequence_length(seq, b);
    for (int64_t t = 0; t < L; ++t) {
      const int64_t pos = seq.reverse ? L - 1 - t : t;
      for (int64_t i = 0; i < I; ++i)
        x[static_cast<size_t>(i)] = quantize_value(seq.x[(b * T + pos) * I + i], f[kInput0], rg[kInput0]);
      for (int g = 0; g < kNumGates; ++g) {
        const int fa = f[dense_x_node(g)], fb = f[dense_h_node(g)], fy = f[sum_node(g)], fz = f[gate_node(g)];
        const CodeRange &ra = rg[dense_x_node(g)], &rb = rg[dense_h_node(g)], &ry = rg[sum_node(g)],
                        &rz = rg[gate_node(g)];
        for (int64_t j = 0; j < H; ++j) {
          int64_t ax = 0, ah = 0;
          for (int64_t i = 0; i < I; ++i) ax += x[static_cast<size_t>(i)] * w_ih[(g * H + j) * I + i];
          for (int64_t k = 0; k < H; ++k) ah += h[static_cast<size_t>(k)] * w_hh[(g * H + j) * H + k];
          const int64_t a = add_codes(requantize(ax, f[kInput0] + fix.w_ih[g], fa, ra), fa,
                                      bias ? bias[g * H + j] : 0, fix.bias[g], fa, ra);
          const int64_t hb = requantize(ah, f[kInput1] + fix.w_hh[g], fb, rb);
          const int64_t y = add_codes(a, fa, hb, fb, fy, ry);
          code(dense_x_node(g), j) = a;
          code(dense_h_node(g), j) = hb;
          code(sum_node(g), j) = y;
          code(gate_node(g), j) = g == 2 ? tanh_node(y, fy, fz, rz) : sigmoid_node(y, fy, fz, rz);
        }
      }
      for (int64_t j = 0; j < H; ++j) {
        const int64_t cin = c[static_cast<size_t>(j)];
        const int64_t ig = mul_codes(code(kIt, j), f[kIt], code(kCct, j), f[kCct], f[kItCct], rg[kItCct]);
        const int64_t fc = mul_codes(code(kFt, j), f[kFt], cin, f[kInput2], f[kFtC], rg[kFtC]);
        const int64_t cn = add_codes(ig, f[kItCct], fc, f[kFtC], f[kCNext], rg[kCNext]);
        const int64_t ct = tanh_node(cn, f[kCNext], f[kCTemp], rg[kCTemp]);
        const int64_t hn = mul_codes(code(kOt, j), f[kOt], ct, f[kCTemp], f[kHNext], rg[kHNext]);
        code(kInput1, j) = h[static_cast<size_t>(j)];
        code(kInput2, j) = cin;
        code(kItCct, j) = ig;
        code(kFtC, j) = fc;
        code(kCNext, j) = cn;
        code(kCTemp, j) = ct;
        code(kHNext, j) = hn;
        out[(b * T + pos) * H + j] = dequantize(hn, f[kHNext]);
        h_n[b * H + j] = dequantize(hn, f[kHNext]);
        c_n[b * H + j] = dequantize(cn, f[kCNext]);
      }
      for (int64_t j = 0; j < H; ++j) {
        h[static_cast<size_t>(j)] = requantize(code(kHNext, j), f[kHNext], f[kInput1], rg[kInput1]);
        c[static_cast<size_t>(j)] = requantize(code(kCNext, j), f[kCNext], f[kInput2], rg[kInput2]);
      }
      if (record && b == 0) {
        for (int64_t i = 0; i < I; ++i) record->input0[static_cast<size_t>(t * I + i)] = static_cast<int32_t>(x[static_cast<size_t>(i)]);
        for (int k = 1; k < kNumNodes; ++k)
          for (int64_t j = 0; j < H; ++j)
            record->nodes[static_cast<size_t>((t * (kNumNodes - 1) + k - 1) * H + j)] = static_cast<int32_t>(code(k, j));
      }
    }
  }
}

namespace {

// Table lookup of values on the 2^-fin grid through the scalar table nodes; 2^-15 grid out.
void scalar_table(bool is_tanh, const double* in, int fin, double* out, int64_t n) {
  const CodeRange wide{-(int64_t{1} << 40), int64_t{1} << 40};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t code = static_cast<int64_t>(in[i] * pow2(fin));
    const int64_t v = is_tanh ? tanh_node(code, fin, kTableOutputFixPos, wide)
                              : sigmoid_node(code, fin, kTableOutputFixPos, wide);
    out[i] = static_cast<double>(v) * pow2(-kTableOutputFixPos);
  }
}

}  // namespace

void calibrate_forward_scalar(int bit_width, int search_range, int max_fix_pos, const SequenceBatch& seq,
                              const double* w_ih, const double* w_hh, const double* bias, int64_t* fp_counts,
                              double* out, double* h_n, double* c_n, const int* node_bits) {
  const int64_t B = seq.batch, T = seq.steps, I = seq.input_size, H = seq.hidden, G = 4 * H;
  RnnNodeScanner scanner(bit_width, search_range, max_fix_pos, fp_counts, node_bits);
  std::vector<double> h(static_cast<size_t>(B * H), 0.0), c(static_cast<size_t>(B * H), 0.0);
  if (seq.h0) std::copy(seq.h0, seq.h0 + B * H, h.begin());
  if (seq.c0) std::copy(seq.c0, seq.c0 + B * H, c.begin());
  std::fill(out, out + B * T * H, 0.0);
  rnn::StepRows rows;
  std::vector<double> node(static_cast<size_t>(kNumNodes * B * H)), x, hin, cin, ax, ah;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = rows.select(seq, t);
    if (n == 0) continue;
    const int64_t N = n * H;
    rows.gather_x(seq, t, x);
    rows.gather(h, H, hin);
    rows.gather(c, H, cin);
    scanner.scan(kInput0, x.data(), n * I, true);
    scanner.scan(kInput1, hin.data(), N, true);
    scanner.scan(kInput2, cin.data(), N, true);
    ax.assign(static_cast<size_t>(n * G), 0.0);
    ah.assign(static_cast<size_t>(n * G), 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < G; ++j) {
        double sx = 0.0, sh = 0.0;  // exact: integer multiples of one power of two below 2^53
        for (int64_t i = 0; i < I; ++i) sx += x[static_cast<size_t>(k * I + i)] * w_ih[j * I + i];
        for (int64_t i = 0; i < H; ++i) sh += hin[static_cast<size_t>(k * H + i)] * w_hh[j * H + i];
        ax[static_cast<size_t>(k * G + j)] = sx + bias[j];
        ah[static_cast<size_t>(k * G + j)] = sh;
      }
    auto buf = [&](int idx) { return node.data() + idx * B * H; };
    for (int g = 0; g < kNumGates; ++g) {
      double* a = buf(dense_x_node(g));
      double* bb = buf(dense_h_node(g));
      double* y = buf(sum_node(g));
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < H; ++j) {
          a[k * H + j] = ax[static_cast<size_t>(k * G + g * H + j)];
          bb[k * H + j] = ah[static_cast<size_t>(k * G + g * H + j)];
        }
      scanner.scan(dense_x_node(g), a, N, false);
      scanner.scan(dense_h_node(g), bb, N, false);
      for (int64_t i = 0; i < N; ++i) y[i] = a[i] + bb[i];
      scanner.scan(sum_node(g), y, N, false);
      scalar_table(g == 2, y, scanner.fix_pos(sum_node(g)), buf(gate_node(g)), N);
      scanner.scan(gate_node(g), buf(gate_node(g)), N, false);
    }
    double *ig = buf(kItCct), *fc = buf(kFtC), *cn = buf(kCNext), *ct = buf(kCTemp), *hn = buf(kHNext);
    for (int64_t i = 0; i < N; ++i) ig[i] = buf(kIt)[i] * buf(kCct)[i];
    scanner.scan(kItCct, ig, N, false);
    for (int64_t i = 0; i < N; ++i) fc[i] = buf(kFt)[i] * cin[static_cast<size_t>(i)];
    scanner.scan(kFtC, fc, N, false);
    for (int64_t i = 0; i < N; ++i) cn[i] = ig[i] + fc[i];
    scanner.scan(kCNext, cn, N, false);
    scalar_table(true, cn, scanner.fix_pos(kCNext), ct, N);
    scanner.scan(kCTemp, ct, N, false);
    for (int64_t i = 0; i < N; ++i) hn[i] = buf(kOt)[i] * ct[i];
    scanner.scan(kHNext, hn, N, false);
    rows.scatter_out(seq, t, hn, out);
    rows.scatter(hn, H, h);
    rows.scatter(cn, H, c);
  }
  std::copy(h.begin(), h.end(), h_n);
  std::copy(c.begin(), c.end(), c_n);
}

}  // namespace lstm
}  // namespace nndct

// The vectorizable time step of the integer GRU cell (see gru_step_kernel.h).
#include "nndct/gru_step_kernel.h"

#include <algorithm>

#include "nndct/fix_point.h"
#include "nndct/simd.h"

namespace nndct {
namespace gru {

using lstm::clamped;
using lstm::shifted;
using lstm::table_value;

StepPlan StepPlan::make(Variant variant, const CellFix& fix) {
  StepPlan p;
  const int* f = fix.node;
  p.variant = variant;
  p.lo = code_min(fix.bit_width);
  p.hi = code_max(fix.bit_width);
  const bool after = variant == Variant::kResetAfter;
  for (int g = 0; g < kNumGates; ++g) {
    const int dense = dense_h_node(variant, g);
    if (after || g < 2) {
      p.dense_h[g] = DenseBiasPlan::make(f[kInput1] + fix.w_hh[g], f[dense], after ? fix.b_hh[g] : f[dense]);
    } else {  // W_hn (r * h): the accumulator of node 11's codes, no bias
      p.dense_h[g] = DenseBiasPlan::make(f[11] + fix.w_hh[g], f[dense], f[dense]);
    }
    const int fa = f[dense_x_node(g)], fb = f[g < 2 ? dense : 12], fy = f[sum_node(g)];
    const int fm = std::max(fa, fb);
    Gate& q = p.gate[g];
    q.a_to_sum = Shift::between(fa, fm);
    q.b_to_sum = Shift::between(fb, fm);
    q.sum_to_y = Shift::between(fm, fy);
    q.table = TableOp::make(g == 2, fy, f[g == 2 ? kN : kR + g], p.lo, p.hi);
  }
  const int prod = reset_product_node(variant);
  p.reset = Shift::between(f[kR] + (after ? f[11] : f[kInput1]), f[prod]);
  p.zn = Shift::between(f[kZ] + f[kN], f[kZN]);
  const int fs = std::max(f[kN], f[kZN]);
  p.n_to_sub = Shift::between(f[kN], fs);
  p.zn_to_sub = Shift::between(f[kZN], fs);
  p.sub_to_d = Shift::between(fs, f[kNMinusZN]);
  p.zh = Shift::between(f[kZ] + f[kInput1], f[kZH]);
  const int fh = std::max(f[kNMinusZN], f[kZH]);
  p.d_to_sum = Shift::between(f[kNMinusZN], fh);
  p.zh_to_sum = Shift::between(f[kZH], fh);
  p.sum_to_hn = Shift::between(fh, f[kHNext]);
  p.hn_to_h = Shift::between(f[kHNext], f[kInput1]);
  return p;
}

namespace {

// y = Q(a + b) and its table node (one gate). Every array is a restrict-qualified parameter so
// that the loop vectorizes (see lstm_step_kernel.cc).
NNDCT_TARGET_CLONES void sum_table_loop(const StepPlan::Gate& q, int64_t lo, int64_t hi, int64_t H,
                                        const int32_t* NNDCT_RESTRICT a, const int32_t* NNDCT_RESTRICT b,
                                        int32_t* NNDCT_RESTRICT cy, int32_t* NNDCT_RESTRICT cg) {
  const int al = q.a_to_sum.left, ar = q.a_to_sum.right, bl = q.b_to_sum.left, br = q.b_to_sum.right;
  const int yl = q.sum_to_y.left, yr = q.sum_to_y.right;
  const TableOp t = q.table;
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  for (int64_t j = 0; j < H; ++j) {
    const int64_t y = clamped(shifted(shifted(int64_t{a[j]}, al, ar) + shifted(int64_t{b[j]}, bl, br), yl, yr), lo, hi);
    cy[j] = static_cast<int32_t>(y);
    cg[j] = static_cast<int32_t>(table_value(t.table, y, t.in_lo, t.in_hi, il, ir, t.high, t.low, ol, orr,
                                             t.out_lo, t.out_hi));
  }
}

// out = Q(a * b): the product of two codes is exact at the sum of their positions.
NNDCT_TARGET_CLONES void product_loop(Shift s, int64_t lo, int64_t hi, int64_t H, const int32_t* NNDCT_RESTRICT a,
                                      const int32_t* NNDCT_RESTRICT b, int32_t* NNDCT_RESTRICT out) {
  const int l = s.left, r = s.right;
  for (int64_t j = 0; j < H; ++j) out[j] = static_cast<int32_t>(clamped(shifted(int64_t{a[j]} * b[j], l, r), lo, hi));
}

// ft*cct, cct-ft*cct, ft*input_1, h_next and the next state.
NNDCT_TARGET_CLONES void output_loop(const StepPlan& p, int64_t H, const int32_t* NNDCT_RESTRICT z,
                                     const int32_t* NNDCT_RESTRICT n, const int32_t* NNDCT_RESTRICT hin,
                                     int32_t* NNDCT_RESTRICT c_zn, int32_t* NNDCT_RESTRICT c_d,
                                     int32_t* NNDCT_RESTRICT c_zh, int32_t* NNDCT_RESTRICT c_hn,
                                     double* NNDCT_RESTRICT h) {
  const int64_t lo = p.lo, hi = p.hi;
  const int znl = p.zn.left, znr = p.zn.right;
  const int nsl = p.n_to_sub.left, nsr = p.n_to_sub.right, zsl = p.zn_to_sub.left, zsr = p.zn_to_sub.right;
  const int sdl = p.sub_to_d.left, sdr = p.sub_to_d.right, zhl = p.zh.left, zhr = p.zh.right;
  const int dsl = p.d_to_sum.left, dsr = p.d_to_sum.right, hsl = p.zh_to_sum.left, hsr = p.zh_to_sum.right;
  const int hnl = p.sum_to_hn.left, hnr = p.sum_to_hn.right, hhl = p.hn_to_h.left, hhr = p.hn_to_h.right;
  for (int64_t j = 0; j < H; ++j) {
    const int64_t zv = z[j], nv = n[j];
    const int64_t zn = clamped(shifted(zv * nv, znl, znr), lo, hi);
    const int64_t d = clamped(shifted(shifted(nv, nsl, nsr) - shifted(zn, zsl, zsr), sdl, sdr), lo, hi);
    const int64_t zh = clamped(shifted(zv * hin[j], zhl, zhr), lo, hi);
    const int64_t hn = clamped(shifted(shifted(d, dsl, dsr) + shifted(zh, hsl, hsr), hnl, hnr), lo, hi);
    c_zn[j] = static_cast<int32_t>(zn);
    c_d[j] = static_cast<int32_t>(d);
    c_zh[j] = static_cast<int32_t>(zh);
    c_hn[j] = static_cast<int32_t>(hn);
    h[j] = static_cast<double>(clamped(shifted(hn, hhl, hhr), lo, hi));
  }
}

}  // namespace

void step_gates(const StepPlan& plan, int64_t H, const int32_t* a, const int64_t* acc, const int32_t* b_hh,
                const double* h, int32_t* codes) {
  const Variant v = plan.variant;
  const bool after = v == Variant::kResetAfter;
  int32_t* in1 = codes + kInput1 * H;
  for (int64_t j = 0; j < H; ++j) in1[j] = static_cast<int32_t>(h[j]);  // the state this step reads
  for (int g = 0; g < kNumGates; ++g) std::copy(a + g * H, a + (g + 1) * H, codes + dense_x_node(g) * H);
  for (int g = 0; g < (after ? kNumGates : 2); ++g)
    lstm::dense_bias_codes(plan.dense_h[g], plan.lo, plan.hi, H, acc + g * H, b_hh ? b_hh + g * H : nullptr,
                           codes + dense_h_node(v, g) * H);
  for (int g = 0; g < 2; ++g)
    sum_table_loop(plan.gate[g], plan.lo, plan.hi, H, codes + dense_x_node(g) * H, codes + dense_h_node(v, g) * H,
                   codes + sum_node(g) * H, codes + (kR + g) * H);
  product_loop(plan.reset, plan.lo, plan.hi, H, codes + kR * H, after ? codes + 11 * H : in1,
               codes + reset_product_node(v) * H);
}

void step_output(const StepPlan& plan, int64_t H, double* h, int32_t* codes) {
  sum_table_loop(plan.gate[2], plan.lo, plan.hi, H, codes + kDenseXn * H, codes + 12 * H, codes + kYn * H,
                 codes + kN * H);
  output_loop(plan, H, codes + kZ * H, codes + kN * H, codes + kInput1 * H, codes + kZN * H, codes + kNMinusZN * H,
              codes + kZH * H, codes + kHNext * H, h);
}

}  // namespace gru
}  // namespace nndct

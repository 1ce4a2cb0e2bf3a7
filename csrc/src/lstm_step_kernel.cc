// The vectorizable time step of the integer LSTM cell (see lstm_step_kernel.h).
#include "nndct/lstm_step_kernel.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "nndct/fix_point.h"
#include "nndct/grid.h"
#include "nndct/simd.h"
#include "nndct/tables.h"

namespace nndct {
namespace lstm {
namespace {

constexpr int64_t kNoLow = std::numeric_limits<int64_t>::min();
constexpr int64_t kNoHigh = std::numeric_limits<int64_t>::max();

// The tables as int64, so that a gather with 64-bit indices loads 64-bit lanes (the form the
// vectorizer handles).
template <const int16_t* (*Source)()>
const int64_t* widened() {
  static const std::array<int64_t, kTableSize> table = [] {
    std::array<int64_t, kTableSize> t{};
    std::copy(Source(), Source() + kTableSize, t.begin());
    return t;
  }();
  return table.data();
}

}  // namespace

Shift Shift::between(int from, int to) {
  const int d = to - from;
  return d >= 0 ? Shift{std::min(d, 62), 0} : Shift{0, std::min(-d, 63)};
}

TableOp TableOp::make(bool is_tanh, int fin, int fout, int64_t code_lo, int64_t code_hi) {
  TableOp t;
  t.table = is_tanh ? widened<tanh_table>() : widened<sigmoid_table>();
  // detail::table_step: floor(code * 2^shift), saturating beyond the table. For shift > 0 an
  // input beyond +-limit saturates; clamping it to +-(limit + 1) first gives a step beyond the
  // table on the same side, and a shift of 12 already sends +-1 there.
  const int shift = (is_tanh ? 8 : 7) - fin;
  if (shift <= 0) {
    t.in_lo = kNoLow;
    t.in_hi = kNoHigh;
    t.index = Shift{0, std::min(-shift, 63)};
  } else {
    const int s = std::min(shift, 12);
    const int64_t limit = int64_t{2048} >> s;
    t.in_lo = -(limit + 1);
    t.in_hi = limit + 1;
    t.index = Shift{s, 0};
  }
  t.high = kTableCodeMax;
  t.low = is_tanh ? -32768 : 0;
  if (fout >= kTableOutputFixPos) {  // table_output: no requantization
    t.out_lo = kNoLow;
    t.out_hi = kNoHigh;
  } else {
    t.out = Shift::between(kTableOutputFixPos, fout);
    t.out_lo = code_lo;
    t.out_hi = code_hi;
  }
  return t;
}

StepPlan StepPlan::make(const CellFix& fix) {
  StepPlan p;
  const int* f = fix.node;
  p.lo = code_min(fix.bit_width);
  p.hi = code_max(fix.bit_width);
  for (int g = 0; g < kNumGates; ++g) {
    const int fa = f[dense_x_node(g)], fb = f[dense_h_node(g)], fy = f[sum_node(g)];
    const int fm = std::max(fa, fb);
    Gate& q = p.gate[g];
    q.acc_to_b = Shift::between(f[kInput1] + fix.w_hh[g], fb);
    q.a_to_sum = Shift::between(fa, fm);
    q.b_to_sum = Shift::between(fb, fm);
    q.sum_to_y = Shift::between(fm, fy);
    q.table = TableOp::make(g == 2, fy, f[gate_node(g)], p.lo, p.hi);
  }
  p.ig = Shift::between(f[kIt] + f[kCct], f[kItCct]);
  p.fc = Shift::between(f[kFt] + f[kInput2], f[kFtC]);
  const int fm = std::max(f[kItCct], f[kFtC]);
  p.ig_to_sum = Shift::between(f[kItCct], fm);
  p.fc_to_sum = Shift::between(f[kFtC], fm);
  p.sum_to_cn = Shift::between(fm, f[kCNext]);
  p.c_temp = TableOp::make(true, f[kCNext], f[kCTemp], p.lo, p.hi);
  p.hn = Shift::between(f[kOt] + f[kCTemp], f[kHNext]);
  p.hn_to_h = Shift::between(f[kHNext], f[kInput1]);
  p.cn_to_c = Shift::between(f[kCNext], f[kInput2]);
  return p;
}

namespace {

// The two loops of a step as functions of their own, so that every array is a restrict-qualified
// parameter: the vectorizer trusts that for parameters (not for pointers derived inside a
// function from one buffer), and the many int32 stores into `codes` would otherwise need more
// alias checks than it emits. Each has its own AVX-512 / AVX2 clones.

// One gate: dense_h (requantized accumulator), the sum node and the gate node.
NNDCT_TARGET_CLONES void gate_loop(const StepPlan::Gate& q, int64_t lo, int64_t hi, int64_t H,
                                 const int32_t* NNDCT_RESTRICT ag, const double* NNDCT_RESTRICT hg,
                                 int32_t* NNDCT_RESTRICT cx, int32_t* NNDCT_RESTRICT ch,
                                 int32_t* NNDCT_RESTRICT cy, int32_t* NNDCT_RESTRICT cg) {
  const int bl = q.acc_to_b.left, br = q.acc_to_b.right, al = q.a_to_sum.left, ar = q.a_to_sum.right;
  const int sl = q.b_to_sum.left, sr = q.b_to_sum.right, yl = q.sum_to_y.left, yr = q.sum_to_y.right;
  const TableOp t = q.table;
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  for (int64_t j = 0; j < H; ++j) {
    const int64_t av = ag[j];
    const int64_t bv = clamped(shifted(static_cast<int64_t>(hg[j]), bl, br), lo, hi);
    const int64_t y = clamped(shifted(shifted(av, al, ar) + shifted(bv, sl, sr), yl, yr), lo, hi);
    cx[j] = static_cast<int32_t>(av);
    ch[j] = static_cast<int32_t>(bv);
    cy[j] = static_cast<int32_t>(y);
    cg[j] = static_cast<int32_t>(table_value(t.table, y, t.in_lo, t.in_hi, il, ir, t.high, t.low, ol, orr,
                                             t.out_lo, t.out_hi));
  }
}

// The cell state and output: it*cct, ft*c, c_next, c_temp, h_next, and the next state.
NNDCT_TARGET_CLONES void cell_loop(const StepPlan& plan, int64_t H, const int32_t* NNDCT_RESTRICT it,
                                 const int32_t* NNDCT_RESTRICT ft, const int32_t* NNDCT_RESTRICT cct,
                                 const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c_in2,
                                 int32_t* NNDCT_RESTRICT c_ig, int32_t* NNDCT_RESTRICT c_fc,
                                 int32_t* NNDCT_RESTRICT c_cn, int32_t* NNDCT_RESTRICT c_ct,
                                 int32_t* NNDCT_RESTRICT c_hn, double* NNDCT_RESTRICT h,
                                 int64_t* NNDCT_RESTRICT c, const int64_t* NNDCT_RESTRICT tanh_table) {
  const int64_t lo = plan.lo, hi = plan.hi;
  const int igl = plan.ig.left, igr = plan.ig.right, fcl = plan.fc.left, fcr = plan.fc.right;
  const int isl = plan.ig_to_sum.left, isr = plan.ig_to_sum.right;
  const int fsl = plan.fc_to_sum.left, fsr = plan.fc_to_sum.right;
  const int cnl = plan.sum_to_cn.left, cnr = plan.sum_to_cn.right;
  const int hnl = plan.hn.left, hnr = plan.hn.right;
  const int hhl = plan.hn_to_h.left, hhr = plan.hn_to_h.right, ccl = plan.cn_to_c.left, ccr = plan.cn_to_c.right;
  const TableOp t = plan.c_temp;
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  for (int64_t j = 0; j < H; ++j) {
    const int64_t cin = c[j];
    const int64_t ig = clamped(shifted(int64_t{it[j]} * cct[j], igl, igr), lo, hi);
    const int64_t fc = clamped(shifted(int64_t{ft[j]} * cin, fcl, fcr), lo, hi);
    const int64_t cn = clamped(shifted(shifted(ig, isl, isr) + shifted(fc, fsl, fsr), cnl, cnr), lo, hi);
    const int64_t ct = table_value(tanh_table, cn, t.in_lo, t.in_hi, il, ir, t.high, t.low, ol, orr, t.out_lo,
                                   t.out_hi);
    const int64_t hn = clamped(shifted(int64_t{ot[j]} * ct, hnl, hnr), lo, hi);
    c_in2[j] = static_cast<int32_t>(cin);
    c_ig[j] = static_cast<int32_t>(ig);
    c_fc[j] = static_cast<int32_t>(fc);
    c_cn[j] = static_cast<int32_t>(cn);
    c_ct[j] = static_cast<int32_t>(ct);
    c_hn[j] = static_cast<int32_t>(hn);
    // The next step reads h_next / c_next through input_1 / input_2 (Q at their positions).
    h[j] = static_cast<double>(clamped(shifted(hn, hhl, hhr), lo, hi));
    c[j] = clamped(shifted(cn, ccl, ccr), lo, hi);
  }
}

}  // namespace

DenseBiasPlan DenseBiasPlan::make(int f_acc, int fa, int f_bias) {
  const int fm = std::max(fa, f_bias);
  return {Shift::between(f_acc, fa), Shift::between(fa, fm), Shift::between(f_bias, fm), Shift::between(fm, fa)};
}

namespace {

NNDCT_TARGET_CLONES void dense_bias_loop(const DenseBiasPlan& p, int64_t lo, int64_t hi, int64_t n,
                                       const double* NNDCT_RESTRICT acc, const int32_t* NNDCT_RESTRICT bias,
                                       int32_t* NNDCT_RESTRICT dst) {
  const int cl = p.acc_to_a.left, cr = p.acc_to_a.right, al = p.a_to_sum.left, ar = p.a_to_sum.right;
  const int bl = p.b_to_sum.left, br = p.b_to_sum.right, sl = p.sum_to_a.left, sr = p.sum_to_a.right;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t prod = clamped(shifted(static_cast<int64_t>(acc[j]), cl, cr), lo, hi);
    const int64_t b = bias ? int64_t{bias[j]} : 0;
    dst[j] = static_cast<int32_t>(clamped(shifted(shifted(prod, al, ar) + shifted(b, bl, br), sl, sr), lo, hi));
  }
}

// Not restrict-qualified: calibration calls it in place (the compiler checks the overlap).
NNDCT_TARGET_CLONES void floor_codes_loop(const double* x, int64_t n, double amp, double lo, double hi,
                                        double out_scale, double* out) {
  for (int64_t i = 0; i < n; ++i) {
    double s = std::floor(x[i] * amp);
    s = s > lo ? s : lo;
    s = s > hi ? hi : s;
    out[i] = s * out_scale + 0.0;
  }
}

}  // namespace

void dense_bias_codes(const DenseBiasPlan& plan, int64_t lo, int64_t hi, int64_t n, const double* acc,
                      const int32_t* bias, int32_t* dst) {
  dense_bias_loop(plan, lo, hi, n, acc, bias, dst);
}

void floor_codes(const double* x, int64_t n, int fp, int64_t lo, int64_t hi, double out_scale, double* out) {
  floor_codes_loop(x, n, pow2(fp), static_cast<double>(lo), static_cast<double>(hi), out_scale, out);
}

void step_row(const StepPlan& plan, int64_t H, const int32_t* a, const double* acc_h, double* h, int64_t* c,
              int32_t* codes) {
  for (int g = 0; g < kNumGates; ++g)
    gate_loop(plan.gate[g], plan.lo, plan.hi, H, a + g * H, acc_h + g * H, codes + dense_x_node(g) * H,
              codes + dense_h_node(g) * H, codes + sum_node(g) * H, codes + gate_node(g) * H);
  int32_t* in1 = codes + kInput1 * H;
  for (int64_t j = 0; j < H; ++j) in1[j] = static_cast<int32_t>(h[j]);  // the state this step read
  cell_loop(plan, H, codes + kIt * H, codes + kFt * H, codes + kCct * H, codes + kOt * H, codes + kInput2 * H,
            codes + kItCct * H, codes + kFtC * H, codes + kCNext * H, codes + kCTemp * H, codes + kHNext * H,
            h, c, plan.c_temp.table);
}

}  // namespace lstm
}  // namespace nndct

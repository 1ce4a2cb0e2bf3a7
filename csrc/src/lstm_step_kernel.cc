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

// The tables as int64 or int32, so that a gather loads lanes of the width the loop computes in
// (the form the vectorizer handles).
template <typename T, const int16_t* (*Source)()>
const T* widened() {
  static const std::array<T, kTableSize> table = [] {
    std::array<T, kTableSize> t{};
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
  t.table = is_tanh ? widened<int64_t, tanh_table>() : widened<int64_t, sigmoid_table>();
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

namespace {
int max_bits(const CellFix& fix) {
  int m = fix.bit_width;
  for (int k = 0; k < kNumNodes; ++k) m = std::max(m, fix.bits(k));
  return m;
}
}  // namespace

StepPlan StepPlan::make(const CellFix& fix) {
  StepPlan p;
  const int* f = fix.node;
  p.lo = code_min(fix.bit_width);
  p.hi = code_max(fix.bit_width);
  for (int k = 0; k < kNumNodes; ++k) {
    p.node_lo[k] = code_min(fix.bits(k));
    p.node_hi[k] = code_max(fix.bits(k));
  }
  for (int g = 0; g < kNumGates; ++g) {
    const int fa = f[dense_x_node(g)], fb = f[dense_h_node(g)], fy = f[sum_node(g)];
    const int fm = std::max(fa, fb);
    Gate& q = p.gate[g];
    q.acc_to_b = Shift::between(f[kInput1] + fix.w_hh[g], fb);
    q.a_to_sum = Shift::between(fa, fm);
    q.b_to_sum = Shift::between(fb, fm);
    q.sum_to_y = Shift::between(fm, fy);
    q.table = TableOp::make(g == 2, fy, f[gate_node(g)], p.node_lo[gate_node(g)], p.node_hi[gate_node(g)]);
    q.b_lo = p.node_lo[dense_h_node(g)];
    q.b_hi = p.node_hi[dense_h_node(g)];
    q.y_lo = p.node_lo[sum_node(g)];
    q.y_hi = p.node_hi[sum_node(g)];
  }
  p.ig = Shift::between(f[kIt] + f[kCct], f[kItCct]);
  p.fc = Shift::between(f[kFt] + f[kInput2], f[kFtC]);
  const int fm = std::max(f[kItCct], f[kFtC]);
  p.ig_to_sum = Shift::between(f[kItCct], fm);
  p.fc_to_sum = Shift::between(f[kFtC], fm);
  p.sum_to_cn = Shift::between(fm, f[kCNext]);
  p.c_temp = TableOp::make(true, f[kCNext], f[kCTemp], p.node_lo[kCTemp], p.node_hi[kCTemp]);
  p.hn = Shift::between(f[kOt] + f[kCTemp], f[kHNext]);
  p.hn_to_h = Shift::between(f[kHNext], f[kInput1]);
  p.cn_to_c = Shift::between(f[kCNext], f[kInput2]);
  // A sum of two codes (< 2^15 each) shifted left by a, then by y: < 2^(16 + a + y) <= 2^30.
  auto sum_fits = [](Shift a, Shift b, Shift y) { return std::max(a.left, b.left) + y.left <= 14; };
  p.narrow = max_bits(fix) <= 16 && p.ig.left == 0 && p.fc.left == 0 && p.hn.left == 0 &&
             sum_fits(p.ig_to_sum, p.fc_to_sum, p.sum_to_cn) && p.hn_to_h.left <= 14 && p.cn_to_c.left <= 14;
  for (int g = 0; g < kNumGates; ++g)
    p.narrow = p.narrow && sum_fits(p.gate[g].a_to_sum, p.gate[g].b_to_sum, p.gate[g].sum_to_y);
  return p;
}

namespace {

// The loops of a step as functions of their own, so that every array is a restrict-qualified
// parameter: the vectorizer trusts that for parameters (not for pointers derived inside a
// function from one buffer), and the many int32 stores into the record would otherwise need
// more alias checks than it emits. Each has its own AVX-512 / AVX2 clones; the bodies are
// templates (record or not) inlined into non-template clones.

// One gate: dense_h (requantized accumulator), the sum node and the gate node. Without a
// record only the gate node is stored.
template <bool kRecord>
NNDCT_ALWAYS_INLINE void gate_body(const StepPlan::Gate& q, int64_t lo, int64_t hi, int64_t n,
                                   const int32_t* NNDCT_RESTRICT ag, const int64_t* NNDCT_RESTRICT hg,
                                   int32_t* NNDCT_RESTRICT cx, int32_t* NNDCT_RESTRICT ch,
                                   int32_t* NNDCT_RESTRICT cy, int32_t* NNDCT_RESTRICT cg) {
  const int bl = q.acc_to_b.left, br = q.acc_to_b.right, al = q.a_to_sum.left, ar = q.a_to_sum.right;
  const int sl = q.b_to_sum.left, sr = q.b_to_sum.right, yl = q.sum_to_y.left, yr = q.sum_to_y.right;
  const TableOp t = q.table;
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  const int64_t b_lo = q.b_lo, b_hi = q.b_hi, y_lo = q.y_lo, y_hi = q.y_hi;
  (void)lo;
  (void)hi;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t av = ag[j];
    const int64_t bv = clamped(shifted(hg[j], bl, br), b_lo, b_hi);
    const int64_t y = clamped(shifted(shifted(av, al, ar) + shifted(bv, sl, sr), yl, yr), y_lo, y_hi);
    if (kRecord) {
      cx[j] = static_cast<int32_t>(av);
      ch[j] = static_cast<int32_t>(bv);
      cy[j] = static_cast<int32_t>(y);
    }
    cg[j] = static_cast<int32_t>(table_value(t.table, y, t.in_lo, t.in_hi, il, ir, t.high, t.low, ol, orr,
                                             t.out_lo, t.out_hi));
  }
}

NNDCT_TARGET_CLONES void gate_loop_record(const StepPlan::Gate& q, int64_t lo, int64_t hi, int64_t n,
                                          const int32_t* NNDCT_RESTRICT ag, const int64_t* NNDCT_RESTRICT hg,
                                          int32_t* NNDCT_RESTRICT cx, int32_t* NNDCT_RESTRICT ch,
                                          int32_t* NNDCT_RESTRICT cy, int32_t* NNDCT_RESTRICT cg) {
  gate_body<true>(q, lo, hi, n, ag, hg, cx, ch, cy, cg);
}

NNDCT_TARGET_CLONES void gate_loop(const StepPlan::Gate& q, int64_t lo, int64_t hi, int64_t n,
                                   const int32_t* NNDCT_RESTRICT ag, const int64_t* NNDCT_RESTRICT hg,
                                   int32_t* NNDCT_RESTRICT cg) {
  gate_body<false>(q, lo, hi, n, ag, hg, nullptr, nullptr, nullptr, cg);
}

// The cell state and output: it*cct, ft*c, c_next, c_temp, h_next, and the next state.
template <bool kRecord, typename T>
NNDCT_ALWAYS_INLINE void cell_body(const StepPlan& plan, int64_t n, const int32_t* NNDCT_RESTRICT it,
                                   const int32_t* NNDCT_RESTRICT ft, const int32_t* NNDCT_RESTRICT cct,
                                   const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c,
                                   int16_t* NNDCT_RESTRICT h_next, T* NNDCT_RESTRICT out, double h_scale,
                                   int32_t* NNDCT_RESTRICT c_in2, int32_t* NNDCT_RESTRICT c_ig,
                                   int32_t* NNDCT_RESTRICT c_fc, int32_t* NNDCT_RESTRICT c_cn,
                                   int32_t* NNDCT_RESTRICT c_ct, int32_t* NNDCT_RESTRICT c_hn) {
  const int64_t* nl = plan.node_lo;
  const int64_t* nh = plan.node_hi;
  const int64_t ig_lo = nl[kItCct], ig_hi = nh[kItCct], fc_lo = nl[kFtC], fc_hi = nh[kFtC];
  const int64_t cn_lo = nl[kCNext], cn_hi = nh[kCNext], hn_lo = nl[kHNext], hn_hi = nh[kHNext];
  const int64_t h_lo = nl[kInput1], h_hi = nh[kInput1], c_lo = nl[kInput2], c_hi = nh[kInput2];
  const int igl = plan.ig.left, igr = plan.ig.right, fcl = plan.fc.left, fcr = plan.fc.right;
  const int isl = plan.ig_to_sum.left, isr = plan.ig_to_sum.right;
  const int fsl = plan.fc_to_sum.left, fsr = plan.fc_to_sum.right;
  const int cnl = plan.sum_to_cn.left, cnr = plan.sum_to_cn.right;
  const int hnl = plan.hn.left, hnr = plan.hn.right;
  const int hhl = plan.hn_to_h.left, hhr = plan.hn_to_h.right, ccl = plan.cn_to_c.left, ccr = plan.cn_to_c.right;
  const TableOp t = plan.c_temp;
  const int64_t* tanh_table = t.table;
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t cin = c[j];
    const int64_t ig = clamped(shifted(int64_t{it[j]} * cct[j], igl, igr), ig_lo, ig_hi);
    const int64_t fc = clamped(shifted(int64_t{ft[j]} * cin, fcl, fcr), fc_lo, fc_hi);
    const int64_t cn = clamped(shifted(shifted(ig, isl, isr) + shifted(fc, fsl, fsr), cnl, cnr), cn_lo, cn_hi);
    const int64_t ct = table_value(tanh_table, cn, t.in_lo, t.in_hi, il, ir, t.high, t.low, ol, orr, t.out_lo,
                                   t.out_hi);
    const int64_t hn = clamped(shifted(int64_t{ot[j]} * ct, hnl, hnr), hn_lo, hn_hi);
    if (kRecord) {
      c_in2[j] = static_cast<int32_t>(cin);
      c_ig[j] = static_cast<int32_t>(ig);
      c_fc[j] = static_cast<int32_t>(fc);
      c_cn[j] = static_cast<int32_t>(cn);
      c_ct[j] = static_cast<int32_t>(ct);
      c_hn[j] = static_cast<int32_t>(hn);
    }
    out[j] = static_cast<T>(static_cast<double>(hn) * h_scale);
    // The next step reads h_next / c_next through input_1 / input_2 (Q at their positions).
    h_next[j] = static_cast<int16_t>(clamped(shifted(hn, hhl, hhr), h_lo, h_hi));
    c[j] = static_cast<int32_t>(clamped(shifted(cn, ccl, ccr), c_lo, c_hi));
  }
}

#define NNDCT_CELL_LOOPS(T, SUFFIX)                                                                          \
  NNDCT_TARGET_CLONES void cell_loop_##SUFFIX(                                                               \
      const StepPlan& plan, int64_t n, const int32_t* NNDCT_RESTRICT it, const int32_t* NNDCT_RESTRICT ft,   \
      const int32_t* NNDCT_RESTRICT cct, const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c,        \
      int16_t* NNDCT_RESTRICT h_next, T* NNDCT_RESTRICT out, double h_scale) {                               \
    cell_body<false, T>(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, nullptr, nullptr, nullptr,      \
                        nullptr, nullptr, nullptr);                                                          \
  }                                                                                                          \
  NNDCT_TARGET_CLONES void cell_loop_record_##SUFFIX(                                                        \
      const StepPlan& plan, int64_t n, const int32_t* NNDCT_RESTRICT it, const int32_t* NNDCT_RESTRICT ft,   \
      const int32_t* NNDCT_RESTRICT cct, const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c,        \
      int16_t* NNDCT_RESTRICT h_next, T* NNDCT_RESTRICT out, double h_scale, int32_t* NNDCT_RESTRICT c_in2, \
      int32_t* NNDCT_RESTRICT c_ig, int32_t* NNDCT_RESTRICT c_fc, int32_t* NNDCT_RESTRICT c_cn,              \
      int32_t* NNDCT_RESTRICT c_ct, int32_t* NNDCT_RESTRICT c_hn) {                                         \
    cell_body<true, T>(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, c_in2, c_ig, c_fc, c_cn, c_ct,   \
                       c_hn);                                                                                \
  }
NNDCT_CELL_LOOPS(float, f32)
NNDCT_CELL_LOOPS(double, f64)
#undef NNDCT_CELL_LOOPS

inline void cell_loop(const StepPlan& plan, int64_t n, const int32_t* it, const int32_t* ft, const int32_t* cct,
                      const int32_t* ot, int32_t* c, int16_t* h_next, float* out, double h_scale) {
  cell_loop_f32(plan, n, it, ft, cct, ot, c, h_next, out, h_scale);
}
inline void cell_loop(const StepPlan& plan, int64_t n, const int32_t* it, const int32_t* ft, const int32_t* cct,
                      const int32_t* ot, int32_t* c, int16_t* h_next, double* out, double h_scale) {
  cell_loop_f64(plan, n, it, ft, cct, ot, c, h_next, out, h_scale);
}
inline void cell_loop_record(const StepPlan& plan, int64_t n, const int32_t* it, const int32_t* ft,
                             const int32_t* cct, const int32_t* ot, int32_t* c, int16_t* h_next, float* out,
                             double h_scale, int32_t* const* rec) {
  cell_loop_record_f32(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, rec[0], rec[1], rec[2], rec[3], rec[4],
                       rec[5]);
}
inline void cell_loop_record(const StepPlan& plan, int64_t n, const int32_t* it, const int32_t* ft,
                             const int32_t* cct, const int32_t* ot, int32_t* c, int16_t* h_next, double* out,
                             double h_scale, int32_t* const* rec) {
  cell_loop_record_f64(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, rec[0], rec[1], rec[2], rec[3], rec[4],
                       rec[5]);
}

// ---- 32-bit lanes (StepPlan::narrow): the same operations on int32, right shifts capped at 31
// (for |v| < 2^31 an arithmetic shift by 31 gives the floor that a shift by 63 gives on int64).

NNDCT_ALWAYS_INLINE int32_t shifted32(int32_t v, int left, int right) {
  return static_cast<int32_t>(static_cast<uint32_t>(v) << left) >> right;
}
NNDCT_ALWAYS_INLINE int32_t clamped32(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

struct Shift32 {
  int left, right;
  static Shift32 of(Shift s) { return {s.left, std::min(s.right, 31)}; }
};

// A TableOp's parameters in int32 (the table itself is passed separately, as int32).
struct Table32 {
  int32_t in_lo, in_hi, high, low, out_lo, out_hi;
  Shift32 index, out;
  static Table32 of(const TableOp& t) {
    auto narrow = [](int64_t v) {
      return static_cast<int32_t>(std::clamp<int64_t>(v, std::numeric_limits<int32_t>::min(),
                                                      std::numeric_limits<int32_t>::max()));
    };
    return {narrow(t.in_lo), narrow(t.in_hi), t.high, t.low, narrow(t.out_lo), narrow(t.out_hi),
            Shift32::of(t.index), Shift32::of(t.out)};
  }
};

NNDCT_ALWAYS_INLINE int32_t table32(const int32_t* NNDCT_RESTRICT table, int32_t y, int32_t in_lo, int32_t in_hi,
                                    int il, int ir, int32_t high, int32_t low, int ol, int orr, int32_t out_lo,
                                    int32_t out_hi) {
  const int32_t k = shifted32(clamped32(y, in_lo, in_hi), il, ir);
  int32_t v = table[clamped32(k, -1024, 1023) + 1024];
  v = k >= 1024 ? high : v;
  v = k < -1024 ? low : v;
  return clamped32(shifted32(v, ol, orr), out_lo, out_hi);
}

NNDCT_TARGET_CLONES void gate_loop32(const StepPlan::Gate& q, int64_t lo, int64_t hi, int64_t n,
                                     const int32_t* NNDCT_RESTRICT ag, const int64_t* NNDCT_RESTRICT hg,
                                     int32_t* NNDCT_RESTRICT cg, const int32_t* NNDCT_RESTRICT table) {
  const int bl = q.acc_to_b.left, br = q.acc_to_b.right;
  const Shift32 a = Shift32::of(q.a_to_sum), b = Shift32::of(q.b_to_sum), y = Shift32::of(q.sum_to_y);
  const Table32 t = Table32::of(q.table);
  (void)lo;
  (void)hi;
  const int64_t b_lo = q.b_lo, b_hi = q.b_hi;
  const int32_t lo32 = static_cast<int32_t>(q.y_lo), hi32 = static_cast<int32_t>(q.y_hi);
  for (int64_t j = 0; j < n; ++j) {
    const int32_t bv = static_cast<int32_t>(clamped(shifted(hg[j], bl, br), b_lo, b_hi));
    const int32_t s = shifted32(ag[j], a.left, a.right) + shifted32(bv, b.left, b.right);
    const int32_t yv = clamped32(shifted32(s, y.left, y.right), lo32, hi32);
    cg[j] = table32(table, yv, t.in_lo, t.in_hi, t.index.left, t.index.right, t.high, t.low, t.out.left,
                    t.out.right, t.out_lo, t.out_hi);
  }
}

template <typename T>
NNDCT_ALWAYS_INLINE void cell32_body(const StepPlan& plan, int64_t n, const int32_t* NNDCT_RESTRICT it,
                                     const int32_t* NNDCT_RESTRICT ft, const int32_t* NNDCT_RESTRICT cct,
                                     const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c,
                                     int16_t* NNDCT_RESTRICT h_next, T* NNDCT_RESTRICT out, double h_scale,
                                     const int32_t* NNDCT_RESTRICT tanh) {
  auto lo = [&](int k) { return static_cast<int32_t>(plan.node_lo[k]); };
  auto hi = [&](int k) { return static_cast<int32_t>(plan.node_hi[k]); };
  const int32_t ig_lo = lo(kItCct), ig_hi = hi(kItCct), fc_lo = lo(kFtC), fc_hi = hi(kFtC);
  const int32_t cn_lo = lo(kCNext), cn_hi = hi(kCNext), hn_lo = lo(kHNext), hn_hi = hi(kHNext);
  const int32_t h_lo = lo(kInput1), h_hi = hi(kInput1), c_lo = lo(kInput2), c_hi = hi(kInput2);
  const Shift32 ig = Shift32::of(plan.ig), fc = Shift32::of(plan.fc), hn = Shift32::of(plan.hn);
  const Shift32 is = Shift32::of(plan.ig_to_sum), fs = Shift32::of(plan.fc_to_sum), cs = Shift32::of(plan.sum_to_cn);
  const Shift32 hh = Shift32::of(plan.hn_to_h), cc = Shift32::of(plan.cn_to_c);
  const Table32 t = Table32::of(plan.c_temp);
  for (int64_t j = 0; j < n; ++j) {
    const int32_t cin = c[j];
    const int32_t igv = clamped32(it[j] * cct[j] >> ig.right, ig_lo, ig_hi);
    const int32_t fcv = clamped32(ft[j] * cin >> fc.right, fc_lo, fc_hi);
    const int32_t cn = clamped32(shifted32(shifted32(igv, is.left, is.right) + shifted32(fcv, fs.left, fs.right),
                                           cs.left, cs.right), cn_lo, cn_hi);
    const int32_t ct = table32(tanh, cn, t.in_lo, t.in_hi, t.index.left, t.index.right, t.high, t.low, t.out.left,
                               t.out.right, t.out_lo, t.out_hi);
    const int32_t hv = clamped32(ot[j] * ct >> hn.right, hn_lo, hn_hi);
    out[j] = static_cast<T>(static_cast<double>(hv) * h_scale);
    h_next[j] = static_cast<int16_t>(clamped32(shifted32(hv, hh.left, hh.right), h_lo, h_hi));
    c[j] = clamped32(shifted32(cn, cc.left, cc.right), c_lo, c_hi);
  }
}

NNDCT_TARGET_CLONES void cell_loop32_f32(const StepPlan& plan, int64_t n, const int32_t* NNDCT_RESTRICT it,
                                         const int32_t* NNDCT_RESTRICT ft, const int32_t* NNDCT_RESTRICT cct,
                                         const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c,
                                         int16_t* NNDCT_RESTRICT h_next, float* NNDCT_RESTRICT out, double h_scale,
                                         const int32_t* NNDCT_RESTRICT tanh) {
  cell32_body(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, tanh);
}
NNDCT_TARGET_CLONES void cell_loop32_f64(const StepPlan& plan, int64_t n, const int32_t* NNDCT_RESTRICT it,
                                         const int32_t* NNDCT_RESTRICT ft, const int32_t* NNDCT_RESTRICT cct,
                                         const int32_t* NNDCT_RESTRICT ot, int32_t* NNDCT_RESTRICT c,
                                         int16_t* NNDCT_RESTRICT h_next, double* NNDCT_RESTRICT out, double h_scale,
                                         const int32_t* NNDCT_RESTRICT tanh) {
  cell32_body(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, tanh);
}
inline void cell_loop32(const StepPlan& plan, int64_t n, const int32_t* it, const int32_t* ft, const int32_t* cct,
                        const int32_t* ot, int32_t* c, int16_t* h_next, float* out, double h_scale,
                        const int32_t* tanh) {
  cell_loop32_f32(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, tanh);
}
inline void cell_loop32(const StepPlan& plan, int64_t n, const int32_t* it, const int32_t* ft, const int32_t* cct,
                        const int32_t* ot, int32_t* c, int16_t* h_next, double* out, double h_scale,
                        const int32_t* tanh) {
  cell_loop32_f64(plan, n, it, ft, cct, ot, c, h_next, out, h_scale, tanh);
}

}  // namespace

DenseBiasPlan DenseBiasPlan::make(int f_acc, int fa, int f_bias) {
  const int fm = std::max(fa, f_bias);
  DenseBiasPlan p{Shift::between(f_acc, fa), Shift::between(fa, fm), Shift::between(f_bias, fm), Shift::between(fm, fa)};
  p.narrow = std::max(p.a_to_sum.left, p.b_to_sum.left) + p.sum_to_a.left <= 14;
  return p;
}

namespace {

NNDCT_TARGET_CLONES void dense_bias_loop(const DenseBiasPlan& p, int64_t lo, int64_t hi, int64_t n,
                                         const int64_t* NNDCT_RESTRICT acc, const int32_t* NNDCT_RESTRICT bias,
                                         int32_t* NNDCT_RESTRICT dst) {
  const int cl = p.acc_to_a.left, cr = p.acc_to_a.right, al = p.a_to_sum.left, ar = p.a_to_sum.right;
  const int bl = p.b_to_sum.left, br = p.b_to_sum.right, sl = p.sum_to_a.left, sr = p.sum_to_a.right;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t prod = clamped(shifted(acc[j], cl, cr), lo, hi);
    const int64_t b = bias ? int64_t{bias[j]} : 0;
    dst[j] = static_cast<int32_t>(clamped(shifted(shifted(prod, al, ar) + shifted(b, bl, br), sl, sr), lo, hi));
  }
}

NNDCT_TARGET_CLONES void dense_bias_loop32(const DenseBiasPlan& p, int64_t lo, int64_t hi, int64_t n,
                                           const int64_t* NNDCT_RESTRICT acc, const int32_t* NNDCT_RESTRICT bias,
                                           int32_t* NNDCT_RESTRICT dst) {
  const int cl = p.acc_to_a.left, cr = p.acc_to_a.right;
  const Shift32 a = Shift32::of(p.a_to_sum), b = Shift32::of(p.b_to_sum), s = Shift32::of(p.sum_to_a);
  const int32_t lo32 = static_cast<int32_t>(lo), hi32 = static_cast<int32_t>(hi);
  for (int64_t j = 0; j < n; ++j) {
    const int32_t prod = static_cast<int32_t>(clamped(shifted(acc[j], cl, cr), lo, hi));
    const int32_t sum = shifted32(prod, a.left, a.right) + shifted32(bias[j], b.left, b.right);
    dst[j] = clamped32(shifted32(sum, s.left, s.right), lo32, hi32);
  }
}

template <typename T>
NNDCT_ALWAYS_INLINE void floor_codes16_body(const T* NNDCT_RESTRICT x, int64_t n, double amp, double lo, double hi,
                                            int16_t* NNDCT_RESTRICT out) {
  for (int64_t i = 0; i < n; ++i) {
    double s = std::floor(static_cast<double>(x[i]) * amp);
    s = s > lo ? s : lo;
    s = s > hi ? hi : s;
    out[i] = static_cast<int16_t>(static_cast<int32_t>(s));
  }
}
NNDCT_TARGET_CLONES void floor_codes16_f64(const double* NNDCT_RESTRICT x, int64_t n, double amp, double lo,
                                           double hi, int16_t* NNDCT_RESTRICT out) {
  floor_codes16_body(x, n, amp, lo, hi, out);
}
NNDCT_TARGET_CLONES void floor_codes16_f32(const float* NNDCT_RESTRICT x, int64_t n, double amp, double lo,
                                           double hi, int16_t* NNDCT_RESTRICT out) {
  floor_codes16_body(x, n, amp, lo, hi, out);
}

}  // namespace

void dense_bias_codes(const DenseBiasPlan& plan, int64_t lo, int64_t hi, int64_t n, const int64_t* acc,
                      const int32_t* bias, int32_t* dst) {
  if (plan.narrow && bias) {
    dense_bias_loop32(plan, lo, hi, n, acc, bias, dst);
  } else {
    dense_bias_loop(plan, lo, hi, n, acc, bias, dst);
  }
}

template <>
void floor_codes16<double>(const double* x, int64_t n, int fp, int64_t lo, int64_t hi, int16_t* out) {
  floor_codes16_f64(x, n, pow2(fp), static_cast<double>(lo), static_cast<double>(hi), out);
}
template <>
void floor_codes16<float>(const float* x, int64_t n, int fp, int64_t lo, int64_t hi, int16_t* out) {
  floor_codes16_f32(x, n, pow2(fp), static_cast<double>(lo), static_cast<double>(hi), out);
}

template <typename T>
void step_units(const StepPlan& plan, int64_t n, int64_t gate_stride, int64_t code_stride, const StepRow& row,
                T* out, double h_scale) {
  if (!row.codes) {
    int32_t* g[kNumGates];
    for (int k = 0; k < kNumGates; ++k) g[k] = row.gates + k * gate_stride;
    for (int k = 0; k < kNumGates; ++k)
      gate_loop(plan.gate[k], plan.lo, plan.hi, n, row.a + k * gate_stride, row.acc + k * gate_stride, g[k]);
    cell_loop(plan, n, g[0], g[1], g[2], g[3], row.c, row.h_next, out, h_scale);
    return;
  }
  int32_t* codes = row.codes;
  auto node = [&](int k) { return codes + k * code_stride; };
  for (int k = 0; k < kNumGates; ++k)
    gate_loop_record(plan.gate[k], plan.lo, plan.hi, n, row.a + k * gate_stride, row.acc + k * gate_stride,
                     node(dense_x_node(k)), node(dense_h_node(k)), node(sum_node(k)), node(gate_node(k)));
  int32_t* in1 = node(kInput1);
  for (int64_t j = 0; j < n; ++j) in1[j] = row.h[j];  // the state this step read
  int32_t* rec[6] = {node(kInput2), node(kItCct), node(kFtC), node(kCNext), node(kCTemp), node(kHNext)};
  cell_loop_record(plan, n, node(kIt), node(kFt), node(kCct), node(kOt), row.c, row.h_next, out, h_scale, rec);
}
template <typename T>
void step_rows(const StepPlan& plan, int64_t n, int64_t gate_stride, const StepRow* rows, T* const* outs, int64_t m,
               double h_scale) {
  if (!plan.narrow) {
    for (int64_t k = 0; k < m; ++k) step_units<T>(plan, n, gate_stride, 0, rows[k], outs[k], h_scale);
    return;
  }
  const int32_t* sigmoid = widened<int32_t, sigmoid_table>();
  const int32_t* tanh = widened<int32_t, tanh_table>();
  const int32_t* tables[kNumGates] = {sigmoid, sigmoid, tanh, sigmoid};
  for (int64_t k = 0; k < m; ++k) {
    const StepRow& r = rows[k];
    int32_t* g[kNumGates];
    for (int q = 0; q < kNumGates; ++q) {
      g[q] = r.gates + q * gate_stride;
      gate_loop32(plan.gate[q], plan.lo, plan.hi, n, r.a + q * gate_stride, r.acc + q * gate_stride, g[q], tables[q]);
    }
    cell_loop32(plan, n, g[0], g[1], g[2], g[3], r.c, r.h_next, outs[k], h_scale, tanh);
  }
}
template void step_rows<float>(const StepPlan&, int64_t, int64_t, const StepRow*, float* const*, int64_t, double);
template void step_rows<double>(const StepPlan&, int64_t, int64_t, const StepRow*, double* const*, int64_t, double);

template void step_units<float>(const StepPlan&, int64_t, int64_t, int64_t, const StepRow&, float*, double);
template void step_units<double>(const StepPlan&, int64_t, int64_t, int64_t, const StepRow&, double*, double);

}  // namespace lstm
}  // namespace nndct

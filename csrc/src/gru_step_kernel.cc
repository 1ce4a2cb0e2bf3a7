// The vectorizable time step of the integer GRU cell (see gru_step_kernel.h).
//
// The two loops of a step are written once, as templates on the lane type (int64_t, or int32_t
// when StepPlan::narrow proves every intermediate fits), the variant and whether the row records
// its node codes, and instantiated into functions with AVX-512 / AVX2 clones whose arrays are
// restrict-qualified parameters (what the vectorizer needs, see lstm_step_kernel.cc).
#include "nndct/gru_step_kernel.h"

#include <algorithm>
#include <array>
#include <limits>
#include <type_traits>
#include <utility>

#include "nndct/fix_point.h"
#include "nndct/simd.h"
#include "nndct/tables.h"

namespace nndct {
namespace gru {

StepPlan StepPlan::make(Variant variant, const CellFix& fix) {
  StepPlan p;
  const int* f = fix.node;
  p.variant = variant;
  p.lo = code_min(fix.bit_width);
  p.hi = code_max(fix.bit_width);
  int widest = fix.bit_width;
  for (int k = 0; k < kNumNodes; ++k) {
    p.node_lo[k] = code_min(fix.bits(k));
    p.node_hi[k] = code_max(fix.bits(k));
    widest = std::max(widest, fix.bits(k));
  }
  const bool after = variant == Variant::kResetAfter;
  for (int g = 0; g < kNumGates; ++g) {
    const int dense = dense_h_node(variant, g);
    if (after || g < 2) {
      p.dense_h[g] = DenseBiasPlan::make(f[kInput1] + fix.w_hh[g], f[dense], after ? fix.b_hh[g] : f[dense]);
    } else {  // W_hn (r * h): the sum of node 11's codes, no bias
      p.dense_h[g] = DenseBiasPlan::make(f[11] + fix.w_hh[g], f[dense], f[dense]);
    }
    const int fa = f[dense_x_node(g)], fb = f[g < 2 ? dense : 12], fy = f[sum_node(g)];
    const int fm = std::max(fa, fb);
    Gate& q = p.gate[g];
    q.a_to_sum = Shift::between(fa, fm);
    q.b_to_sum = Shift::between(fb, fm);
    q.sum_to_y = Shift::between(fm, fy);
    const int table = g == 2 ? kN : kR + g;
    q.table = TableOp::make(g == 2, fy, f[table], p.node_lo[table], p.node_hi[table]);
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
  // A sum or difference of two codes (< 2^15 each) shifted left by a, then by y: < 2^(16 + a + y)
  // <= 2^30; products of two codes (< 2^31) shifted right only.
  auto sum_fits = [](Shift a, Shift b, Shift y) { return std::max(a.left, b.left) + y.left <= 14; };
  p.narrow = widest <= 16 && p.reset.left == 0 && p.zn.left == 0 && p.zh.left == 0 &&
             sum_fits(p.n_to_sub, p.zn_to_sub, p.sub_to_d) && sum_fits(p.d_to_sum, p.zh_to_sum, p.sum_to_hn) &&
             p.hn_to_h.left <= 14;
  for (int g = 0; g < kNumGates; ++g)
    p.narrow = p.narrow && p.dense_h[g].narrow && sum_fits(p.gate[g].a_to_sum, p.gate[g].b_to_sum, p.gate[g].sum_to_y);
  return p;
}

namespace {

// ---- the operations in lane type V (int64_t or int32_t). In 32-bit lanes right shifts are
// capped at 31: for |v| < 2^31 an arithmetic shift by 31 gives the floor a shift by 63 gives.

struct S {
  int l, r;
};
template <typename V>
S lane(Shift s) {
  return {s.left, sizeof(V) == 4 ? std::min(s.right, 31) : s.right};
}
template <typename V>
NNDCT_ALWAYS_INLINE V sh(V v, S s) {
  using U = std::make_unsigned_t<V>;
  return static_cast<V>(static_cast<U>(v) << s.l) >> s.r;
}
template <typename V>
NNDCT_ALWAYS_INLINE V cl(V v, V lo, V hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}
template <typename V>
V narrowed(int64_t v) {
  return static_cast<V>(std::clamp<int64_t>(v, std::numeric_limits<V>::min(), std::numeric_limits<V>::max()));
}

// The sigmoid / tanh tables widened to the lane type (a gather loads lanes of that width).
template <typename V, const int16_t* (*Source)()>
const V* widened() {
  static const std::array<V, kTableSize> table = [] {
    std::array<V, kTableSize> t{};
    std::copy(Source(), Source() + kTableSize, t.begin());
    return t;
  }();
  return table.data();
}

template <typename V>
struct TableV {
  const V* table;
  V in_lo, in_hi, high, low, out_lo, out_hi;
  S index, out;
  static TableV of(const TableOp& t, bool is_tanh) {
    return {is_tanh ? widened<V, tanh_table>() : widened<V, sigmoid_table>(),
            narrowed<V>(t.in_lo), narrowed<V>(t.in_hi), static_cast<V>(t.high), static_cast<V>(t.low),
            narrowed<V>(t.out_lo), narrowed<V>(t.out_hi), lane<V>(t.index), lane<V>(t.out)};
  }
};
// lstm::table_value in lane type V.
template <typename V>
NNDCT_ALWAYS_INLINE V lookup(const TableV<V>& t, V y) {
  const V k = sh(cl(y, t.in_lo, t.in_hi), t.index);
  V v = t.table[cl<V>(k, -1024, 1023) + 1024];
  v = k >= 1024 ? t.high : v;
  v = k < -1024 ? t.low : v;
  return cl(sh(v, t.out), t.out_lo, t.out_hi);
}

// A dense-with-bias node from an exact int64 sum (lstm::dense_bias_codes).
template <typename V>
struct DenseV {
  int acc_l, acc_r;
  S a, b, s;
  static DenseV of(const DenseBiasPlan& p) {
    return {p.acc_to_a.left, p.acc_to_a.right, lane<V>(p.a_to_sum), lane<V>(p.b_to_sum), lane<V>(p.sum_to_a)};
  }
};
template <typename V>
NNDCT_ALWAYS_INLINE V dense(const DenseV<V>& d, int64_t lo, int64_t hi, int64_t acc, V bias) {
  const V prod = static_cast<V>(lstm::clamped(lstm::shifted(acc, d.acc_l, d.acc_r), lo, hi));
  return cl<V>(sh<V>(sh(prod, d.a) + sh(bias, d.b), d.s), static_cast<V>(lo), static_cast<V>(hi));
}

// A plan's gate: a + b -> y -> table.
template <typename V>
struct GateV {
  DenseV<V> dense_h;
  S a, b, y;
  TableV<V> table;
};

// The whole plan in lane type V, copied into the loops' locals.
template <typename V>
struct Lanes {
  V lo[kNumNodes], hi[kNumNodes];          // node k's code range (mixed widths)
  int64_t lo64[kNumNodes], hi64[kNumNodes];
  GateV<V> gate[kNumGates];
  S reset, zn, n_sub, zn_sub, sub_d, zh, d_sum, zh_sum, sum_hn, hn_h;
  static Lanes of(const StepPlan& p) {
    Lanes L;
    for (int k = 0; k < kNumNodes; ++k) {
      L.lo[k] = static_cast<V>(p.node_lo[k]);
      L.hi[k] = static_cast<V>(p.node_hi[k]);
      L.lo64[k] = p.node_lo[k];
      L.hi64[k] = p.node_hi[k];
    }
    for (int g = 0; g < kNumGates; ++g) {
      const StepPlan::Gate& q = p.gate[g];
      L.gate[g] = {DenseV<V>::of(p.dense_h[g]), lane<V>(q.a_to_sum), lane<V>(q.b_to_sum), lane<V>(q.sum_to_y),
                   TableV<V>::of(q.table, g == 2)};
    }
    L.reset = lane<V>(p.reset);
    L.zn = lane<V>(p.zn);
    L.n_sub = lane<V>(p.n_to_sub);
    L.zn_sub = lane<V>(p.zn_to_sub);
    L.sub_d = lane<V>(p.sub_to_d);
    L.zh = lane<V>(p.zh);
    L.d_sum = lane<V>(p.d_to_sum);
    L.zh_sum = lane<V>(p.zh_to_sum);
    L.sum_hn = lane<V>(p.sum_to_hn);
    L.hn_h = lane<V>(p.hn_to_h);
    return L;
  }
};

// y = Q(a + b) and its table node.
template <typename V>
NNDCT_ALWAYS_INLINE V gate_sum(const GateV<V>& g, V lo, V hi, V a, V b) {
  return cl<V>(sh<V>(sh(a, g.a) + sh(b, g.b), g.y), lo, hi);
}

// ---- loop 1: dense_h, y and the gate node of r and z (+ reset-before: node 11 = r * h).
// rec: nullptr, or the node rows 2..11 (index = node).
template <typename V, bool kAfter, bool kRecord>
NNDCT_ALWAYS_INLINE void gates_body(const Lanes<V>& L, int64_t n, const int32_t* NNDCT_RESTRICT a_r,
                                    const int32_t* NNDCT_RESTRICT a_z, const int64_t* NNDCT_RESTRICT acc_r,
                                    const int64_t* NNDCT_RESTRICT acc_z, const int32_t* NNDCT_RESTRICT b_r,
                                    const int32_t* NNDCT_RESTRICT b_z, const int16_t* NNDCT_RESTRICT h,
                                    int32_t* NNDCT_RESTRICT g_r, int32_t* NNDCT_RESTRICT g_z,
                                    int16_t* NNDCT_RESTRICT rh, int32_t* const* rec) {
  // Each node clamps to its own range (node indices as in gru_cell.h; the same for both variants
  // but for 11 and 12, whose roles the variant swaps).
  const int64_t br_lo = L.lo64[3], br_hi = L.hi64[3], bz_lo = L.lo64[6], bz_hi = L.hi64[6];
  const V yr_lo = L.lo[kYr], yr_hi = L.hi[kYr], yz_lo = L.lo[kYz], yz_hi = L.hi[kYz];
  const V rh_lo = L.lo[11], rh_hi = L.hi[11];
  for (int64_t j = 0; j < n; ++j) {
    const V ar = static_cast<V>(a_r[j]), az = static_cast<V>(a_z[j]);
    const V br = dense<V>(L.gate[0].dense_h, br_lo, br_hi, acc_r[j], static_cast<V>(b_r[j]));
    const V bz = dense<V>(L.gate[1].dense_h, bz_lo, bz_hi, acc_z[j], static_cast<V>(b_z[j]));
    const V yr = gate_sum(L.gate[0], yr_lo, yr_hi, ar, br);
    const V yz = gate_sum(L.gate[1], yz_lo, yz_hi, az, bz);
    const V r = lookup(L.gate[0].table, yr);
    const V z = lookup(L.gate[1].table, yz);
    g_r[j] = static_cast<int32_t>(r);
    g_z[j] = static_cast<int32_t>(z);
    V p = 0;
    if (!kAfter) {
      p = cl<V>(sh<V>(r * static_cast<V>(h[j]), L.reset), rh_lo, rh_hi);
      rh[j] = static_cast<int16_t>(p);
    }
    if (kRecord) {
      const V v[] = {ar, br, yr, az, bz, yz, r, z};
      for (int k = 0; k < 8; ++k) rec[2 + k][j] = static_cast<int32_t>(v[k]);
      if (!kAfter) rec[11][j] = static_cast<int32_t>(p);
    }
  }
}

// ---- loop 2: the candidate's recurrent node(s), y_g, cct, ft*cct, cct-ft*cct, ft*input_1,
// h_next, the output and the next state. rec: nullptr, or the node rows 1..18 (index = node).
template <typename V, bool kAfter, bool kRecord, typename T>
NNDCT_ALWAYS_INLINE void candidate_body(const Lanes<V>& L, int64_t n, const int32_t* NNDCT_RESTRICT a_n,
                                        const int64_t* NNDCT_RESTRICT acc_n, const int32_t* NNDCT_RESTRICT b_n,
                                        const int16_t* NNDCT_RESTRICT h, const int32_t* NNDCT_RESTRICT g_r,
                                        const int32_t* NNDCT_RESTRICT g_z, int16_t* NNDCT_RESTRICT h_next,
                                        T* NNDCT_RESTRICT out, double h_scale, int32_t* const* rec) {
  const GateV<V>& G = L.gate[2];
  const int64_t n11_lo = L.lo64[11], n11_hi = L.hi64[11], n12_lo = L.lo64[12], n12_hi = L.hi64[12];
  const V p_lo = L.lo[12], p_hi = L.hi[12], yn_lo = L.lo[kYn], yn_hi = L.hi[kYn];
  const V zn_lo = L.lo[kZN], zn_hi = L.hi[kZN], d_lo = L.lo[kNMinusZN], d_hi = L.hi[kNMinusZN];
  const V zh_lo = L.lo[kZH], zh_hi = L.hi[kZH], hn_lo = L.lo[kHNext], hn_hi = L.hi[kHNext];
  const V h_lo = L.lo[kInput1], h_hi = L.hi[kInput1];
  for (int64_t j = 0; j < n; ++j) {
    V n11 = 0, p;
    if (kAfter) {
      n11 = dense<V>(G.dense_h, n11_lo, n11_hi, acc_n[j], static_cast<V>(b_n[j]));
      p = cl<V>(sh<V>(static_cast<V>(g_r[j]) * n11, L.reset), p_lo, p_hi);
    } else {
      p = dense<V>(G.dense_h, n12_lo, n12_hi, acc_n[j], V(0));
    }
    const V an = static_cast<V>(a_n[j]);
    const V yn = gate_sum(G, yn_lo, yn_hi, an, p);
    const V nt = lookup(G.table, yn);
    const V zv = static_cast<V>(g_z[j]), hv = static_cast<V>(h[j]);
    const V zn = cl<V>(sh<V>(zv * nt, L.zn), zn_lo, zn_hi);
    const V d = cl<V>(sh<V>(sh(nt, L.n_sub) - sh(zn, L.zn_sub), L.sub_d), d_lo, d_hi);
    const V zh = cl<V>(sh<V>(zv * hv, L.zh), zh_lo, zh_hi);
    const V hn = cl<V>(sh<V>(sh(d, L.d_sum) + sh(zh, L.zh_sum), L.sum_hn), hn_lo, hn_hi);
    out[j] = static_cast<T>(static_cast<double>(hn) * h_scale);
    h_next[j] = static_cast<int16_t>(cl<V>(sh(hn, L.hn_h), h_lo, h_hi));
    if (kRecord) {
      rec[1][j] = static_cast<int32_t>(hv);
      if (kAfter) rec[11][j] = static_cast<int32_t>(n11);
      rec[10][j] = static_cast<int32_t>(an);
      const V v[] = {p, yn, nt, zn, d, zh, hn};
      for (int k = 0; k < 7; ++k) rec[12 + k][j] = static_cast<int32_t>(v[k]);
    }
  }
}

#define NNDCT_GATES_LOOP(V, AFTER, NAME)                                                                      \
  NNDCT_TARGET_CLONES void NAME(const Lanes<V>& L, int64_t n, const int32_t* NNDCT_RESTRICT a_r,             \
                                const int32_t* NNDCT_RESTRICT a_z, const int64_t* NNDCT_RESTRICT acc_r,     \
                                const int64_t* NNDCT_RESTRICT acc_z, const int32_t* NNDCT_RESTRICT b_r,     \
                                const int32_t* NNDCT_RESTRICT b_z, const int16_t* NNDCT_RESTRICT h,         \
                                int32_t* NNDCT_RESTRICT g_r, int32_t* NNDCT_RESTRICT g_z,                   \
                                int16_t* NNDCT_RESTRICT rh) {                                                \
    const Lanes<V> P = L;                                                                                    \
    gates_body<V, AFTER, false>(P, n, a_r, a_z, acc_r, acc_z, b_r, b_z, h, g_r, g_z, rh, nullptr);          \
  }
NNDCT_GATES_LOOP(int64_t, true, gates_after64)
NNDCT_GATES_LOOP(int64_t, false, gates_before64)
NNDCT_GATES_LOOP(int32_t, true, gates_after32)
NNDCT_GATES_LOOP(int32_t, false, gates_before32)
#undef NNDCT_GATES_LOOP

#define NNDCT_CANDIDATE_LOOP(V, AFTER, T, NAME)                                                               \
  NNDCT_TARGET_CLONES void NAME(const Lanes<V>& L, int64_t n, const int32_t* NNDCT_RESTRICT a_n,             \
                                const int64_t* NNDCT_RESTRICT acc_n, const int32_t* NNDCT_RESTRICT b_n,     \
                                const int16_t* NNDCT_RESTRICT h, const int32_t* NNDCT_RESTRICT g_r,         \
                                const int32_t* NNDCT_RESTRICT g_z, int16_t* NNDCT_RESTRICT h_next,          \
                                T* NNDCT_RESTRICT out, double h_scale) {                                     \
    const Lanes<V> P = L;                                                                                    \
    candidate_body<V, AFTER, false, T>(P, n, a_n, acc_n, b_n, h, g_r, g_z, h_next, out, h_scale, nullptr);  \
  }
NNDCT_CANDIDATE_LOOP(int64_t, true, float, cand_after64_f32)
NNDCT_CANDIDATE_LOOP(int64_t, true, double, cand_after64_f64)
NNDCT_CANDIDATE_LOOP(int64_t, false, float, cand_before64_f32)
NNDCT_CANDIDATE_LOOP(int64_t, false, double, cand_before64_f64)
NNDCT_CANDIDATE_LOOP(int32_t, true, float, cand_after32_f32)
NNDCT_CANDIDATE_LOOP(int32_t, true, double, cand_after32_f64)
NNDCT_CANDIDATE_LOOP(int32_t, false, float, cand_before32_f32)
NNDCT_CANDIDATE_LOOP(int32_t, false, double, cand_before32_f64)
#undef NNDCT_CANDIDATE_LOOP

// The loops above by lane type (and output type), for the row loops below.
#define NNDCT_DISPATCH(NAME, AFTER_FN, BEFORE_FN)      \
  template <typename... A>                             \
  void NAME(bool after, A&&... a) {                    \
    if (after) {                                       \
      AFTER_FN(std::forward<A>(a)...);                 \
    } else {                                           \
      BEFORE_FN(std::forward<A>(a)...);                \
    }                                                  \
  }
NNDCT_DISPATCH(gates64, gates_after64, gates_before64)
NNDCT_DISPATCH(gates32, gates_after32, gates_before32)
NNDCT_DISPATCH(cand64_f32, cand_after64_f32, cand_before64_f32)
NNDCT_DISPATCH(cand64_f64, cand_after64_f64, cand_before64_f64)
NNDCT_DISPATCH(cand32_f32, cand_after32_f32, cand_before32_f32)
NNDCT_DISPATCH(cand32_f64, cand_after32_f64, cand_before32_f64)
#undef NNDCT_DISPATCH

template <typename V, typename... A>
void gates_loop(bool after, A&&... a) {
  if constexpr (sizeof(V) == 8) {
    gates64(after, std::forward<A>(a)...);
  } else {
    gates32(after, std::forward<A>(a)...);
  }
}
template <typename V, typename T, typename... A>
void candidate_loop(bool after, A&&... a) {
  if constexpr (sizeof(V) == 8 && sizeof(T) == 4) {
    cand64_f32(after, std::forward<A>(a)...);
  } else if constexpr (sizeof(V) == 8) {
    cand64_f64(after, std::forward<A>(a)...);
  } else if constexpr (sizeof(T) == 4) {
    cand32_f32(after, std::forward<A>(a)...);
  } else {
    cand32_f64(after, std::forward<A>(a)...);
  }
}

// The node rows of a recording row (index = node; node 0 unused).
void record_rows(const StepRow& row, int64_t code_stride, int32_t* rec[kNumNodes]) {
  for (int k = 0; k < kNumNodes; ++k) rec[k] = row.codes + k * code_stride;
}

template <typename V>
void gate_rows_in(const StepPlan& plan, int64_t n, int64_t gs, const StepRow* rows, int64_t m) {
  const Lanes<V> L = Lanes<V>::of(plan);
  const bool after = plan.variant == Variant::kResetAfter;
  for (int64_t k = 0; k < m; ++k) {
    const StepRow& r = rows[k];
    gates_loop<V>(after, L, n, r.a, r.a + gs, r.acc, r.acc + gs, r.b_hh, r.b_hh + gs, r.h, r.gates, r.gates + gs,
                  r.rh);
  }
}

}  // namespace

void gate_rows(const StepPlan& plan, int64_t n, int64_t gs, int64_t code_stride, const StepRow* rows, int64_t m) {
  const bool after = plan.variant == Variant::kResetAfter;
  int64_t k0 = 0;
  while (k0 < m) {
    if (rows[k0].codes) {  // a recording row: every node, in 64-bit lanes
      const StepRow& r = rows[k0];
      int32_t* rec[kNumNodes];
      record_rows(r, code_stride, rec);
      const Lanes<int64_t> L = Lanes<int64_t>::of(plan);
      (after ? gates_body<int64_t, true, true> : gates_body<int64_t, false, true>)(
          L, n, r.a, r.a + gs, r.acc, r.acc + gs, r.b_hh, r.b_hh + gs, r.h, r.gates, r.gates + gs, r.rh, rec);
      ++k0;
      continue;
    }
    int64_t k1 = k0;
    while (k1 < m && !rows[k1].codes) ++k1;
    if (plan.narrow) {
      gate_rows_in<int32_t>(plan, n, gs, rows + k0, k1 - k0);
    } else {
      gate_rows_in<int64_t>(plan, n, gs, rows + k0, k1 - k0);
    }
    k0 = k1;
  }
}

namespace {

template <typename V, typename T>
void candidate_rows_in(const StepPlan& plan, int64_t n, int64_t gs, const StepRow* rows, T* const* outs, int64_t m,
                       double h_scale) {
  const Lanes<V> L = Lanes<V>::of(plan);
  const bool after = plan.variant == Variant::kResetAfter;
  for (int64_t k = 0; k < m; ++k) {
    const StepRow& r = rows[k];
    candidate_loop<V, T>(after, L, n, r.a + 2 * gs, r.acc + 2 * gs, r.b_hh + 2 * gs, r.h, r.gates, r.gates + gs, r.h_next, outs[k], h_scale);
  }
}

}  // namespace

template <typename T>
void candidate_rows(const StepPlan& plan, int64_t n, int64_t gs, int64_t code_stride, const StepRow* rows,
                    T* const* outs, int64_t m, double h_scale) {
  const bool after = plan.variant == Variant::kResetAfter;
  int64_t k0 = 0;
  while (k0 < m) {
    if (rows[k0].codes) {
      const StepRow& r = rows[k0];
      int32_t* rec[kNumNodes];
      record_rows(r, code_stride, rec);
      const Lanes<int64_t> L = Lanes<int64_t>::of(plan);
      (after ? candidate_body<int64_t, true, true, T> : candidate_body<int64_t, false, true, T>)(
          L, n, r.a + 2 * gs, r.acc + 2 * gs, r.b_hh + 2 * gs, r.h, r.gates, r.gates + gs, r.h_next, outs[k0],
          h_scale, rec);
      ++k0;
      continue;
    }
    int64_t k1 = k0;
    while (k1 < m && !rows[k1].codes) ++k1;
    if (plan.narrow) {
      candidate_rows_in<int32_t, T>(plan, n, gs, rows + k0, outs + k0, k1 - k0, h_scale);
    } else {
      candidate_rows_in<int64_t, T>(plan, n, gs, rows + k0, outs + k0, k1 - k0, h_scale);
    }
    k0 = k1;
  }
}
template void candidate_rows<float>(const StepPlan&, int64_t, int64_t, int64_t, const StepRow*, float* const*, int64_t,
                                    double);
template void candidate_rows<double>(const StepPlan&, int64_t, int64_t, int64_t, const StepRow*, double* const*,
                                     int64_t, double);

}  // namespace gru
}  // namespace nndct

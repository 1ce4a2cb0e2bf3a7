// Calibration mode of the quantized StandardLstmCell: the reference's fake-quantized float cell.
//
// One call of the reference's cell is one time step of one batch: every node computes its output
// in float from already fake-quantized inputs, scans it with the diffs search, appends the fix
// position to its history and fake-quantizes the output (floor) at the history's mode. Later
// nodes and steps therefore see quantized values, exactly as in the reference. The only liberty
// taken is float64 instead of float32 arithmetic (deterministic, and never less accurate).
//
// How it stays exact and fast:
// * The matrix products are exact integer sums (gate_matmul.h): every operand is a code times a
//   power of two (weights fake-quantized per gate block, inputs and states by their scans), so
//   code sum * 2^-(fx + fw) is the very double the float dot product gives, whatever the order.
// * Each node's values are computed, stored and min/max-scanned in one pass; its consumers apply
//   the node's fake-quantization on the fly (Quant below performs the exact operations of
//   floor_codes), so no separate quantization pass runs; only the nodes whose diffs search is not
//   decided by its cap read their values again (diffs_fix_pos_in_range, the same search as
//   diffs_fix_pos, without allocations).
// * The mode of a histogram is kept up to date per vote instead of scanning 256 slots.
// * input_0's votes depend on x only, so they are taken for a chunk of steps at once and the
//   input projections of the chunk are one matrix product.
// * With two threads, gates (i, f) and (g, o) (matrix products included) run side by side, and
//   it*cct next to ft*c; every search sees the values it sees serially, so the votes do not
//   depend on the threading.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "nndct/calib.h"
#include "nndct/grid.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_loops.h"
#include "nndct/simd.h"
#include "nndct/thread_team.h"

namespace nndct {
namespace lstm {

bool histogram_mode(const int64_t* counts, int* fix_pos) {
  int best = -1;
  for (int s = 0; s < kFpSlots; ++s)
    if (counts[s] > 0 && (best < 0 || counts[s] > counts[best])) best = s;
  if (best < 0) return false;
  *fix_pos = best - kFpOffset;
  return true;
}

CalibCell::CalibCell(int bw, int range, int max_fp, int64_t in, int64_t h, const int32_t* w_ih_codes,
                     const int32_t* w_hh_codes, const int* ih_fp, const int* hh_fp, const double* b)
    : bit_width(bw), search_range(range), max_fix_pos(max_fp), input_size(in), hidden(h), bias(b, b + 4 * h) {
  for (int p = 0; p < 2; ++p) {
    w_ih[p] = PackedGates(w_ih_codes + 2 * p * h * in, 2, h, in);
    w_hh[p] = PackedGates(w_hh_codes + 2 * p * h * h, 2, h, h);
  }
  for (int g = 0; g < kNumGates; ++g) {
    w_ih_fp[g] = ih_fp[g];
    w_hh_fp[g] = hh_fp[g];
  }
}

namespace {

// Below this many values per node and step, a second thread costs more than it saves.
constexpr int64_t kMinPairElements = 2048;
// Positions whose input projections are computed at once.
constexpr int64_t kChunkPositions = 32;
constexpr int64_t kProjectionRows = 8;

// Q_fp of a node at its current mode: clamp(floor(x * 2^fp)) * 2^-fp + 0.0, the operations of
// floor_codes. Before a node's first vote its values are all zeros and stay as they are: the
// identity below keeps a zero's sign (floor(+-0) = +-0, and +-0 + -0.0 = +-0).
struct Quant {
  double amp = 1.0;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  double scale = 1.0;
  double zero = -0.0;
};

NNDCT_ALWAYS_INLINE double q_code(double x, const Quant& q) {
  double s = std::floor(x * q.amp);
  s = s > q.lo ? s : q.lo;
  return s > q.hi ? q.hi : s;
}
NNDCT_ALWAYS_INLINE double q_value(double x, const Quant& q) { return q_code(x, q) * q.scale + q.zero; }

// The node loops: compute, store and take the min / max in one pass. Eight independent lanes
// keep the min / max vectorizable (their results do not depend on the order).
struct Lanes {
  double lo[8], hi[8];
  Lanes() {
    for (int l = 0; l < 8; ++l) {
      lo[l] = std::numeric_limits<double>::infinity();
      hi[l] = -std::numeric_limits<double>::infinity();
    }
  }
  NNDCT_ALWAYS_INLINE void add(int l, double v) {
    lo[l] = v < lo[l] ? v : lo[l];
    hi[l] = v > hi[l] ? v : hi[l];
  }
  FiniteRange range(int64_t n) const {
    FiniteRange r{lo[0], hi[0], n};
    for (int l = 1; l < 8; ++l) {
      r.min = lo[l] < r.min ? lo[l] : r.min;
      r.max = hi[l] > r.max ? hi[l] : r.max;
    }
    return r;
  }
};

#define NNDCT_NODE_LOOP(EXPR)                                  \
  Lanes lanes;                                                 \
  int64_t i = 0;                                               \
  for (; i + 8 <= n; i += 8)                                   \
    for (int l = 0; l < 8; ++l) {                              \
      const int64_t k = i + l;                                 \
      const double v = (EXPR);                                 \
      out[k] = v;                                              \
      lanes.add(l, v);                                         \
    }                                                          \
  for (; i < n; ++i) {                                         \
    const int64_t k = i;                                       \
    const double v = (EXPR);                                   \
    out[k] = v;                                                \
    lanes.add(0, v);                                           \
  }                                                            \
  return lanes.range(n);

// acc * scale (+ bias): a dense node from its exact integer sums.
NNDCT_TARGET_CLONES FiniteRange scaled_values(const int64_t* NNDCT_RESTRICT acc, double scale,
                                            double* NNDCT_RESTRICT out, int64_t n) {
  NNDCT_NODE_LOOP(static_cast<double>(acc[k]) * scale)
}
NNDCT_TARGET_CLONES FiniteRange copy_values(const double* NNDCT_RESTRICT a, double* NNDCT_RESTRICT out, int64_t n) {
  NNDCT_NODE_LOOP(a[k])
}
NNDCT_TARGET_CLONES FiniteRange sum_values(const double* NNDCT_RESTRICT a, Quant qa, const double* NNDCT_RESTRICT b,
                                         Quant qb, double* NNDCT_RESTRICT out, int64_t n) {
  NNDCT_NODE_LOOP(q_value(a[k], qa) + q_value(b[k], qb))
}
NNDCT_TARGET_CLONES FiniteRange product_values(const double* NNDCT_RESTRICT a, Quant qa,
                                             const double* NNDCT_RESTRICT b, Quant qb, double* NNDCT_RESTRICT out,
                                             int64_t n) {
  NNDCT_NODE_LOOP(q_value(a[k], qa) * q_value(b[k], qb))
}
// The table lookup of the step kernel (one definition for both modes) on the quantized input's
// codes; results on the 2^-15 grid.
NNDCT_TARGET_CLONES FiniteRange table_values(const TableOp& t, const int64_t* NNDCT_RESTRICT table,
                                           const double* NNDCT_RESTRICT y, Quant qy, double* NNDCT_RESTRICT out,
                                           int64_t n) {
  const double inv = pow2(-kTableOutputFixPos);
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  NNDCT_NODE_LOOP(static_cast<double>(table_value(table, static_cast<int64_t>(q_code(y[k], qy)), t.in_lo, t.in_hi,
                                                  il, ir, t.high, t.low, ol, orr, t.out_lo, t.out_hi)) * inv)
}
#undef NNDCT_NODE_LOOP

NNDCT_TARGET_CLONES void quantize_values(const double* NNDCT_RESTRICT x, Quant q, double* NNDCT_RESTRICT out,
                                         int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = q_value(x[i], q);
}
NNDCT_TARGET_CLONES void quantize_values_f32(const double* NNDCT_RESTRICT x, Quant q, float* NNDCT_RESTRICT out,
                                             int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(q_value(x[i], q));
}
inline void quantize_to(const double* x, Quant q, double* out, int64_t n) { quantize_values(x, q, out, n); }
inline void quantize_to(const double* x, Quant q, float* out, int64_t n) { quantize_values_f32(x, q, out, n); }

// The codes of Q (the operands of the exact products).
template <typename T>
NNDCT_ALWAYS_INLINE void codes16_body(const T* NNDCT_RESTRICT x, Quant q, int16_t* NNDCT_RESTRICT out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int16_t>(static_cast<int32_t>(q_code(static_cast<double>(x[i]), q)));
}
NNDCT_TARGET_CLONES void codes16_f64(const double* NNDCT_RESTRICT x, Quant q, int16_t* NNDCT_RESTRICT out,
                                     int64_t n) {
  codes16_body(x, q, out, n);
}
NNDCT_TARGET_CLONES void codes16_f32(const float* NNDCT_RESTRICT x, Quant q, int16_t* NNDCT_RESTRICT out,
                                     int64_t n) {
  codes16_body(x, q, out, n);
}
inline void codes16(const double* x, Quant q, int16_t* out, int64_t n) { codes16_f64(x, q, out, n); }
inline void codes16(const float* x, Quant q, int16_t* out, int64_t n) { codes16_f32(x, q, out, n); }

FiniteRange input_range(const double* x, int64_t n) { return finite_range(x, n); }
FiniteRange input_range(const float* x, int64_t n) {
  FiniteRange r;
  r.min = std::numeric_limits<double>::infinity();
  r.max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (!(std::fabs(v) <= std::numeric_limits<double>::max())) continue;
    r.min = v < r.min ? v : r.min;
    r.max = v > r.max ? v : r.max;
    ++r.finite;
  }
  return r;
}

// Node buffers of one step: the 21 nodes after the three inputs, [active rows][hidden] each.
constexpr int kBufferNodes = kNumNodes - 3;

template <typename TIn, typename TOut>
class CalibRun {
 public:
  CalibRun(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* counts, TOut* out, double* h_n, double* c_n)
      : cell_(cell), seq_(seq), counts_(counts), out_(out), h_n_(h_n), c_n_(c_n),
        range_(CodeRange::signed_bits(cell.bit_width)), Hp_(cell.w_hh[0].padded_units()),
        Ip_(cell.w_ih[0].padded_in()) {
    const int64_t B = seq.batch, T = seq.steps, H = seq.hidden;
    len_.resize(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b)
      len_[static_cast<size_t>(b)] = seq.lengths ? std::min<int64_t>(std::max<int64_t>(seq.lengths[b], 0), T) : T;
    // State of every row (the fake-quantized h_next / c_next of its last step; raw h0 / c0).
    h_.assign(static_cast<size_t>(B * H), 0.0);
    c_.assign(static_cast<size_t>(B * H), 0.0);
    if (seq.h0) std::copy(seq.h0, seq.h0 + B * H, h_.begin());
    if (seq.c0) std::copy(seq.c0, seq.c0 + B * H, c_.begin());
    for (int node = 0; node < kNumNodes; ++node) {
      int fp;
      mode_[node] = histogram_mode(counts + node * kFpSlots, &fp) ? fp + kFpOffset : -1;
      quant_[node] = make_quant(mode_[node]);
    }
    chunk_ = std::max<int64_t>(1, kChunkPositions / std::max<int64_t>(B, 1));
    active_.resize(static_cast<size_t>(B));
    hcodes_.resize(B * Hp_);
    xcodes_.resize(chunk_ * B * Ip_);
    ax_.resize(chunk_ * B * 4 * H);
    nodes_.resize(kBufferNodes * B * H);
    first_.resize(static_cast<size_t>(chunk_ + 1));
    xquant_.resize(static_cast<size_t>(chunk_));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = len_[static_cast<size_t>(b)];
      std::fill(out + (b * T + L) * H, out + (b + 1) * T * H, TOut(0));
    }
  }

  void run(TeamRegion& region) {
    const int64_t B = seq_.batch, T = seq_.steps, H = seq_.hidden;
    const int me = region.index();
    const bool two = region.size() == 2;
    // Thread p's scratch: the recurrent sums of gate pack p, the projection sums.
    AlignedArray<int64_t> acc_h(B * 2 * Hp_), acc_x(kProjectionRows * 2 * Hp_);
    std::vector<const int16_t*> in_rows(static_cast<size_t>(std::max(B, kProjectionRows)));
    std::vector<int64_t*> acc_rows(static_cast<size_t>(std::max(B, kProjectionRows)));
    for (int64_t t0 = 0; t0 < T; t0 += chunk_) {
      const int64_t t1 = std::min(T, t0 + chunk_);
      if (me == 0) scan_chunk_inputs(t0, t1);
      region.barrier();
      if (two) {
        project(me, acc_x, in_rows, acc_rows);
      } else {
        project(0, acc_x, in_rows, acc_rows);
        project(1, acc_x, in_rows, acc_rows);
      }
      for (int64_t t = t0; t < t1; ++t) {
        if (me == 0) head(t);
        region.barrier();
        const int64_t n = n_;
        if (n == 0) continue;  // every thread sees the same n
        const bool paired = two && n * H >= kMinPairElements;
        if (me == 0) {
          gates(0, t - t0, acc_h, in_rows, acc_rows);
          if (!paired) gates(1, t - t0, acc_h, in_rows, acc_rows);
        } else if (paired) {
          gates(1, t - t0, acc_h, in_rows, acc_rows);
        }
        region.barrier();
        if (me == 0) {
          input_product(kItCct);
          if (!paired) input_product(kFtC);
        } else if (paired) {
          input_product(kFtC);
        }
        region.barrier();
        if (me == 0) tail(t);
      }
    }
    if (me == 0) {
      std::copy(h_.begin(), h_.end(), h_n_);
      std::copy(c_.begin(), c_.end(), c_n_);
    }
  }

 private:
  Quant make_quant(int slot) const {
    Quant q;
    if (slot < 0) return q;  // no vote yet: the values are zeros, left as they are
    const int fp = slot - kFpOffset;
    q.amp = pow2(fp);
    q.lo = static_cast<double>(range_.lo);
    q.hi = static_cast<double>(range_.hi);
    q.scale = pow2(-fp);
    q.zero = 0.0;
    return q;
  }

  // The fix position a table node reads its input at: the mode, or max_fix_pos before a vote.
  int fix_pos(int node) const { return mode_[node] < 0 ? cell_.max_fix_pos : mode_[node] - kFpOffset; }

  // The scan of one node's output: a diffs search when it holds a non-zero value, the vote,
  // and the node's new Quant. `v` is only read when the search has candidates to compare.
  void vote(int node, const double* v, int64_t n, const FiniteRange& r, bool is_input) {
    const bool any = r.finite < n || r.min != 0.0 || r.max != 0.0;
    if (!any) return;
    FixPosSearch search;
    search.bit_width = cell_.bit_width;
    search.search_range = is_input ? 1 : cell_.search_range;
    search.method = Method::kFloor;
    search.max_fix_pos = cell_.max_fix_pos;
    const int fp = diffs_fix_pos_in_range(v, n, r, search);
    const int slot = std::clamp(fp + kFpOffset, 0, kFpSlots - 1);
    int64_t* row = counts_ + node * kFpSlots;
    ++row[slot];
    int& mode = mode_[node];
    // Counts only grow by one: the mode (most votes, smallest slot on ties) changes only to slot.
    if (mode < 0 || row[slot] > row[mode] || (row[slot] == row[mode] && slot < mode)) {
      mode = slot;
      quant_[node] = make_quant(mode);
    }
  }

  double* node_buf(int node) { return nodes_.data() + (node - 3) * seq_.batch * seq_.hidden; }

  // input_0 of steps [t0, t1): one vote per step (x only), and the codes of the quantized x.
  void scan_chunk_inputs(int64_t t0, int64_t t1) {
    const int64_t B = seq_.batch, I = seq_.input_size;
    int64_t p = 0;
    for (int64_t t = t0; t < t1; ++t) {
      first_[static_cast<size_t>(t - t0)] = p;
      FiniteRange r;
      int64_t count = 0;
      for (int64_t b = 0; b < B; ++b)
        if (t < len_[static_cast<size_t>(b)]) {
          r = combine(r, input_range(row_x(b, t), I));
          ++count;
        }
      if (count == 0) continue;
      vote(kInput0, nullptr, count * I, r, true);
      const Quant q = quant_[kInput0];
      xquant_[static_cast<size_t>(t - t0)] = q;
      for (int64_t b = 0; b < B; ++b)
        if (t < len_[static_cast<size_t>(b)]) codes16(row_x(b, t), q, xcodes_.data() + (p++) * Ip_, I);
    }
    first_[static_cast<size_t>(t1 - t0)] = p;
    chunk_steps_ = t1 - t0;
  }

  const TIn* row_x(int64_t b, int64_t t) const {
    const int64_t L = len_[static_cast<size_t>(b)];
    const int64_t pos = seq_.reverse ? L - 1 - t : t;
    return seq_.x + (b * seq_.steps + pos) * seq_.input_size;
  }

  // The dense-with-bias values of gate pack p for every position of the chunk:
  // acc * 2^-(fx + fw) + bias (the exact dot product, then one rounding, as the float cell).
  void project(int p, AlignedArray<int64_t>& acc_x, std::vector<const int16_t*>& in_rows,
               std::vector<int64_t*>& acc_rows) {
    const int64_t H = seq_.hidden;
    const PackedGates& w = cell_.w_ih[p];
    for (int64_t s = 0; s < chunk_steps_; ++s) {
      const int64_t a = first_[static_cast<size_t>(s)], e = first_[static_cast<size_t>(s + 1)];
      const Quant q = xquant_[static_cast<size_t>(s)];
      for (int64_t r0 = a; r0 < e; r0 += kProjectionRows) {
        const int64_t m = std::min(kProjectionRows, e - r0);
        for (int64_t k = 0; k < m; ++k) {
          in_rows[static_cast<size_t>(k)] = xcodes_.data() + (r0 + k) * Ip_;
          acc_rows[static_cast<size_t>(k)] = acc_x.data() + k * 2 * Hp_;
        }
        gate_matmul(w, in_rows.data(), m, 0, w.blocks(), acc_rows.data());
        for (int64_t k = 0; k < m; ++k)
          for (int gg = 0; gg < 2; ++gg) {
            const int g = 2 * p + gg;
            const double scale = q.scale * pow2(-cell_.w_ih_fp[g]);  // 2^-(fx + fw), exact
            const int64_t* acc = acc_x.data() + k * 2 * Hp_ + gg * Hp_;
            const double* bias = cell_.bias.data() + g * H;
            double* dst = ax_.data() + ((r0 + k) * 4 + g) * H;
            for (int64_t j = 0; j < H; ++j) dst[j] = static_cast<double>(acc[j]) * scale + bias[j];
          }
      }
    }
  }

  // Active rows; input_1 and input_2 votes; the codes of the quantized h for the products.
  void head(int64_t t) {
    const int64_t B = seq_.batch, H = seq_.hidden;
    int64_t n = 0;
    FiniteRange rh, rc;
    for (int64_t b = 0; b < B; ++b)
      if (t < len_[static_cast<size_t>(b)]) {
        active_[static_cast<size_t>(n++)] = b;
        rh = combine(rh, finite_range(h_.data() + b * H, H));
        rc = combine(rc, finite_range(c_.data() + b * H, H));
      }
    n_ = n;
    if (n == 0) return;
    vote(kInput1, nullptr, n * H, rh, true);
    vote(kInput2, nullptr, n * H, rc, true);
    for (int64_t k = 0; k < n; ++k)
      codes16(h_.data() + active_[static_cast<size_t>(k)] * H, quant_[kInput1], hcodes_.data() + k * Hp_, H);
  }

  // Gates 2p and 2p + 1: dense_x, dense_h, the sum and the gate node, each scanned.
  void gates(int p, int64_t s, AlignedArray<int64_t>& acc_h, std::vector<const int16_t*>& in_rows,
             std::vector<int64_t*>& acc_rows) {
    const int64_t n = n_, H = seq_.hidden, N = n * H;
    // in_rows / acc_rows belong to the calling thread.
    for (int64_t k = 0; k < n; ++k) {
      in_rows[static_cast<size_t>(k)] = hcodes_.data() + k * Hp_;
      acc_rows[static_cast<size_t>(k)] = acc_h.data() + k * 2 * Hp_;
    }
    gate_matmul(cell_.w_hh[p], in_rows.data(), n, 0, cell_.w_hh[p].blocks(), acc_rows.data());
    const int64_t base = first_[static_cast<size_t>(s)];
    for (int gg = 0; gg < 2; ++gg) {
      const int g = 2 * p + gg;
      double* a = node_buf(dense_x_node(g));
      double* b = node_buf(dense_h_node(g));
      double* y = node_buf(sum_node(g));
      double* z = node_buf(gate_node(g));
      FiniteRange ra, rb;
      const double scale = quant_[kInput1].scale * pow2(-cell_.w_hh_fp[g]);  // 2^-(fh + fw)
      for (int64_t k = 0; k < n; ++k) {
        ra = combine(ra, copy_values(ax_.data() + ((base + k) * 4 + g) * H, a + k * H, H));
        rb = combine(rb, scaled_values(acc_h.data() + k * 2 * Hp_ + gg * Hp_, scale, b + k * H, H));
      }
      vote(dense_x_node(g), a, N, ra, false);
      vote(dense_h_node(g), b, N, rb, false);
      vote(sum_node(g), y, N, sum_values(a, quant_[dense_x_node(g)], b, quant_[dense_h_node(g)], y, N), false);
      const TableOp op = TableOp::make(g == 2, fix_pos(sum_node(g)), kTableOutputFixPos, 0, 0);
      vote(gate_node(g), z, N, table_values(op, op.table, y, quant_[sum_node(g)], z, N), false);
    }
  }

  // it * cct, or ft * input_2 (input_2 read from the state of each active row).
  void input_product(int node) {
    const int64_t n = n_, H = seq_.hidden, N = n * H;
    double* out = node_buf(node);
    if (node == kItCct) {
      vote(node, out, N, product_values(node_buf(kIt), quant_[kIt], node_buf(kCct), quant_[kCct], out, N), false);
      return;
    }
    FiniteRange r;
    for (int64_t k = 0; k < n; ++k)
      r = combine(r, product_values(node_buf(kFt) + k * H, quant_[kFt], c_.data() + active_[static_cast<size_t>(k)] * H,
                                  quant_[kInput2], out + k * H, H));
    vote(node, out, N, r, false);
  }

  // c_next, c_temp, h_next, and the new state of every active row.
  void tail(int64_t t) {
    const int64_t n = n_, H = seq_.hidden, N = n * H, T = seq_.steps;
    if (n == 0) return;
    double* cn = node_buf(kCNext);
    double* ct = node_buf(kCTemp);
    double* hn = node_buf(kHNext);
    vote(kCNext, cn, N, sum_values(node_buf(kItCct), quant_[kItCct], node_buf(kFtC), quant_[kFtC], cn, N), false);
    const TableOp op = TableOp::make(true, fix_pos(kCNext), kTableOutputFixPos, 0, 0);
    vote(kCTemp, ct, N, table_values(op, op.table, cn, quant_[kCNext], ct, N), false);
    vote(kHNext, hn, N, product_values(node_buf(kOt), quant_[kOt], ct, quant_[kCTemp], hn, N), false);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = active_[static_cast<size_t>(k)], L = len_[static_cast<size_t>(b)];
      const int64_t pos = seq_.reverse ? L - 1 - t : t;
      double* h = h_.data() + b * H;
      quantize_to(hn + k * H, quant_[kHNext], h, H);
      quantize_to(hn + k * H, quant_[kHNext], out_ + (b * T + pos) * H, H);
      quantize_to(cn + k * H, quant_[kCNext], c_.data() + b * H, H);
    }
  }

  const CalibCell& cell_;
  const Sequence<TIn>& seq_;
  int64_t* counts_;
  TOut* out_;
  double* h_n_;
  double* c_n_;
  CodeRange range_;
  int64_t Hp_, Ip_;
  std::vector<int64_t> len_;
  std::vector<double> h_, c_;
  int mode_[kNumNodes];
  Quant quant_[kNumNodes];
  int64_t chunk_ = 1, chunk_steps_ = 0;
  // Shared between the threads of a step (written before a barrier, read after it).
  std::vector<int64_t> active_;
  int64_t n_ = 0;
  AlignedArray<int16_t> hcodes_;   // [active][Hp]: input_1 codes
  AlignedArray<int16_t> xcodes_;   // [chunk positions][Ip]: input_0 codes
  AlignedArray<double> ax_;        // [chunk positions][4][H]: dense-with-bias values
  AlignedArray<double> nodes_;     // [kBufferNodes][active][H]
  std::vector<int64_t> first_;     // first chunk position of each step of the chunk
  std::vector<Quant> xquant_;      // input_0's Quant at each step of the chunk
};

}  // namespace

template <typename TIn, typename TOut>
void calibrate_forward(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* fp_counts, TOut* out,
                       double* h_n, double* c_n, int num_threads) {
  CalibRun<TIn, TOut> run(cell, seq, fp_counts, out, h_n, c_n);
  const bool pair = num_threads >= 2 && seq.batch * seq.hidden >= kMinPairElements;
  run_team(pair ? 2 : 1, [&](TeamRegion& region) { run.run(region); });
}

#define NNDCT_INSTANTIATE_CALIB_FORWARD(TIn, TOut)                                                        \
  template void calibrate_forward<TIn, TOut>(const CalibCell&, const Sequence<TIn>&, int64_t*, TOut*, double*, \
                                             double*, int);
NNDCT_INSTANTIATE_CALIB_FORWARD(double, double)
NNDCT_INSTANTIATE_CALIB_FORWARD(double, float)
NNDCT_INSTANTIATE_CALIB_FORWARD(float, double)
NNDCT_INSTANTIATE_CALIB_FORWARD(float, float)
#undef NNDCT_INSTANTIATE_CALIB_FORWARD

}  // namespace lstm
}  // namespace nndct

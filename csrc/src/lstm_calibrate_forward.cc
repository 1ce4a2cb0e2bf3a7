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
#include <cstring>
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

// The node loops: compute and store a node's values, and take their min / max while they are
// in the first-level cache. The min / max run on GCC vector extensions (eight doubles: one
// AVX-512 register, two AVX2 or four SSE2 registers, whatever the clone), because the
// vectorizer does not turn a floating-point min / max reduction into vector code by itself.
typedef double V8 __attribute__((vector_size(64)));
constexpr int64_t kBlock = 512;

struct MinMax8 {
  V8 lo, hi;
  MinMax8() {
    for (int l = 0; l < 8; ++l) {
      lo[l] = std::numeric_limits<double>::infinity();
      hi[l] = -std::numeric_limits<double>::infinity();
    }
  }
  NNDCT_ALWAYS_INLINE void add(const double* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      V8 v;
      std::memcpy(&v, x + i, sizeof v);
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    for (; i < n; ++i) {
      lo[0] = x[i] < lo[0] ? x[i] : lo[0];
      hi[0] = x[i] > hi[0] ? x[i] : hi[0];
    }
  }
  // The values of the node loops are always finite (they come from finite codes).
  FiniteRange range(int64_t n) const {
    FiniteRange r{lo[0], hi[0], n};
    for (int l = 1; l < 8; ++l) {
      r.min = lo[l] < r.min ? lo[l] : r.min;
      r.max = hi[l] > r.max ? hi[l] : r.max;
    }
    return r;
  }
};

// out[k] = EXPR for k < n, with the min / max.
#define NNDCT_NODE_LOOP(EXPR)                                     \
  MinMax8 mm;                                                     \
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {                    \
    const int64_t b1 = n - b0 < kBlock ? n : b0 + kBlock;         \
    for (int64_t k = b0; k < b1; ++k) out[k] = (EXPR);            \
    mm.add(out + b0, b1 - b0);                                    \
  }                                                               \
  return mm.range(n);

// out[r * H + j] = EXPR for rows r < rows, j < H, with the min / max.
#define NNDCT_ROWS_LOOP(EXPR)                                     \
  MinMax8 mm;                                                     \
  for (int64_t r = 0; r < rows; ++r) {                            \
    double* o = out + r * H;                                      \
    for (int64_t j = 0; j < H; ++j) o[j] = (EXPR);                \
    mm.add(o, H);                                                 \
  }                                                               \
  return mm.range(rows * H);

// A dense node from its exact integer sums: acc * 2^-(fx + fw) (+ bias, one rounding as the
// float cell's dot product + bias). acc rows are `stride` apart.
NNDCT_TARGET_CLONES FiniteRange scaled_rows(const int64_t* NNDCT_RESTRICT acc, int64_t stride, int64_t rows,
                                            int64_t H, double scale, double* NNDCT_RESTRICT out) {
  NNDCT_ROWS_LOOP(static_cast<double>(acc[r * stride + j]) * scale)
}
NNDCT_TARGET_CLONES FiniteRange biased_rows(const int64_t* NNDCT_RESTRICT acc, int64_t stride, int64_t rows,
                                            int64_t H, double scale, const double* NNDCT_RESTRICT bias,
                                            double* NNDCT_RESTRICT out) {
  NNDCT_ROWS_LOOP(static_cast<double>(acc[r * stride + j]) * scale + bias[j])
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
// a (contiguous rows of H) times the rows b[r] (ft * c: c read from the state of each row).
NNDCT_TARGET_CLONES FiniteRange product_rows(const double* NNDCT_RESTRICT a, Quant qa, const double* const* b,
                                             Quant qb, int64_t rows, int64_t H, double* NNDCT_RESTRICT out) {
  NNDCT_ROWS_LOOP(q_value(a[r * H + j], qa) * q_value(b[r][j], qb))
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
#undef NNDCT_ROWS_LOOP

// The new state of every row: dst[r] = Q(src row r), also written to out[r] when given, and
// the min / max of each row (the next step's input scans combine them).
template <typename T>
NNDCT_ALWAYS_INLINE void store_rows_body(const double* NNDCT_RESTRICT src, Quant q, int64_t rows, int64_t H,
                                         double* const* dst, T* const* out, FiniteRange* ranges) {
  for (int64_t r = 0; r < rows; ++r) {
    double* d = dst[r];
    const double* s = src + r * H;
    for (int64_t j = 0; j < H; ++j) d[j] = q_value(s[j], q);
    if (out) {
      T* o = out[r];
      for (int64_t j = 0; j < H; ++j) o[j] = static_cast<T>(d[j]);
    }
    MinMax8 mm;
    mm.add(d, H);
    ranges[r] = mm.range(H);
  }
}
NNDCT_TARGET_CLONES void store_rows_f64(const double* NNDCT_RESTRICT src, Quant q, int64_t rows, int64_t H,
                                        double* const* dst, double* const* out, FiniteRange* ranges) {
  store_rows_body(src, q, rows, H, dst, out, ranges);
}
NNDCT_TARGET_CLONES void store_rows_f32(const double* NNDCT_RESTRICT src, Quant q, int64_t rows, int64_t H,
                                        double* const* dst, float* const* out, FiniteRange* ranges) {
  store_rows_body(src, q, rows, H, dst, out, ranges);
}
inline void store_rows(const double* src, Quant q, int64_t rows, int64_t H, double* const* dst, double* const* out,
                       FiniteRange* ranges) {
  store_rows_f64(src, q, rows, H, dst, out, ranges);
}
inline void store_rows(const double* src, Quant q, int64_t rows, int64_t H, double* const* dst, float* const* out,
                       FiniteRange* ranges) {
  store_rows_f32(src, q, rows, H, dst, out, ranges);
}

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

// The range of user values (x, h0, c0): NaN and +-inf are left out of the min / max and counted
// as non-finite, as the diffs search does.
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

// Node buffers of one step: nodes 4.. (dense_h of gate i onwards; the dense_x nodes live in the
// chunk's projections), [active rows][hidden] each.
constexpr int kFirstBuffer = 4;
constexpr int kBufferNodes = kNumNodes - kFirstBuffer;

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
    // State of every row (the fake-quantized h_next / c_next of its last step; raw h0 / c0),
    // with the min / max of each row.
    h_.assign(static_cast<size_t>(B * H), 0.0);
    c_.assign(static_cast<size_t>(B * H), 0.0);
    if (seq.h0) std::copy(seq.h0, seq.h0 + B * H, h_.begin());
    if (seq.c0) std::copy(seq.c0, seq.c0 + B * H, c_.begin());
    h_range_.resize(static_cast<size_t>(B));
    c_range_.resize(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      h_range_[static_cast<size_t>(b)] = finite_range(h_.data() + b * H, H);
      c_range_[static_cast<size_t>(b)] = finite_range(c_.data() + b * H, H);
    }
    for (int node = 0; node < kNumNodes; ++node) {
      int fp;
      mode_[node] = histogram_mode(counts + node * kFpSlots, &fp) ? fp + kFpOffset : -1;
      quant_[node] = make_quant(mode_[node]);
    }
    chunk_ = std::max<int64_t>(1, kChunkPositions / std::max<int64_t>(B, 1));
    positions_ = chunk_ * B;
    active_.resize(static_cast<size_t>(B));
    h_rows_.resize(static_cast<size_t>(B));
    c_rows_.resize(static_cast<size_t>(B));
    out_rows_.resize(static_cast<size_t>(B));
    fresh_ranges_.resize(static_cast<size_t>(B));
    hcodes_.resize(B * Hp_);
    xcodes_.resize(positions_ * Ip_);
    ax_.resize(kNumGates * positions_ * H);
    ax_range_.resize(static_cast<size_t>(chunk_ * kNumGates));
    nodes_.resize(kBufferNodes * B * H);
    first_.resize(static_cast<size_t>(chunk_ + 1));
    xquant_.resize(static_cast<size_t>(chunk_));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = len_[static_cast<size_t>(b)];
      std::fill(out + (b * T + L) * H, out + (b + 1) * T * H, TOut(0));
    }
  }

  // With `threads` >= 2, the two gate packs of a step (and it*cct next to ft*c) are tasks of
  // one section each (thread_team.h); every search sees the values it sees serially, so the
  // votes do not depend on the threading.
  void run(int threads) {
    const int64_t B = seq_.batch, T = seq_.steps, H = seq_.hidden;
    for (int p = 0; p < 2; ++p) {
      acc_h_[p].resize(B * 2 * Hp_);
      acc_x_[p].resize(kProjectionRows * 2 * Hp_);
      in_rows_[p].resize(static_cast<size_t>(std::max(B, kProjectionRows)));
      acc_rows_[p].resize(static_cast<size_t>(std::max(B, kProjectionRows)));
    }
    SectionPacer pacer(threads >= 2 && B * H >= kMinPairElements ? 2 : 1);
    for (int64_t t0 = 0; t0 < T; t0 += chunk_) {
      const int64_t t1 = std::min(T, t0 + chunk_);
      scan_chunk_inputs(t0, t1);
      pacer.run(2, [&](int64_t p) { project(static_cast<int>(p)); });
      for (int64_t t = t0; t < t1; ++t) {
        head(t);
        if (n_ == 0) continue;
        if (n_ * H >= kMinPairElements) {
          pacer.run(2, [&](int64_t p) { gates(static_cast<int>(p), t - t0); });
          pacer.run(2, [&](int64_t i) { input_product(i == 0 ? kItCct : kFtC); });
        } else {
          gates(0, t - t0);
          gates(1, t - t0);
          input_product(kItCct);
          input_product(kFtC);
        }
        tail(t);
      }
    }
    std::copy(h_.begin(), h_.end(), h_n_);
    std::copy(c_.begin(), c_.end(), c_n_);
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

  double* node_buf(int node) { return nodes_.data() + (node - kFirstBuffer) * seq_.batch * seq_.hidden; }
  // The dense_x values of gate g at chunk position p (rows of one step are consecutive positions).
  double* ax_at(int g, int64_t p) { return ax_.data() + (g * positions_ + p) * seq_.hidden; }

  // input_0 of steps [t0, t1): one vote per step (x only), and the codes of the quantized x.
  void scan_chunk_inputs(int64_t t0, int64_t t1) {
    const int64_t B = seq_.batch, I = seq_.input_size;
    int64_t p = 0;
    for (int64_t t = t0; t < t1; ++t) {
      first_[static_cast<size_t>(t - t0)] = p;
      for (int g = 0; g < kNumGates; ++g) ax_range_[static_cast<size_t>((t - t0) * kNumGates + g)] = FiniteRange{};
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

  // The dense-with-bias values of gate pack p for every position of the chunk, and their
  // min / max per step: acc * 2^-(fx + fw) + bias (the exact dot product, then one rounding).
  void project(int p) {
    const int64_t H = seq_.hidden;
    AlignedArray<int64_t>& acc_x = acc_x_[p];
    std::vector<const int16_t*>& in_rows = in_rows_[p];
    std::vector<int64_t*>& acc_rows = acc_rows_[p];
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
        for (int gg = 0; gg < 2; ++gg) {
          const int g = 2 * p + gg;
          const double scale = q.scale * pow2(-cell_.w_ih_fp[g]);  // 2^-(fx + fw), exact
          FiniteRange& range = ax_range_[static_cast<size_t>(s * kNumGates + g)];
          range = combine(range, biased_rows(acc_x.data() + gg * Hp_, 2 * Hp_, m, H, scale,
                                             cell_.bias.data() + g * H, ax_at(g, r0)));
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
        rh = combine(rh, h_range_[static_cast<size_t>(b)]);
        rc = combine(rc, c_range_[static_cast<size_t>(b)]);
      }
    n_ = n;
    if (n == 0) return;
    vote(kInput1, nullptr, n * H, rh, true);
    vote(kInput2, nullptr, n * H, rc, true);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = active_[static_cast<size_t>(k)];
      codes16(h_.data() + b * H, quant_[kInput1], hcodes_.data() + k * Hp_, H);
      c_rows_[static_cast<size_t>(k)] = c_.data() + b * H;
    }
  }

  // Gates 2p and 2p + 1: dense_x (computed with the chunk), dense_h, the sum and the gate node,
  // each scanned.
  void gates(int p, int64_t s) {
    const int64_t n = n_, H = seq_.hidden, N = n * H;
    AlignedArray<int64_t>& acc_h = acc_h_[p];
    std::vector<const int16_t*>& in_rows = in_rows_[p];
    std::vector<int64_t*>& acc_rows = acc_rows_[p];
    for (int64_t k = 0; k < n; ++k) {
      in_rows[static_cast<size_t>(k)] = hcodes_.data() + k * Hp_;
      acc_rows[static_cast<size_t>(k)] = acc_h.data() + k * 2 * Hp_;
    }
    gate_matmul(cell_.w_hh[p], in_rows.data(), n, 0, cell_.w_hh[p].blocks(), acc_rows.data());
    const int64_t first = first_[static_cast<size_t>(s)];
    for (int gg = 0; gg < 2; ++gg) {
      const int g = 2 * p + gg;
      const double* a = ax_at(g, first);
      double* b = node_buf(dense_h_node(g));
      double* y = node_buf(sum_node(g));
      double* z = node_buf(gate_node(g));
      const double scale = quant_[kInput1].scale * pow2(-cell_.w_hh_fp[g]);  // 2^-(fh + fw)
      vote(dense_x_node(g), a, N, ax_range_[static_cast<size_t>(s * kNumGates + g)], false);
      vote(dense_h_node(g), b, N, scaled_rows(acc_h.data() + gg * Hp_, 2 * Hp_, n, H, scale, b), false);
      vote(sum_node(g), y, N, sum_values(a, quant_[dense_x_node(g)], b, quant_[dense_h_node(g)], y, N), false);
      const TableOp op = TableOp::make(g == 2, fix_pos(sum_node(g)), kTableOutputFixPos, 0, 0);
      vote(gate_node(g), z, N, table_values(op, op.table, y, quant_[sum_node(g)], z, N), false);
    }
  }

  // it * cct, or ft * input_2 (input_2 read from the state of each active row).
  void input_product(int node) {
    const int64_t n = n_, H = seq_.hidden, N = n * H;
    double* out = node_buf(node);
    const FiniteRange r =
        node == kItCct ? product_values(node_buf(kIt), quant_[kIt], node_buf(kCct), quant_[kCct], out, N)
                       : product_rows(node_buf(kFt), quant_[kFt], c_rows_.data(), quant_[kInput2], n, H, out);
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
      h_rows_[static_cast<size_t>(k)] = h_.data() + b * H;
      c_rows_[static_cast<size_t>(k)] = c_.data() + b * H;
      out_rows_[static_cast<size_t>(k)] = out_ + (b * T + pos) * H;
    }
    store_rows(hn, quant_[kHNext], n, H, h_rows_.data(), out_rows_.data(), fresh_ranges_.data());
    for (int64_t k = 0; k < n; ++k) h_range_[static_cast<size_t>(active_[static_cast<size_t>(k)])] = fresh_ranges_[static_cast<size_t>(k)];
    store_rows(cn, quant_[kCNext], n, H, c_rows_.data(), static_cast<TOut* const*>(nullptr), fresh_ranges_.data());
    for (int64_t k = 0; k < n; ++k) c_range_[static_cast<size_t>(active_[static_cast<size_t>(k)])] = fresh_ranges_[static_cast<size_t>(k)];
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
  std::vector<FiniteRange> h_range_, c_range_;
  int mode_[kNumNodes];
  Quant quant_[kNumNodes];
  int64_t chunk_ = 1, positions_ = 1, chunk_steps_ = 0;
  // Written by the calling thread between sections, read by the tasks of a section.
  std::vector<int64_t> active_;
  std::vector<double*> h_rows_, c_rows_;
  std::vector<TOut*> out_rows_;
  std::vector<FiniteRange> fresh_ranges_;
  int64_t n_ = 0;
  AlignedArray<int16_t> hcodes_;       // [active][Hp]: input_1 codes
  AlignedArray<int16_t> xcodes_;       // [chunk positions][Ip]: input_0 codes
  AlignedArray<double> ax_;            // [4][chunk positions][H]: dense-with-bias values
  std::vector<FiniteRange> ax_range_;  // [chunk steps][4]
  AlignedArray<double> nodes_;         // [kBufferNodes][active][H]
  std::vector<int64_t> first_;         // first chunk position of each step of the chunk
  std::vector<Quant> xquant_;          // input_0's Quant at each step of the chunk
  // The scratch of gate pack p (whichever thread runs it).
  AlignedArray<int64_t> acc_h_[2], acc_x_[2];
  std::vector<const int16_t*> in_rows_[2];
  std::vector<int64_t*> acc_rows_[2];
};

}  // namespace

template <typename TIn, typename TOut>
void calibrate_forward(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* fp_counts, TOut* out,
                       double* h_n, double* c_n, int num_threads) {
  CalibRun<TIn, TOut> run(cell, seq, fp_counts, out, h_n, c_n);
  run.run(num_threads);
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

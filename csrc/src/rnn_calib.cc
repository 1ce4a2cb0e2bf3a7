// The shared parts of the recurrent cells' calibration loops (see rnn_calib.h).
#include "nndct/rnn_calib.h"

#include <algorithm>

#include "nndct/rnn_fixed_run.h"

namespace nndct {
namespace rnn {
namespace {

// The node loops compute and store a node's values and take their min / max while they are in
// the first-level cache. The min / max run on GCC vector extensions (eight doubles: one AVX-512
// register, two AVX2 or four SSE2 registers, whatever the clone), because the vectorizer does not
// turn a floating-point min / max reduction into vector code by itself.
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

NNDCT_TARGET_CLONES FiniteRange scaled_rows_loop(const int64_t* NNDCT_RESTRICT acc, int64_t stride, int64_t rows,
                                                 int64_t H, double scale, double* NNDCT_RESTRICT out) {
  NNDCT_ROWS_LOOP(static_cast<double>(acc[r * stride + j]) * scale)
}
NNDCT_TARGET_CLONES FiniteRange biased_rows_loop(const int64_t* NNDCT_RESTRICT acc, int64_t stride, int64_t rows,
                                                 int64_t H, double scale, const double* NNDCT_RESTRICT bias,
                                                 double* NNDCT_RESTRICT out) {
  NNDCT_ROWS_LOOP(static_cast<double>(acc[r * stride + j]) * scale + bias[j])
}
NNDCT_TARGET_CLONES FiniteRange sum_loop(const double* NNDCT_RESTRICT a, Quant qa, const double* NNDCT_RESTRICT b,
                                         Quant qb, double* NNDCT_RESTRICT out, int64_t n) {
  NNDCT_NODE_LOOP(q_value(a[k], qa) + q_value(b[k], qb))
}
NNDCT_TARGET_CLONES FiniteRange difference_loop(const double* NNDCT_RESTRICT a, Quant qa,
                                                const double* NNDCT_RESTRICT b, Quant qb, double* NNDCT_RESTRICT out,
                                                int64_t n) {
  NNDCT_NODE_LOOP(q_value(a[k], qa) - q_value(b[k], qb))
}
NNDCT_TARGET_CLONES FiniteRange product_loop(const double* NNDCT_RESTRICT a, Quant qa, const double* NNDCT_RESTRICT b,
                                             Quant qb, double* NNDCT_RESTRICT out, int64_t n) {
  NNDCT_NODE_LOOP(q_value(a[k], qa) * q_value(b[k], qb))
}
NNDCT_TARGET_CLONES FiniteRange product_rows_loop(const double* NNDCT_RESTRICT a, Quant qa, const double* const* b,
                                                  Quant qb, int64_t rows, int64_t H, double* NNDCT_RESTRICT out) {
  NNDCT_ROWS_LOOP(q_value(a[r * H + j], qa) * q_value(b[r][j], qb))
}
NNDCT_TARGET_CLONES FiniteRange table_loop(const lstm::TableOp& t, const int64_t* NNDCT_RESTRICT table,
                                           const double* NNDCT_RESTRICT y, Quant qy, double* NNDCT_RESTRICT out,
                                           int64_t n) {
  const double inv = pow2(-kTableOutputFixPos);
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  NNDCT_NODE_LOOP(static_cast<double>(lstm::table_value(table, static_cast<int64_t>(q_code(y[k], qy)), t.in_lo,
                                                        t.in_hi, il, ir, t.high, t.low, ol, orr, t.out_lo,
                                                        t.out_hi)) * inv)
}
#undef NNDCT_NODE_LOOP
#undef NNDCT_ROWS_LOOP

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

}  // namespace

FiniteRange scaled_rows(const int64_t* acc, int64_t stride, int64_t rows, int64_t H, double scale, double* out) {
  return scaled_rows_loop(acc, stride, rows, H, scale, out);
}
FiniteRange biased_rows(const int64_t* acc, int64_t stride, int64_t rows, int64_t H, double scale, const double* bias,
                        double* out) {
  return bias ? biased_rows_loop(acc, stride, rows, H, scale, bias, out)
              : scaled_rows_loop(acc, stride, rows, H, scale, out);
}
FiniteRange sum_values(const double* a, Quant qa, const double* b, Quant qb, double* out, int64_t n) {
  return sum_loop(a, qa, b, qb, out, n);
}
FiniteRange difference_values(const double* a, Quant qa, const double* b, Quant qb, double* out, int64_t n) {
  return difference_loop(a, qa, b, qb, out, n);
}
FiniteRange product_values(const double* a, Quant qa, const double* b, Quant qb, double* out, int64_t n) {
  return product_loop(a, qa, b, qb, out, n);
}
FiniteRange product_rows(const double* a, Quant qa, const double* const* b, Quant qb, int64_t rows, int64_t H,
                         double* out) {
  return product_rows_loop(a, qa, b, qb, rows, H, out);
}
FiniteRange table_values(const lstm::TableOp& t, const double* y, Quant qy, double* out, int64_t n) {
  return table_loop(t, t.table, y, qy, out, n);
}
void store_rows(const double* src, Quant q, int64_t rows, int64_t H, double* const* dst, double* const* out,
                FiniteRange* ranges) {
  store_rows_f64(src, q, rows, H, dst, out, ranges);
}
void store_rows(const double* src, Quant q, int64_t rows, int64_t H, double* const* dst, float* const* out,
                FiniteRange* ranges) {
  store_rows_f32(src, q, rows, H, dst, out, ranges);
}
void codes16(const double* x, Quant q, int16_t* out, int64_t n) { codes16_f64(x, q, out, n); }
void codes16(const float* x, Quant q, int16_t* out, int64_t n) { codes16_f32(x, q, out, n); }

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

// ---- NodeVotes

NodeVotes::NodeVotes(int64_t* counts, int nodes, int bit_width, int search_range, int max_fix_pos,
                     const int* node_bits)
    : counts_(counts), bit_width_(bit_width), search_range_(search_range), max_fix_pos_(max_fix_pos),
      range_(lstm::CodeRange::signed_bits(bit_width)), bits_(static_cast<size_t>(nodes), bit_width),
      mode_(static_cast<size_t>(nodes)), quant_(static_cast<size_t>(nodes)) {
  for (int node = 0; node < nodes; ++node) {
    if (node_bits && node_bits[node]) bits_[static_cast<size_t>(node)] = node_bits[node];
    int fp;
    mode_[static_cast<size_t>(node)] = lstm::histogram_mode(counts + node * kFpSlots, &fp) ? fp + kFpOffset : -1;
    quant_[static_cast<size_t>(node)] = make_quant(node, mode_[static_cast<size_t>(node)]);
  }
}

Quant NodeVotes::make_quant(int node, int slot) const {
  Quant q;
  if (slot < 0) return q;  // no vote yet: the values are zeros, left as they are
  const int fp = slot - kFpOffset;
  const lstm::CodeRange range = lstm::CodeRange::signed_bits(bits_[static_cast<size_t>(node)]);
  q.amp = pow2(fp);
  q.lo = static_cast<double>(range.lo);
  q.hi = static_cast<double>(range.hi);
  q.scale = pow2(-fp);
  q.zero = 0.0;
  return q;
}

int NodeVotes::fix_pos(int node) const {
  const int m = mode_[static_cast<size_t>(node)];
  return m < 0 ? max_fix_pos_ : m - kFpOffset;
}

void NodeVotes::vote(int node, const double* v, int64_t n, const FiniteRange& r, bool is_input) {
  const bool any = r.finite < n || r.min != 0.0 || r.max != 0.0;
  if (n == 0 || !any) return;
  FixPosSearch search;
  search.bit_width = bits_[static_cast<size_t>(node)];
  search.search_range = is_input ? 1 : search_range_;
  search.method = Method::kFloor;
  search.max_fix_pos = max_fix_pos_;
  const int fp = diffs_fix_pos_in_range(v, n, r, search);
  const int slot = std::clamp(fp + kFpOffset, 0, kFpSlots - 1);
  int64_t* row = counts_ + node * kFpSlots;
  ++row[slot];
  int& mode = mode_[static_cast<size_t>(node)];
  // Counts only grow by one: the mode (most votes, smallest slot on ties) changes only to slot.
  if (mode < 0 || row[slot] > row[mode] || (row[slot] == row[mode] && slot < mode)) {
    mode = slot;
    quant_[static_cast<size_t>(node)] = make_quant(node, mode);
  }
}

// ---- CalibState

void CalibState::init(const double* initial, int64_t B, int64_t H) {
  v.assign(static_cast<size_t>(B * H), 0.0);
  if (initial) std::copy(initial, initial + B * H, v.begin());
  range.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) range[static_cast<size_t>(b)] = finite_range(v.data() + b * H, H);
}

FiniteRange CalibState::active_range(const int64_t* active, int64_t n) const {
  FiniteRange r;
  for (int64_t k = 0; k < n; ++k) r = combine(r, range[static_cast<size_t>(active[k])]);
  return r;
}

// ---- CalibInput / CalibInputChunk

CalibInput::CalibInput(int64_t in, int64_t units, const int32_t* w_codes, const int* fp, const double* b,
                       const std::vector<int>& pack_gates) {
  int g0 = 0;
  for (int gates : pack_gates) {
    packs.emplace_back(w_codes + g0 * units * in, gates, units, in);
    first_gate.push_back(g0);
    g0 += gates;
  }
  w_fp.assign(fp, fp + g0);
  bias.assign(b, b + g0 * units);
}

template <typename TIn>
CalibInputChunk<TIn>::CalibInputChunk(const CalibInput& input, const Sequence<TIn>& seq,
                                      const std::vector<int64_t>& len)
    : in_(input), seq_(seq), len_(len), Ip_(input.packs[0].padded_in()) {
  const int64_t B = seq.batch, H = seq.hidden;
  chunk_ = std::max<int64_t>(1, kChunkPositions / std::max<int64_t>(B, 1));
  positions_ = chunk_ * B;
  first_.resize(static_cast<size_t>(chunk_ + 1));
  xquant_.resize(static_cast<size_t>(chunk_));
  xcodes_.resize(positions_ * Ip_);
  ax_.resize(input.gates() * positions_ * H);
  ax_range_.resize(static_cast<size_t>(chunk_ * input.gates()));
  scratch_.resize(input.packs.size());
  for (size_t p = 0; p < input.packs.size(); ++p) {
    const PackedGates& w = input.packs[p];
    scratch_[p].acc.resize(kProjectionRows * w.gates() * w.padded_units());
    scratch_[p].in_rows.resize(static_cast<size_t>(kProjectionRows));
    scratch_[p].acc_rows.resize(static_cast<size_t>(kProjectionRows));
  }
}

template <typename TIn>
const TIn* CalibInputChunk<TIn>::row_x(int64_t b, int64_t t) const {
  const int64_t L = len_[static_cast<size_t>(b)];
  const int64_t pos = seq_.reverse ? L - 1 - t : t;
  return seq_.x + (b * seq_.steps + pos) * seq_.input_size;
}

template <typename TIn>
void CalibInputChunk<TIn>::scan(int64_t t0, int64_t t1, NodeVotes& votes, int input_node) {
  const int64_t B = seq_.batch, I = seq_.input_size, G = in_.gates();
  int64_t p = 0;
  for (int64_t t = t0; t < t1; ++t) {
    first_[static_cast<size_t>(t - t0)] = p;
    for (int g = 0; g < G; ++g) ax_range_[static_cast<size_t>((t - t0) * G + g)] = FiniteRange{};
    FiniteRange r;
    int64_t count = 0;
    for (int64_t b = 0; b < B; ++b)
      if (t < len_[static_cast<size_t>(b)]) {
        r = combine(r, input_range(row_x(b, t), I));
        ++count;
      }
    if (count == 0) continue;
    votes.vote(input_node, nullptr, count * I, r, true);
    const Quant q = votes.quant(input_node);
    xquant_[static_cast<size_t>(t - t0)] = q;
    for (int64_t b = 0; b < B; ++b)
      if (t < len_[static_cast<size_t>(b)]) codes16(row_x(b, t), q, xcodes_.data() + (p++) * Ip_, I);
  }
  first_[static_cast<size_t>(t1 - t0)] = p;
  steps_ = t1 - t0;
}

template <typename TIn>
void CalibInputChunk<TIn>::project(int p) {
  const int64_t H = seq_.hidden, G = in_.gates();
  PackScratch& sc = scratch_[static_cast<size_t>(p)];
  const PackedGates& w = in_.packs[static_cast<size_t>(p)];
  const int64_t width = w.gates() * w.padded_units();
  for (int64_t s = 0; s < steps_; ++s) {
    const int64_t a = first_[static_cast<size_t>(s)], e = first_[static_cast<size_t>(s + 1)];
    const Quant q = xquant_[static_cast<size_t>(s)];
    for (int64_t r0 = a; r0 < e; r0 += kProjectionRows) {
      const int64_t m = std::min(kProjectionRows, e - r0);
      for (int64_t k = 0; k < m; ++k) {
        sc.in_rows[static_cast<size_t>(k)] = xcodes_.data() + (r0 + k) * Ip_;
        sc.acc_rows[static_cast<size_t>(k)] = sc.acc.data() + k * width;
      }
      gate_matmul(w, sc.in_rows.data(), m, 0, w.blocks(), sc.acc_rows.data());
      for (int gg = 0; gg < w.gates(); ++gg) {
        const int g = in_.first_gate[static_cast<size_t>(p)] + gg;
        const double scale = q.scale * pow2(-in_.w_fp[static_cast<size_t>(g)]);  // 2^-(fx + fw), exact
        FiniteRange& range = ax_range_[static_cast<size_t>(s * G + g)];
        range = combine(range, biased_rows(sc.acc.data() + gg * w.padded_units(), width, m, H, scale,
                                           in_.bias.data() + g * H, ax_.data() + (g * positions_ + r0) * H));
      }
    }
  }
}

template <typename TIn>
const double* CalibInputChunk<TIn>::dense(int g, int64_t s) const {
  return ax_.data() + (g * positions_ + first_[static_cast<size_t>(s)]) * seq_.hidden;
}

template <typename TIn>
const FiniteRange& CalibInputChunk<TIn>::dense_range(int g, int64_t s) const {
  return ax_range_[static_cast<size_t>(s * in_.gates() + g)];
}

template class CalibInputChunk<double>;
template class CalibInputChunk<float>;

}  // namespace rnn
}  // namespace nndct

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
//   the node's fake-quantization on the fly (rnn::Quant performs the exact operations of the
//   floor fake-quantization), so no separate quantization pass runs; only the nodes whose diffs
//   search is not decided by its cap read their values again (diffs_fix_pos_in_range, the same
//   search as diffs_fix_pos, without allocations). These pieces are rnn_calib.h's (shared with
//   the GRU).
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
                     const int32_t* w_hh_codes, const int* ih_fp, const int* hh_fp, const double* b,
                     const int* bits)
    : bit_width(bw), search_range(range), max_fix_pos(max_fp), input_size(in), hidden(h),
      input(in, h, w_ih_codes, ih_fp, b, {2, 2}) {
  if (bits) std::copy(bits, bits + kNumNodes, node_bits);
  for (int p = 0; p < 2; ++p) w_hh[p] = PackedGates(w_hh_codes + 2 * p * h * h, 2, h, h);
  for (int g = 0; g < kNumGates; ++g) w_hh_fp[g] = hh_fp[g];
}

namespace {

using rnn::CalibState;
using rnn::NodeVotes;
using rnn::Quant;

// Below this many values per node and step, a second thread costs more than it saves.
constexpr int64_t kMinPairElements = 2048;

// Node buffers of one step: nodes 4.. (dense_h of gate i onwards; the dense_x nodes live in the
// chunk's projections), [active rows][hidden] each.
constexpr int kFirstBuffer = 4;
constexpr int kBufferNodes = kNumNodes - kFirstBuffer;

template <typename TIn, typename TOut>
class CalibRun {
 public:
  CalibRun(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* counts, TOut* out, double* h_n, double* c_n)
      : cell_(cell), seq_(seq), out_(out), h_n_(h_n), c_n_(c_n), Hp_(cell.w_hh[0].padded_units()),
        len_(rnn::sequence_lengths(seq.lengths, seq.batch, seq.steps)),
        votes_(counts, kNumNodes, cell.bit_width, cell.search_range, cell.max_fix_pos, cell.node_bits), inputs_(cell.input, seq, len_) {
    const int64_t B = seq.batch, T = seq.steps, H = seq.hidden;
    // State of every row (the fake-quantized h_next / c_next of its last step; raw h0 / c0).
    h_.init(seq.h0, B, H);
    c_.init(seq.c0, B, H);
    active_.resize(static_cast<size_t>(B));
    h_rows_.resize(static_cast<size_t>(B));
    c_rows_.resize(static_cast<size_t>(B));
    out_rows_.resize(static_cast<size_t>(B));
    fresh_ranges_.resize(static_cast<size_t>(B));
    hcodes_.resize(B * Hp_);
    nodes_.resize(kBufferNodes * B * H);
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
      in_rows_[p].resize(static_cast<size_t>(B));
      acc_rows_[p].resize(static_cast<size_t>(B));
    }
    SectionPacer pacer(threads >= 2 && B * H >= kMinPairElements ? 2 : 1);
    const int64_t chunk = inputs_.chunk();
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t t1 = std::min(T, t0 + chunk);
      inputs_.scan(t0, t1, votes_, kInput0);
      pacer.run(2, [&](int64_t p) { inputs_.project(static_cast<int>(p)); });
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
    std::copy(h_.v.begin(), h_.v.end(), h_n_);
    std::copy(c_.v.begin(), c_.v.end(), c_n_);
  }

 private:
  const Quant& q(int node) const { return votes_.quant(node); }
  double* node_buf(int node) { return nodes_.data() + (node - kFirstBuffer) * seq_.batch * seq_.hidden; }

  // Active rows; input_1 and input_2 votes; the codes of the quantized h for the products.
  void head(int64_t t) {
    const int64_t B = seq_.batch, H = seq_.hidden;
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b)
      if (t < len_[static_cast<size_t>(b)]) active_[static_cast<size_t>(n++)] = b;
    n_ = n;
    if (n == 0) return;
    votes_.vote(kInput1, nullptr, n * H, h_.active_range(active_.data(), n), true);
    votes_.vote(kInput2, nullptr, n * H, c_.active_range(active_.data(), n), true);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = active_[static_cast<size_t>(k)];
      rnn::codes16(h_.row(b, H), q(kInput1), hcodes_.data() + k * Hp_, H);
      c_rows_[static_cast<size_t>(k)] = c_.row(b, H);
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
    for (int gg = 0; gg < 2; ++gg) {
      const int g = 2 * p + gg;
      const double* a = inputs_.dense(g, s);
      double* b = node_buf(dense_h_node(g));
      double* y = node_buf(sum_node(g));
      double* z = node_buf(gate_node(g));
      const double scale = q(kInput1).scale * pow2(-cell_.w_hh_fp[g]);  // 2^-(fh + fw)
      votes_.vote(dense_x_node(g), a, N, inputs_.dense_range(g, s), false);
      votes_.vote(dense_h_node(g), b, N, rnn::scaled_rows(acc_h.data() + gg * Hp_, 2 * Hp_, n, H, scale, b), false);
      votes_.vote(sum_node(g), y, N, rnn::sum_values(a, q(dense_x_node(g)), b, q(dense_h_node(g)), y, N), false);
      const TableOp op = TableOp::make(g == 2, votes_.fix_pos(sum_node(g)), kTableOutputFixPos, 0, 0);
      votes_.vote(gate_node(g), z, N, rnn::table_values(op, y, q(sum_node(g)), z, N), false);
    }
  }

  // it * cct, or ft * input_2 (input_2 read from the state of each active row).
  void input_product(int node) {
    const int64_t n = n_, H = seq_.hidden, N = n * H;
    double* out = node_buf(node);
    const FiniteRange r =
        node == kItCct ? rnn::product_values(node_buf(kIt), q(kIt), node_buf(kCct), q(kCct), out, N)
                       : rnn::product_rows(node_buf(kFt), q(kFt), c_rows_.data(), q(kInput2), n, H, out);
    votes_.vote(node, out, N, r, false);
  }

  // c_next, c_temp, h_next, and the new state of every active row.
  void tail(int64_t t) {
    const int64_t n = n_, H = seq_.hidden, N = n * H, T = seq_.steps;
    if (n == 0) return;
    double* cn = node_buf(kCNext);
    double* ct = node_buf(kCTemp);
    double* hn = node_buf(kHNext);
    votes_.vote(kCNext, cn, N, rnn::sum_values(node_buf(kItCct), q(kItCct), node_buf(kFtC), q(kFtC), cn, N), false);
    const TableOp op = TableOp::make(true, votes_.fix_pos(kCNext), kTableOutputFixPos, 0, 0);
    votes_.vote(kCTemp, ct, N, rnn::table_values(op, cn, q(kCNext), ct, N), false);
    votes_.vote(kHNext, hn, N, rnn::product_values(node_buf(kOt), q(kOt), ct, q(kCTemp), hn, N), false);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = active_[static_cast<size_t>(k)], L = len_[static_cast<size_t>(b)];
      const int64_t pos = seq_.reverse ? L - 1 - t : t;
      h_rows_[static_cast<size_t>(k)] = h_.row(b, H);
      c_rows_[static_cast<size_t>(k)] = c_.row(b, H);
      out_rows_[static_cast<size_t>(k)] = out_ + (b * T + pos) * H;
    }
    rnn::store_rows(hn, q(kHNext), n, H, h_rows_.data(), out_rows_.data(), fresh_ranges_.data());
    for (int64_t k = 0; k < n; ++k) h_.range[static_cast<size_t>(active_[static_cast<size_t>(k)])] = fresh_ranges_[static_cast<size_t>(k)];
    rnn::store_rows(cn, q(kCNext), n, H, c_rows_.data(), static_cast<TOut* const*>(nullptr), fresh_ranges_.data());
    for (int64_t k = 0; k < n; ++k) c_.range[static_cast<size_t>(active_[static_cast<size_t>(k)])] = fresh_ranges_[static_cast<size_t>(k)];
  }

  const CalibCell& cell_;
  const Sequence<TIn>& seq_;
  TOut* out_;
  double* h_n_;
  double* c_n_;
  int64_t Hp_;
  std::vector<int64_t> len_;
  NodeVotes votes_;
  rnn::CalibInputChunk<TIn> inputs_;
  CalibState h_, c_;
  // Written by the calling thread between sections, read by the tasks of a section.
  std::vector<int64_t> active_;
  std::vector<double*> h_rows_, c_rows_;
  std::vector<TOut*> out_rows_;
  std::vector<FiniteRange> fresh_ranges_;
  int64_t n_ = 0;
  AlignedArray<int16_t> hcodes_;       // [active][Hp]: input_1 codes
  AlignedArray<double> nodes_;         // [kBufferNodes][active][H]
  // The scratch of gate pack p (whichever thread runs it).
  AlignedArray<int64_t> acc_h_[2];
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

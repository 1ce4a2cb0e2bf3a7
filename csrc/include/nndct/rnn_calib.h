// What the calibration time loops of the recurrent cells (LSTM, GRU) share: the fake-quantization
// of a node at its running mode, the fused node loops (compute, store and min/max in one pass),
// the votes of every node, the recurrent states with their per-row ranges, and the input_0 votes
// and input projections of a chunk of time steps.
//
// One call of the reference's cell is one time step of one batch: every node computes its
// output in float from already fake-quantized inputs, scans it with the diffs search, adds the
// fix position to its histogram and fake-quantizes the output (floor) at the histogram's mode.
// Here each node's values are computed and min/max-scanned in one pass (NodeLoops below), the
// vote reads the values again only when the diffs search is not decided by its cap
// (diffs_fix_pos_in_range), and the consumers apply the node's fake-quantization on the fly
// (Quant), so no separate quantization pass runs. Matrix products are exact integer sums of codes
// (gate_matmul.h), so code sum * 2^-(fx + fw) is the very double the float dot product gives.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "nndct/calib.h"
#include "nndct/gate_matmul.h"
#include "nndct/grid.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_step_kernel.h"
#include "nndct/simd.h"

namespace nndct {
namespace rnn {

using lstm::kFpOffset;
using lstm::kFpSlots;
using lstm::Sequence;

// Q_fp of a node at its current mode: clamp(floor(x * 2^fp)) * 2^-fp + 0.0, the operations of
// the reference's floor fake-quantization. Before a node's first vote its values are all zeros
// and stay as they are: the identity below keeps a zero's sign (floor(+-0) = +-0, and
// +-0 + -0.0 = +-0).
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

// ---- the node loops: out[k] = f(...) for k < n (or rows of H), returning the values' range.
// The values of the node loops are always finite (they come from finite codes).

// A dense node from its exact integer sums: acc * scale (scale = 2^-(fx + fw)), plus bias[j] when
// given (one rounding, as the float cell's dot product + bias). acc rows are `stride` apart.
FiniteRange scaled_rows(const int64_t* acc, int64_t stride, int64_t rows, int64_t H, double scale, double* out);
FiniteRange biased_rows(const int64_t* acc, int64_t stride, int64_t rows, int64_t H, double scale,
                        const double* bias, double* out);
// Q(a) + Q(b), Q(a) - Q(b), Q(a) * Q(b).
FiniteRange sum_values(const double* a, Quant qa, const double* b, Quant qb, double* out, int64_t n);
FiniteRange difference_values(const double* a, Quant qa, const double* b, Quant qb, double* out, int64_t n);
FiniteRange product_values(const double* a, Quant qa, const double* b, Quant qb, double* out, int64_t n);
// a (contiguous rows of H) times the rows b[r] (a recurrent state read from each row).
FiniteRange product_rows(const double* a, Quant qa, const double* const* b, Quant qb, int64_t rows, int64_t H,
                         double* out);
// The table node of the step kernel (one definition for both modes) on the quantized input's
// codes; results on the 2^-15 grid.
FiniteRange table_values(const lstm::TableOp& t, const double* y, Quant qy, double* out, int64_t n);

// The new state of every row: dst[r] = Q(src row r), also written to out[r] when out is given,
// and the range of each row (the next step's input votes combine them).
void store_rows(const double* src, Quant q, int64_t rows, int64_t H, double* const* dst, double* const* out,
                FiniteRange* ranges);
void store_rows(const double* src, Quant q, int64_t rows, int64_t H, double* const* dst, float* const* out,
                FiniteRange* ranges);

// The codes of Q(x) as int16 (the operands of the exact products).
void codes16(const double* x, Quant q, int16_t* out, int64_t n);
void codes16(const float* x, Quant q, int16_t* out, int64_t n);

// The range of user values (x, h0, c0): NaN and +-inf are left out of the min / max and counted
// as non-finite, as the diffs search does.
FiniteRange input_range(const double* x, int64_t n);
FiniteRange input_range(const float* x, int64_t n);

// Every node's histogram [nodes][kFpSlots] (the caller's counts, updated in place), its mode
// kept up to date per vote, and the node's Quant at that mode. The modes are read from the
// counts when a call starts, so a caller may swap or merge histograms between calls.
class NodeVotes {
 public:
  // node_bits[k]: node k's own bit width (mixed widths; nullptr or 0: bit_width).
  NodeVotes(int64_t* counts, int nodes, int bit_width, int search_range, int max_fix_pos,
            const int* node_bits = nullptr);

  // The scan of one node's output: a diffs search when it holds a non-zero value, the vote, and
  // the node's new Quant. `v` is only read when the search has candidates to compare (never for
  // inputs: search range 1).
  void vote(int node, const double* v, int64_t n, const FiniteRange& r, bool is_input);
  const Quant& quant(int node) const { return quant_[static_cast<size_t>(node)]; }
  // The fix position a table node reads its input at: the mode, or max_fix_pos before a vote.
  int fix_pos(int node) const;

 private:
  Quant make_quant(int node, int slot) const;
  int64_t* counts_;
  int bit_width_, search_range_, max_fix_pos_;
  lstm::CodeRange range_;
  std::vector<int> bits_;  // per node
  std::vector<int> mode_;  // slot of the mode; -1 before any vote
  std::vector<Quant> quant_;
};

// One recurrent state (h, or the LSTM's c) of every row during calibration: the fake-quantized
// value its last step stored (raw h0 / c0 before the first step) and each row's range.
struct CalibState {
  std::vector<double> v;          // [batch][hidden]
  std::vector<FiniteRange> range;  // [batch]
  void init(const double* initial, int64_t batch, int64_t hidden);
  double* row(int64_t b, int64_t hidden) { return v.data() + b * hidden; }
  // The range of the active rows' values (one vote over all of them).
  FiniteRange active_range(const int64_t* active, int64_t n) const;
};

// A calibration cell's input side: the weight codes packed for gate_matmul in packs of gates
// that different threads can run (each pack's gates are consecutive gate blocks of W_ih), the
// weight fix positions, and the fake-quantized bias values.
struct CalibInput {
  // pack_gates[p]: the gates of pack p (summing to the cell's gates), in gate order.
  CalibInput(int64_t input_size, int64_t units, const int32_t* w_codes, const int* w_fp, const double* bias,
             const std::vector<int>& pack_gates);
  std::vector<PackedGates> packs;
  std::vector<int> first_gate;  // the first gate of each pack
  std::vector<int> w_fp;        // per gate
  std::vector<double> bias;     // [gates * units]
  int gates() const { return static_cast<int>(w_fp.size()); }
};

// input_0 of a chunk of time steps and its input projections (the dense_x nodes): one vote per
// step (x only), the codes of the quantized x, and every gate's dense-with-bias values of every
// position of the chunk with their range per step.
template <typename TIn>
class CalibInputChunk {
 public:
  CalibInputChunk(const CalibInput& input, const Sequence<TIn>& seq, const std::vector<int64_t>& len);
  // Steps per chunk (about kChunkPositions positions).
  int64_t chunk() const { return chunk_; }
  // Votes input_0 (node `input_node`) of steps [t0, t1) and takes the codes of x.
  void scan(int64_t t0, int64_t t1, NodeVotes& votes, int input_node);
  // The dense-with-bias values of pack p for every position of the chunk (thread-safe for
  // different packs).
  void project(int p);
  // Gate g's dense-with-bias values at step s of the chunk: the active rows of the step in row
  // order, [active][H]; and their range.
  const double* dense(int g, int64_t s) const;
  const FiniteRange& dense_range(int g, int64_t s) const;

 private:
  const TIn* row_x(int64_t b, int64_t t) const;
  const CalibInput& in_;
  const Sequence<TIn>& seq_;
  const std::vector<int64_t>& len_;
  int64_t Ip_, chunk_, positions_, steps_ = 0;
  std::vector<int64_t> first_;          // first chunk position of each step of the chunk
  std::vector<Quant> xquant_;           // input_0's Quant at each step of the chunk
  AlignedArray<int16_t> xcodes_;        // [chunk positions][Ip]
  AlignedArray<double> ax_;             // [gates][chunk positions][H]
  std::vector<FiniteRange> ax_range_;   // [chunk steps][gates]
  struct PackScratch {
    AlignedArray<int64_t> acc;
    std::vector<const int16_t*> in_rows;
    std::vector<int64_t*> acc_rows;
  };
  std::vector<PackScratch> scratch_;    // per pack
};

}  // namespace rnn
}  // namespace nndct

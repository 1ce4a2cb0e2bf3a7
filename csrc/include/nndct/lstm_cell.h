// The quantized StandardLstmCell of the reference RNN quantizer, run over whole sequences.
//
// Why here and not in Python: the reference unrolls every time step in Python, which makes a
// 500-step sequence thousands of times slower than the float LSTM. Here the input projections of
// all steps are computed at once and the time loop runs in C++, on integer codes, so the result is
// exactly what the integer hardware computes (no float accumulation error anywhere).
//
// Node order (it defines the node index everywhere: quant_info.json, dumps, xmodel):
//   0 input_0 (x), 1 input_1 (h_prev), 2 input_2 (c_prev),
//   for gate k in (i, f, g, o): 3+3k  w_ik * input_0 + bias_k   (dense with bias)
//                               4+3k  w_hk * input_1            (dense, no bias)
//                               5+3k  y_k                       (add)
//   15 it (sigmoid), 16 ft (sigmoid), 17 cct (tanh), 18 ot (sigmoid),
//   19 it*cct, 20 ft*input_2, 21 c_next, 22 c_temp (tanh), 23 h_next.
#pragma once

#include <cstdint>
#include <vector>

namespace nndct {
namespace lstm {

constexpr int kNumNodes = 24;
constexpr int kNumGates = 4;

enum NodeIndex : int {
  kInput0 = 0, kInput1 = 1, kInput2 = 2,
  kIt = 15, kFt = 16, kCct = 17, kOt = 18,
  kItCct = 19, kFtC = 20, kCNext = 21, kCTemp = 22, kHNext = 23,
};
inline int dense_x_node(int gate) { return 3 + 3 * gate; }
inline int dense_h_node(int gate) { return 4 + 3 * gate; }
inline int sum_node(int gate) { return 5 + 3 * gate; }
inline int gate_node(int gate) { return 15 + gate; }

// Fix positions of one cell: the 24 node outputs and the 12 parameters.
struct CellFix {
  int bit_width = 16;
  int node[kNumNodes] = {};
  int w_ih[kNumGates] = {};
  int w_hh[kNumGates] = {};
  int bias[kNumGates] = {};
};

// Sizes and memory of one sequence batch. Arrays are C-contiguous.
struct SequenceBatch {
  int64_t batch = 0, steps = 0, input_size = 0, hidden = 0;
  const double* x = nullptr;        // [batch, steps, input_size]
  const int64_t* lengths = nullptr; // [batch]; nullptr means every sequence has `steps` steps
  const double* h0 = nullptr;       // [batch, hidden]; nullptr means zeros
  const double* c0 = nullptr;       // [batch, hidden]; nullptr means zeros
  bool reverse = false;             // backward direction: step t reads position length-1-t
};

// Per-step integer codes of batch element 0, for the deploy-check dumps.
struct StepRecord {
  std::vector<int32_t> input0;  // [steps, input_size]
  std::vector<int32_t> nodes;   // [steps, kNumNodes - 1, hidden] for nodes 1..23
  int64_t steps_recorded = 0;
};

// Test mode: the integer datapath. Weights are codes at their fix positions, gate-major rows
// ([4H, I] and [4H, H], gates i, f, g, o); bias codes [4H] at the bias fix positions.
// Writes h_next of every valid step to out [batch, steps, hidden] (zeros past a sequence's
// length) and the final states to h_n, c_n [batch, hidden]. `record` may be nullptr.
void fixed_forward(const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih_codes,
                   const int32_t* w_hh_codes, const int32_t* bias_codes, double* out,
                   double* h_n, double* c_n, StepRecord* record, int num_threads);

// Calibration mode: the reference's fake-quantized float forward. Every node output of every
// step is scanned with diffs (search range 1 for the three inputs, `search_range` otherwise,
// floor rounding, fix position capped at `max_fix_pos`), the per-call fix position is added to
// the node's histogram `fp_counts` [kNumNodes, kFpSlots] (slot = fp + kFpOffset), and the output is
// fake-quantized at the histogram's mode (most frequent, smallest on ties). All-zero outputs carry
// no range information and do not vote. Weights and biases are given already fake-quantized.
constexpr int kFpOffset = 128;
constexpr int kFpSlots = 256;
void calibrate_forward(int bit_width, int search_range, int max_fix_pos, const SequenceBatch& seq,
                       const double* w_ih, const double* w_hh, const double* bias,
                       int64_t* fp_counts, double* out, double* h_n, double* c_n);

// The mode of a fix-position histogram row; returns false when it is empty.
bool histogram_mode(const int64_t* counts, int* fix_pos);

}  // namespace lstm
}  // namespace nndct

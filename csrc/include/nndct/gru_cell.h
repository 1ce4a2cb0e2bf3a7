// The quantized StandardGruCell, run over whole sequences (the GRU twin of lstm_cell.h).
//
// Why two variants: PyTorch's nn.GRU (and Keras' GRU with reset_after=True, its default) apply the
// reset gate after the recurrent product, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); Keras'
// GRU with reset_after=False applies it before, n = tanh(W_in x + b_in + W_hn (r * h)). The two
// are different computations, so each has its own graph; both have 19 nodes and share every index
// but the two nodes of the candidate's recurrent branch (11 and 12).
//
// Node order (it defines the node index everywhere: quant_info.json, dumps, xmodel). Gate letters
// follow the reference's basic_gru graph: i = reset r, f = update z, g = candidate n.
//   0 input_0 (x), 1 input_1 (h_prev),
//   2 w_ii * input_0 + bias_ii   3 w_hi * input_1 + bias_hi   4 y_i
//   5 w_if * input_0 + bias_if   6 w_hf * input_1 + bias_hf   7 y_f
//   8 it (sigmoid, r), 9 ft (sigmoid, z),
//   10 w_ig * input_0 + bias_ig
//   reset after:  11 w_hg * input_1 + bias_hg   12 it*(w_hg * input_1 + bias_hg)
//   reset before: 11 it*input_1                 12 w_hg * (it*input_1)
//   13 y_g, 14 cct (tanh, n), 15 ft*cct, 16 cct-ft*cct, 17 ft*input_1, 18 h_next
//   (h_next = (1 - z) * n + z * h, computed as n - z*n + z*h as in the reference's graph).
// The reset-before variant has one bias per gate, on the input side (nodes 2, 5, 10); its
// recurrent dense nodes 3, 6 and 12 have none.
#pragma once

#include <cstdint>

#include "nndct/lstm_cell.h"

namespace nndct {
namespace gru {

constexpr int kNumNodes = 19;
constexpr int kNumGates = 3;  // r, z, n (the rows of W_ih / W_hh in PyTorch order)

enum class Variant : int { kResetAfter = 0, kResetBefore = 1 };

enum NodeIndex : int {
  kInput0 = 0, kInput1 = 1,
  kYr = 4, kYz = 7, kR = 8, kZ = 9,
  kDenseXn = 10, kYn = 13, kN = 14, kZN = 15, kNMinusZN = 16, kZH = 17, kHNext = 18,
};
inline int dense_x_node(int gate) { return gate == 2 ? 10 : 2 + 3 * gate; }
// The recurrent dense node of a gate (reset-before: the candidate's is the product with r * h).
inline int dense_h_node(Variant v, int gate) {
  if (gate < 2) return 3 + 3 * gate;
  return v == Variant::kResetAfter ? 11 : 12;
}
// The node multiplying by the reset gate: r * (W_hn h + b_hn) or r * h.
inline int reset_product_node(Variant v) { return v == Variant::kResetAfter ? 12 : 11; }
inline int sum_node(int gate) { return gate == 2 ? kYn : 4 + 3 * gate; }

// Fix positions of one cell: the 19 node outputs and the parameters (b_hh unused for reset-before).
struct CellFix {
  int bit_width = 16;
  int node[kNumNodes] = {};
  int w_ih[kNumGates] = {};
  int w_hh[kNumGates] = {};
  int b_ih[kNumGates] = {};
  int b_hh[kNumGates] = {};
};

using SequenceBatch = lstm::SequenceBatch;  // c0 is unused (a GRU has no cell state)
using StepRecord = lstm::StepRecord;        // nodes: [steps, kNumNodes - 1, hidden]

// Test mode: the integer datapath. Weights are codes at their fix positions, gate-major rows in
// PyTorch order r, z, n ([3H, I] and [3H, H]); bias codes [3H] (nullptr: none). Writes h_next of
// every valid step to out [batch, steps, hidden] (zeros past a sequence's length) and the final
// state to h_n [batch, hidden]. `record` may be nullptr.
void fixed_forward(Variant variant, const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih,
                   const int32_t* w_hh, const int32_t* b_ih, const int32_t* b_hh, double* out, double* h_n,
                   StepRecord* record, int num_threads);

// Calibration mode: the reference's fake-quantized float cell, as lstm::calibrate_forward (every
// node's per-step diffs fix position voted into fp_counts [kNumNodes, lstm::kFpSlots], outputs
// floored at the running mode). Weights and biases are given already fake-quantized; b_ih / b_hh
// may be nullptr (no bias).
void calibrate_forward(Variant variant, int bit_width, int search_range, int max_fix_pos,
                       const SequenceBatch& seq, const double* w_ih, const double* w_hh, const double* b_ih,
                       const double* b_hh, int64_t* fp_counts, double* out, double* h_n);

}  // namespace gru
}  // namespace nndct

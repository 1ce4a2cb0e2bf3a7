// The quantized StandardGruCell: node numbering, variants and fix positions (the GRU twin of
// lstm_cell.h).
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
// `node_bits[k]` is node k's own bit width (mixed widths; 0: `bit_width`), as lstm::CellFix.
struct CellFix {
  int bit_width = 16;
  int node[kNumNodes] = {};
  int node_bits[kNumNodes] = {};
  int bits(int k) const { return node_bits[k] ? node_bits[k] : bit_width; }
  int w_ih[kNumGates] = {};
  int w_hh[kNumGates] = {};
  int b_ih[kNumGates] = {};
  int b_hh[kNumGates] = {};
};

template <typename T>
using Sequence = lstm::Sequence<T>;         // c0 is unused (a GRU has no cell state)
using SequenceBatch = lstm::SequenceBatch;
using StepRecord = lstm::StepRecord;        // nodes: [steps, kNumNodes - 1, hidden]

// The time loops on prepared cells are gru_loops.h's; their portable scalar definitions are
// gru_reference.h's.

}  // namespace gru
}  // namespace nndct

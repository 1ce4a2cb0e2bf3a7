// The quantized StandardLstmCell of the reference RNN quantizer: node numbering, fix positions
// and the sequence-batch description shared by the time loops (lstm_loops.h).
//
// Why in C++ and not in Python: the reference unrolls every time step in Python, which makes a
// 500-step sequence thousands of times slower than the float LSTM. Here the time loop runs in
// C++, on integer codes, so the result is exactly what the integer hardware computes (no float
// accumulation error anywhere).
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

// Fix positions of one cell: the 24 node outputs and the 12 parameters. `node_bits[k]` is node
// k's own bit width (mixed widths; 0: `bit_width`); parameters arrive as codes, so their widths
// only bound the codes the caller gives.
struct CellFix {
  int bit_width = 16;
  int node[kNumNodes] = {};
  int node_bits[kNumNodes] = {};
  int bits(int k) const { return node_bits[k] ? node_bits[k] : bit_width; }
  int w_ih[kNumGates] = {};
  int w_hh[kNumGates] = {};
  int bias[kNumGates] = {};
};

// Sizes and memory of one sequence batch. Arrays are C-contiguous; T is float or double (the
// values are read exactly either way: a float converts to double without rounding).
template <typename T>
struct Sequence {
  int64_t batch = 0, steps = 0, input_size = 0, hidden = 0;
  const T* x = nullptr;             // [batch, steps, input_size]
  const int64_t* lengths = nullptr; // [batch]; nullptr means every sequence has `steps` steps
  const double* h0 = nullptr;       // [batch, hidden]; nullptr means zeros
  const double* c0 = nullptr;       // [batch, hidden]; nullptr means zeros
  bool reverse = false;             // backward direction: step t reads position length-1-t
};
using SequenceBatch = Sequence<double>;

// Per-step integer codes of batch element 0, for the deploy-check dumps.
struct StepRecord {
  std::vector<int32_t> input0;  // [steps, input_size]
  std::vector<int32_t> nodes;   // [steps, kNumNodes - 1, hidden] for nodes 1..23
  int64_t steps_recorded = 0;
};

// Calibration's fix-position histograms: slot = fp + kFpOffset.
constexpr int kFpOffset = 128;
constexpr int kFpSlots = 256;

// The mode of a fix-position histogram row; returns false when it is empty.
bool histogram_mode(const int64_t* counts, int* fix_pos);

}  // namespace lstm
}  // namespace nndct

// The time loops of the quantized StandardGruCell (test mode and calibration), over whole
// sequence batches, on cells prepared once per weight set: the GRU on the LSTM's layout
// (lstm_loops.h), with its input projections, work split and calibration node machinery from the
// shared headers rnn_fixed_run.h and rnn_calib.h.
//
// What differs from the LSTM: three gates (r, z, n), no cell state, and the candidate's
// recurrent branch. Reset-after (PyTorch, Keras' default) multiplies r into W_hn h + b_hn, so all
// three recurrent products read the state and run as one gate_matmul; reset-before (Keras
// reset_after=False) multiplies W_hn by r * h, a second product per step that needs the reset
// gate of every unit first (two step phases; unit slices synchronise between them).
#pragma once

#include <cstdint>
#include <vector>

#include "nndct/gate_matmul.h"
#include "nndct/gru_cell.h"
#include "nndct/gru_step_kernel.h"
#include "nndct/rnn_calib.h"
#include "nndct/rnn_fixed_run.h"

namespace nndct {
namespace gru {

// Test mode's cell, prepared once. Weights are codes at their fix positions, gate-major rows in
// PyTorch order r, z, n ([3H, I] and [3H, H]); bias codes [3H] (nullptr: none; b_hh is ignored
// for reset-before). Every code must fit the bit width (<= 16).
struct FixedCell {
  FixedCell(Variant variant, const CellFix& fix, int64_t input_size, int64_t hidden, const int32_t* w_ih_codes,
            const int32_t* w_hh_codes, const int32_t* b_ih_codes, const int32_t* b_hh_codes);
  Variant variant;
  CellFix fix;
  int64_t input_size, hidden;
  rnn::InputProjection input;    // W_ih, b_ih and the dense_x nodes
  PackedGates w_hh;              // reset-after: r, z, n; reset-before: r, z
  PackedGates w_hn;              // reset-before only: n (multiplies node 11's codes)
  AlignedArray<int32_t> b_hh;    // [3][padded units] recurrent bias codes (zeros where none)
  StepPlan plan;
  int64_t padded_units() const { return w_hh.padded_units(); }
};

// Test mode: the integer datapath over a sequence batch, on up to `num_threads` threads of the
// thread team (the results never depend on it). Writes h_next of every valid step to out
// [batch, steps, hidden] (zeros past a sequence's length) and the final states to h_n
// [batch, hidden]. `record` may be nullptr.
template <typename TIn, typename TOut>
void fixed_forward(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, StepRecord* record,
                   int num_threads);

// Calibration's cell, prepared once: the fake-quantized weights are codes times one power of two
// per gate block, packed as int16 codes one gate per pack (r, z, n), with their fix positions;
// bias values (fake-quantized, zeros where none) are added in double after the exact product.
struct CalibCell {
  CalibCell(Variant variant, int bit_width, int search_range, int max_fix_pos, int64_t input_size, int64_t hidden,
            const int32_t* w_ih_codes, const int32_t* w_hh_codes, const int* w_ih_fp, const int* w_hh_fp,
            const double* b_ih, const double* b_hh, const int* node_bits = nullptr);
  Variant variant;
  int bit_width, search_range, max_fix_pos;
  int node_bits[kNumNodes] = {};  // each node's bit width (0: bit_width)
  int64_t input_size, hidden;
  rnn::CalibInput input;          // W_ih in packs (r, z) and (n), and b_ih
  PackedGates w_hh[kNumGates];    // one gate each
  int w_hh_fp[kNumGates];
  std::vector<double> b_hh;       // [3H] (reset-after; empty for reset-before or without bias)
};

// Calibration mode: the reference's fake-quantized float forward (every node of every step
// scanned with diffs, its fix position voted into fp_counts [kNumNodes, lstm::kFpSlots], the
// output floored at the node's running mode), as lstm::calibrate_forward.
template <typename TIn, typename TOut>
void calibrate_forward(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* fp_counts, TOut* out, double* h_n,
                       int num_threads);

}  // namespace gru
}  // namespace nndct

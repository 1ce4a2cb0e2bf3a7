// The time loops of the quantized StandardLstmCell (test mode and calibration), over whole
// sequence batches, on cells prepared once per weight set.
//
// Why prepared cells: packing the weights (int16 codes in gate_matmul.h's layout) and planning
// the node shifts cost as much as several time steps at batch 1; a cell is prepared when its fix
// positions are known and reused by every forward call.
//
// Work split: batch rows are independent, and within a step the units of a cell are independent
// once the recurrent product is known, so a test-mode forward runs (a) slices of the batch as
// independent tasks (no synchronisation at all), or (b) slices of the units, one section of
// tasks per time step (batch 1 at large hidden sizes), or (c) everything on the calling thread
// when the work would not pay for a hand-off. Calibration runs its two gate packs as the two
// tasks of a section per step. Tasks go to thread_team.h's helpers, which the caller never
// waits for unless they have started a task. The results never depend on the split.
#pragma once

#include <cstdint>
#include <vector>

#include "nndct/gate_matmul.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_step_kernel.h"
#include "nndct/rnn_calib.h"
#include "nndct/rnn_fixed_run.h"

namespace nndct {
namespace lstm {

// Test mode's cell, prepared once: the weight codes packed for gate_matmul.h (int16), the bias
// codes, and the per-node shift plans. Weights are codes at their fix positions, gate-major rows
// ([4H, I] and [4H, H], gates i, f, g, o); bias codes [4H] at the bias fix positions (nullptr:
// no bias). Every code must fit the bit width (<= 16).
struct FixedCell {
  FixedCell(const CellFix& fix, int64_t input_size, int64_t hidden, const int32_t* w_ih_codes,
            const int32_t* w_hh_codes, const int32_t* bias_codes);
  CellFix fix;
  int64_t input_size, hidden;
  rnn::InputProjection input;  // W_ih, the bias and the dense_x nodes
  PackedGates w_hh;
  StepPlan plan;
};

// Test mode: the integer datapath over a sequence batch, on up to `num_threads` threads of the
// thread team (fewer, or one, where the work per step would not pay for the hand-offs; the
// results never depend on it). Writes h_next of every valid step to out [batch, steps, hidden]
// (zeros past a sequence's length) and the final states to h_n, c_n [batch, hidden].
// `record` may be nullptr.
template <typename TIn, typename TOut>
void fixed_forward(const FixedCell& cell, const Sequence<TIn>& seq, TOut* out, double* h_n, double* c_n,
                   StepRecord* record, int num_threads);

// Calibration mode: the reference's fake-quantized float forward. Every node output of every
// step is scanned with diffs (search range 1 for the three inputs, `search_range` otherwise,
// floor rounding, fix position capped at `max_fix_pos`), the per-call fix position is added to
// the node's histogram `fp_counts` [kNumNodes, kFpSlots] (slot = fp + kFpOffset), and the output is
// fake-quantized at the histogram's mode (most frequent, smallest on ties). All-zero outputs carry
// no range information and do not vote.
// Calibration's cell, prepared once: the fake-quantized weights are codes times one power of
// two per gate block, so they are packed as int16 codes for gate_matmul.h (each thread of a
// step runs two gates, hence two packs of two gates) with their fix positions; the bias values
// are added in double after the exact product, as the float cell does.
struct CalibCell {
  CalibCell(int bit_width, int search_range, int max_fix_pos, int64_t input_size, int64_t hidden,
            const int32_t* w_ih_codes, const int32_t* w_hh_codes, const int* w_ih_fp, const int* w_hh_fp,
            const double* bias, const int* node_bits = nullptr);
  int bit_width, search_range, max_fix_pos;
  int node_bits[kNumNodes] = {};  // each node's bit width (0: bit_width)
  int64_t input_size, hidden;
  rnn::CalibInput input;         // W_ih in packs (i, f) and (g, o), and the bias
  PackedGates w_hh[2];           // gates (i, f) and (g, o)
  int w_hh_fp[kNumGates];
};

template <typename TIn, typename TOut>
void calibrate_forward(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* fp_counts, TOut* out,
                       double* h_n, double* c_n, int num_threads);

}  // namespace lstm
}  // namespace nndct

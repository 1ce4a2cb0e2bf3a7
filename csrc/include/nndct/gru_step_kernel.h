// One time step of the integer StandardGruCell for rows of a batch, as loops over the hidden
// units that the compiler vectorizes (the GRU twin of lstm_step_kernel.h, built on its Shift,
// TableOp and DenseBiasPlan: every shift, clamp and table saturation depends only on the cell's
// fix positions, so StepPlan decides them once per cell). The matrix products are
// gate_matmul.h's exact int64 sums.
//
// A step is two loops around the candidate's recurrent product, because in the reset-before
// variant that product reads r * h, which needs the reset gate of the same step:
//   gate_rows:      the recurrent dense nodes of r and z (+ b_hr, b_hz), y_i, y_f, it, ft
//                   (reset-before: also node 11 = it * input_1, the operand of W_hn);
//   (reset-before: the caller multiplies node 11's codes by W_hn)
//   candidate_rows: the candidate's recurrent node (reset-after: W_hn h + b_hn, then node 12 =
//                   it * that; reset-before: node 12 = W_hn (it * input_1)), y_g, cct, ft*cct,
//                   cct-ft*cct, ft*input_1, h_next, the output and the next state.
// When every intermediate provably fits int32 (StepPlan::narrow, true for the fix positions
// calibration produces) the loops run in 32-bit lanes; the results are the same integers. The
// GRU tests compare every node code with an independent step-by-step reference and with the
// portable scalar loop (gru_reference.h).
#pragma once

#include <cstdint>

#include "nndct/gru_cell.h"
#include "nndct/lstm_step_kernel.h"

namespace nndct {
namespace gru {

using lstm::DenseBiasPlan;
using lstm::Shift;
using lstm::TableOp;

struct StepPlan {
  Variant variant = Variant::kResetAfter;
  int64_t lo = 0, hi = 0;   // the code range of the cell's bit width
  // Each node's own code range (mixed widths: CellFix::bits); the step clamps node k to these.
  int64_t node_lo[kNumNodes] = {}, node_hi[kNumNodes] = {};
  // Recurrent sums -> dense nodes: r, z, and n (reset-after: W_hn h + b_hn, node 11;
  // reset-before: W_hn (r * h), node 12, whose sum sits at fix(node 11) + fix(w_hh n)).
  DenseBiasPlan dense_h[kNumGates];
  // y = a + b and the table: r (nodes 2 + 3 -> 4 -> 8), z (5 + 6 -> 7 -> 9), n (10 + 12 -> 13 -> 14).
  struct Gate {
    Shift a_to_sum, b_to_sum, sum_to_y;
    TableOp table;
  } gate[kNumGates];
  Shift reset;                          // it * (node 11 | input_1) -> the reset product node
  Shift zn;                             // ft * cct -> ft*cct
  Shift n_to_sub, zn_to_sub, sub_to_d;  // cct - ft*cct -> cct-ft*cct
  Shift zh;                             // ft * input_1 -> ft*input_1
  Shift d_to_sum, zh_to_sum, sum_to_hn; // cct-ft*cct + ft*input_1 -> h_next
  Shift hn_to_h;                        // h_next -> input_1 (the next step's state)
  // Every intermediate of a step fits int32: codes of at most 16 bits (every node's width) are shifted left by at
  // most 14 (sums and differences: at most 14 in all), products of two codes (< 2^31) only
  // shifted right. Then the loops run in 32-bit lanes (twice the lanes per vector).
  bool narrow = false;
  static StepPlan make(Variant variant, const CellFix& fix);
};

// One row of a step, pointers offset to the first unit the caller owns (so that threads can own
// disjoint units); gate g of a gate-major array sits at + g * gate_stride.
//   a       dense-with-bias codes of the input side (r, z, n)
//   acc     the recurrent sums (int64, exact): r, z, and n (reset-after: W_hn h; reset-before:
//           W_hn (r * h), filled between gate_rows and candidate_rows)
//   b_hh    the recurrent bias codes (r, z, n), never nullptr: zeros where the cell has none
//           (reset-before, or no bias; a zero bias gives the codes of no bias)
//   h       the state codes this step reads (input_1), int16
//   h_next  the next state codes (h_next requantized to input_1), int16
//   gates   it and ft codes, [2][gate_stride] (written by gate_rows, read by candidate_rows)
//   rh      reset-before: node 11's codes (it * input_1) as int16, the operand of W_hn
//   codes   nullptr, or where to record the node codes: node k of unit u at codes[k * code_stride + u]
//           (node 0, input_0, is left alone)
struct StepRow {
  const int32_t* a;
  const int64_t* acc;
  const int32_t* b_hh;
  const int16_t* h;
  int16_t* h_next;
  int32_t* gates;
  int16_t* rh;
  int32_t* codes;
};

// The first loop of a step for m rows over units [0, n) (see above). Rows that record (codes
// given) run in 64-bit lanes one by one; the others in 32-bit lanes when plan.narrow.
void gate_rows(const StepPlan& plan, int64_t n, int64_t gate_stride, int64_t code_stride, const StepRow* rows,
               int64_t m);
// The second loop: outs[k] receives row k's h_next values (code * h_scale), T = float or double.
template <typename T>
void candidate_rows(const StepPlan& plan, int64_t n, int64_t gate_stride, int64_t code_stride, const StepRow* rows,
                    T* const* outs, int64_t m, double h_scale);

}  // namespace gru
}  // namespace nndct

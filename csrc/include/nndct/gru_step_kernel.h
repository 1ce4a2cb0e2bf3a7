// One time step of the integer StandardGruCell for one batch row, as loops over the hidden units
// that the compiler can vectorize (the GRU twin of lstm_step_kernel.h, built on its Shift,
// TableOp and DenseBiasPlan: every shift, clamp and table saturation depends only on the cell's
// fix positions, so StepPlan decides them once per cell).
//
// A step is split in two around the candidate's recurrent product, because in the reset-before
// variant that product reads r * h, which needs the reset gate of the same step:
//   step_gates:  input_1, the recurrent dense nodes of r and z (and, reset-after, of n), y_i, y_f,
//                it, ft, the dense_x copies, and the reset product (node 12, or node 11 = r * h);
//   (reset-before: the caller multiplies node 11 by W_hn and fills node 12 with dense_bias_codes)
//   step_output: y_g, cct, ft*cct, cct-ft*cct, ft*input_1, h_next and the next state.
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
  int64_t lo = 0, hi = 0;   // the code range of the bit width
  // Recurrent accumulators -> dense nodes: r, z, and n (reset-after: W_hn h + b_hn, node 11;
  // reset-before: W_hn (r * h), node 12, whose accumulator sits at fix(node 11) + fix(w_hh n)).
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
  static StepPlan make(Variant variant, const CellFix& fix);
};

// Phase 1 of a step of one row. `a`: the dense-with-bias codes of this position [3H] (r, z, n);
// `acc`: the recurrent accumulators (exact integers) (reset-after [3H], reset-before [2H]: r, z); `b_hh`: the
// recurrent bias codes [3H] or nullptr; `h`: the row's state codes (doubles); `codes`: the node
// codes [kNumNodes][H] of this step (node 0 is left alone).
void step_gates(const StepPlan& plan, int64_t H, const int32_t* a, const int64_t* acc, const int32_t* b_hh,
                const double* h, int32_t* codes);

// Phase 2: from nodes 8-12 to h_next; replaces `h` with the next state.
void step_output(const StepPlan& plan, int64_t H, double* h, int32_t* codes);

}  // namespace gru
}  // namespace nndct

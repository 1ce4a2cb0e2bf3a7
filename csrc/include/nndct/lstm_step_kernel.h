// One time step of the integer StandardLstmCell for one batch row, as loops over the hidden units
// that the compiler can vectorize (the matrix products are gate_matmul.h's).
//
// Why a second form of lstm_int_ops.h: there every node op is a scalar function that decides per
// call whether its shift goes left or right and whether a table input saturates. Those decisions
// depend only on the cell's fix positions, so StepPlan makes them once per cell, and the per-unit
// work becomes branch-free selects, shifts and table gathers. The results are the same integers:
// the LSTM tests check every node code of the test-mode loop against the golden dumps and an
// independent step-by-step reference (16 and 8 bit, several fix-position layouts).
#pragma once

#include <cstdint>

#include "nndct/lstm_cell.h"

namespace nndct {
namespace lstm {

// floor(v * 2^(to - from)) as `(v << left) >> right`: one of the two is zero; right is capped
// at 63, where an arithmetic shift gives the floor (-1 or 0) that shift_floor gives.
struct Shift {
  int left = 0, right = 0;
  static Shift between(int from, int to);
};

// A table node: the input code at fix position `fin` indexes a 2048-entry table, the output
// (a code on the 2^-15 grid) is then requantized to `fout` when that is coarser (table_output).
struct TableOp {
  const int64_t* table = nullptr;  // the int64 copy of the sigmoid or tanh table (gathered)
  int64_t in_lo = 0, in_hi = 0;    // clamp of the input before the index shift (saturation)
  Shift index;                     // input code -> table step k
  int32_t high = 0, low = 0;       // outputs for k >= 1024 and k < -1024
  Shift out;                       // 2^-15 grid -> fout (identity when fout >= 15)
  int64_t out_lo = 0, out_hi = 0;  // clamp of the output (none when fout >= 15)
  static TableOp make(bool is_tanh, int fin, int fout, int64_t code_lo, int64_t code_hi);
};

// (v << left) >> right on int64 (the left shift done unsigned, so negative codes are defined).
inline int64_t shifted(int64_t v, int left, int right) {
  return static_cast<int64_t>(static_cast<uint64_t>(v) << left) >> right;
}

inline int64_t clamped(int64_t v, int64_t lo, int64_t hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// The table node's output code for input code y, branch-free (the loops inline this form with
// the fields in locals).
inline int64_t table_value(const int64_t* table, int64_t y, int64_t in_lo, int64_t in_hi, int il, int ir,
                           int32_t high, int32_t low, int ol, int orr, int64_t out_lo, int64_t out_hi) {
  const int64_t k = shifted(clamped(y, in_lo, in_hi), il, ir);
  int64_t v = table[clamped(k, -1024, 1023) + 1024];
  v = k >= 1024 ? high : v;
  v = k < -1024 ? low : v;
  return clamped(shifted(v, ol, orr), out_lo, out_hi);
}
inline int64_t table_value(const TableOp& t, int64_t y) {
  return table_value(t.table, y, t.in_lo, t.in_hi, t.index.left, t.index.right, t.high, t.low, t.out.left,
                     t.out.right, t.out_lo, t.out_hi);
}

// Everything one step needs that depends only on the cell's fix positions.
struct StepPlan {
  int64_t lo = 0, hi = 0;  // the code range of the cell's bit width
  // Each node's own code range (mixed widths: CellFix::bits); the step clamps node k to these.
  int64_t node_lo[kNumNodes] = {}, node_hi[kNumNodes] = {};
  struct Gate {
    Shift acc_to_b;             // recurrent accumulator (input_1 + w_hh) -> dense_h node
    Shift a_to_sum, b_to_sum;   // dense_x / dense_h -> their common position
    Shift sum_to_y;             // common position -> the sum node
    TableOp table;              // sum node -> gate node
    int64_t b_lo = 0, b_hi = 0, y_lo = 0, y_hi = 0;  // code ranges of dense_h and the sum node
  } gate[kNumGates];
  Shift ig, fc;               // it * cct -> it_cct;  ft * c -> ft_c
  Shift ig_to_sum, fc_to_sum, sum_to_cn;
  TableOp c_temp;             // c_next -> c_temp (tanh)
  Shift hn;                   // ot * c_temp -> h_next
  Shift hn_to_h, cn_to_c;     // h_next -> input_1, c_next -> input_2 (the next step's state)
  // Every intermediate of a step fits int32: codes of at most 16 bits are shifted left by at
  // most 14 (sums: at most 14 in all), and products of two codes (< 2^31) only shifted right.
  // Then step_rows runs in 32-bit lanes (twice the lanes per vector); true for the fix
  // positions calibration produces (everything aligned to h_next's position).
  bool narrow = false;
  static StepPlan make(const CellFix& fix);
};

// The dense-with-bias node of one gate (input projection): Q_fa(Q_fa(acc) + bias), the bias at
// its own fix position (add_codes of lstm_int_ops.h).
struct DenseBiasPlan {
  Shift acc_to_a, a_to_sum, b_to_sum, sum_to_a;
  bool narrow = false;  // the sum fits int32 (as StepPlan::narrow): 32-bit lanes after the first shift
  static DenseBiasPlan make(int f_acc, int fa, int f_bias);
};
// dst[j] = that node's code for the exact integer accumulators acc[j] (gate_matmul.h) and bias
// codes bias[j] (nullptr: no bias), j < n.
void dense_bias_codes(const DenseBiasPlan& plan, int64_t lo, int64_t hi, int64_t n, const int64_t* acc,
                      const int32_t* bias, int32_t* dst);

// out[i] = clamp(floor(x[i] * 2^fp), lo, hi) as int16 (quantize_value of lstm_int_ops.h; NaN gives
// lo; lo and hi must lie in int16's range): the input rows of gate_matmul.
template <typename T>
void floor_codes16(const T* x, int64_t n, int fp, int64_t lo, int64_t hi, int16_t* out);

// One time step of one batch row for the units [0, n) of the pointers below (callers pass
// pointers offset to the first unit they own, so that threads can own disjoint units):
//   a       dense-with-bias codes, gate g at a + g * gate_stride
//   acc     the recurrent accumulators (input_1 codes x w_hh codes, exact), same layout
//   h       the state codes this step reads (input_1), int16
//   h_next  the next state codes (h_next requantized to input_1), int16
//   c       the cell state codes (input_2), replaced by c_next requantized to input_2
//   out     h_next as values (code * h_scale), T = float or double
//   gates   scratch of 4 * gate_stride int32 (the four gate nodes)
//   codes   nullptr, or where to record the node codes: node k of unit u at codes[k * code_stride + u]
//           (node 0, input_0, is left alone)
struct StepRow {
  const int32_t* a;
  const int64_t* acc;
  const int16_t* h;
  int16_t* h_next;
  int32_t* c;
  int32_t* gates;
  int32_t* codes;
};
template <typename T>
void step_units(const StepPlan& plan, int64_t n, int64_t gate_stride, int64_t code_stride, const StepRow& row,
                T* out, double h_scale);

// step_units for m rows that record nothing (row.codes == nullptr), outs[k] the output of row k:
// one call per time step, in 32-bit lanes when plan.narrow. Same results as step_units.
template <typename T>
void step_rows(const StepPlan& plan, int64_t n, int64_t gate_stride, const StepRow* rows, T* const* outs, int64_t m,
               double h_scale);

}  // namespace lstm
}  // namespace nndct

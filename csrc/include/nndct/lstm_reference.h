// The portable scalar time loops of the quantized StandardLstmCell: the definitions the fast
// loops of lstm_loops.h are tested against (bit for bit), not used by the package.
//
// Test mode runs every node through the scalar integer ops of lstm_int_ops.h with plain int64
// dot products; calibration runs the fake-quantized float cell serially with double dot
// products, diffs_fix_pos on every node and a full histogram scan for every mode
// (RnnNodeScanner, shared with the GRU's scalar loop), one node after the other, as the
// reference's cell does. Mixed widths: every node clamps to (and votes at) its own width.
#pragma once

#include <cstdint>

#include "nndct/lstm_cell.h"

namespace nndct {
namespace lstm {

// Same contract as fixed_forward (lstm_loops.h; mixed widths through fix.node_bits), with
// unpacked codes.
void fixed_forward_scalar(const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih_codes,
                          const int32_t* w_hh_codes, const int32_t* bias_codes, double* out, double* h_n,
                          double* c_n, StepRecord* record);

// Same contract as calibrate_forward (lstm_loops.h; node_bits: each node's width, nullptr or 0
// for a node: bit_width); weights and bias already fake-quantized (float64 values, gate-major
// rows, each parameter at its own width).
void calibrate_forward_scalar(int bit_width, int search_range, int max_fix_pos, const SequenceBatch& seq,
                              const double* w_ih, const double* w_hh, const double* bias, int64_t* fp_counts,
                              double* out, double* h_n, double* c_n, const int* node_bits = nullptr);

}  // namespace lstm
}  // namespace nndct

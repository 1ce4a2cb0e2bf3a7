// The portable scalar time loops of the quantized StandardGruCell: the definitions the fast loops
// of gru_loops.h are tested against (bit for bit), not used by the package (the GRU twin of
// lstm_reference.h).
//
// Test mode runs every node through the scalar integer ops of lstm_int_ops.h with plain int64
// dot products; calibration runs the fake-quantized float cell serially with double dot
// products, diffs_fix_pos on every node and a full histogram scan for every mode
// (RnnNodeScanner), one node after the other, as the reference's cell does.
#pragma once

#include <cstdint>

#include "nndct/gru_cell.h"

namespace nndct {
namespace gru {

// Same contract as fixed_forward (gru_loops.h; mixed widths through fix.node_bits), with unpacked codes (b_ih / b_hh may be nullptr;
// b_hh is ignored for reset-before).
void fixed_forward_scalar(Variant variant, const CellFix& fix, const SequenceBatch& seq, const int32_t* w_ih,
                          const int32_t* w_hh, const int32_t* b_ih, const int32_t* b_hh, double* out, double* h_n,
                          StepRecord* record);

// Same contract as calibrate_forward (gru_loops.h; node_bits: each node's width, nullptr: bit_width); weights and biases already fake-quantized
// (float64 values, gate-major rows; b_ih / b_hh may be nullptr).
void calibrate_forward_scalar(Variant variant, int bit_width, int search_range, int max_fix_pos,
                              const SequenceBatch& seq, const double* w_ih, const double* w_hh, const double* b_ih,
                              const double* b_hh, int64_t* fp_counts, double* out, double* h_n,
                              const int* node_bits = nullptr);

}  // namespace gru
}  // namespace nndct

// Each area of the kernel library registers its Python functions through one of these,
// so that every binding translation unit stays small and owned by one area.
#pragma once
#include <pybind11/pybind11.h>

namespace nndct_py {
void register_fix_kernels(pybind11::module_& m);    // bind_fix.cc: fix_neuron, fix_codes, per-channel
void register_calib_kernels(pybind11::module_& m);  // bind_calib.cc: diffs/maxmin, histograms
void register_table_kernels(pybind11::module_& m);  // bind_tables.cc: sigmoid/tanh table lookups
void register_lstm_kernels(pybind11::module_& m);   // bind_lstm.cc: LSTM cell time loops
void register_gru_kernels(pybind11::module_& m);    // bind_gru.cc: GRU cell time loops
void register_stats_kernels(pybind11::module_& m);  // bind_stats.cc: channel sums, grid extents
}  // namespace nndct_py

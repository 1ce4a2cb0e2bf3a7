// The single pybind11 module `nndct_shared._kernels`; each area adds its functions.
#include "bindings.h"

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "Fixed-point kernels shared by the PyTorch and Keras front ends.";
  nndct_py::register_fix_kernels(m);
  nndct_py::register_calib_kernels(m);
  nndct_py::register_table_kernels(m);
  nndct_py::register_lstm_kernels(m);
  nndct_py::register_gru_kernels(m);
  nndct_py::register_stats_kernels(m);
}

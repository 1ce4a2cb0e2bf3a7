// Python bindings of the quantized LSTM cell time loops (nndct/lstm_cell.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <vector>
#include <string>

#include "bindings.h"
#include "nndct/dense_rows.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_step_kernel.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

using nndct::lstm::CellFix;
using nndct::lstm::kNumGates;
using nndct::lstm::kNumNodes;
using nndct::lstm::SequenceBatch;

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

void require(bool ok, const std::string& what) {
  if (!ok) throw py::value_error(what);
}

template <typename T>
void require_shape(const CArray<T>& a, std::initializer_list<int64_t> shape, const char* name) {
  require(a.ndim() == static_cast<py::ssize_t>(shape.size()),
          std::string(name) + " has the wrong number of dimensions");
  int d = 0;
  for (int64_t s : shape) {
    require(a.shape(d) == s, std::string(name) + " has the wrong shape");
    ++d;
  }
}

CellFix make_fix(int bit_width, const CArray<int32_t>& node_fp, const CArray<int32_t>& w_ih_fp,
                 const CArray<int32_t>& w_hh_fp, const CArray<int32_t>& bias_fp) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require_shape(node_fp, {kNumNodes}, "node_fix_pos");
  require_shape(w_ih_fp, {kNumGates}, "w_ih_fix_pos");
  require_shape(w_hh_fp, {kNumGates}, "w_hh_fix_pos");
  require_shape(bias_fp, {kNumGates}, "bias_fix_pos");
  CellFix fix;
  fix.bit_width = bit_width;
  for (int i = 0; i < kNumNodes; ++i) fix.node[i] = node_fp.data()[i];
  for (int g = 0; g < kNumGates; ++g) {
    fix.w_ih[g] = w_ih_fp.data()[g];
    fix.w_hh[g] = w_hh_fp.data()[g];
    fix.bias[g] = bias_fp.data()[g];
  }
  return fix;
}

// Shared checks of the sequence arguments; returns the batch description.
SequenceBatch make_sequence(const CArray<double>& x, const std::optional<CArray<int64_t>>& lengths,
                            const std::optional<CArray<double>>& h0,
                            const std::optional<CArray<double>>& c0, int64_t hidden, bool reverse) {
  require(x.ndim() == 3, "x must be [batch, steps, input_size]");
  SequenceBatch seq;
  seq.batch = x.shape(0);
  seq.steps = x.shape(1);
  seq.input_size = x.shape(2);
  seq.hidden = hidden;
  seq.x = x.data();
  seq.reverse = reverse;
  if (lengths) {
    require_shape(*lengths, {seq.batch}, "lengths");
    seq.lengths = lengths->data();
  }
  if (h0) {
    require_shape(*h0, {seq.batch, hidden}, "h0");
    seq.h0 = h0->data();
  }
  if (c0) {
    require_shape(*c0, {seq.batch, hidden}, "c0");
    seq.c0 = c0->data();
  }
  return seq;
}

py::tuple lstm_fixed_forward(const CArray<double>& x, const CArray<int32_t>& w_ih,
                             const CArray<int32_t>& w_hh, const std::optional<CArray<int32_t>>& bias,
                             int bit_width, const CArray<int32_t>& node_fp,
                             const CArray<int32_t>& w_ih_fp, const CArray<int32_t>& w_hh_fp,
                             const CArray<int32_t>& bias_fp,
                             const std::optional<CArray<int64_t>>& lengths,
                             const std::optional<CArray<double>>& h0,
                             const std::optional<CArray<double>>& c0, bool reverse, bool record,
                             int num_threads) {
  require(w_hh.ndim() == 2 && w_hh.shape(0) % 4 == 0, "w_hh must be [4*hidden, hidden]");
  const int64_t H = w_hh.shape(0) / 4;
  const CellFix fix = make_fix(bit_width, node_fp, w_ih_fp, w_hh_fp, bias_fp);
  const SequenceBatch seq = make_sequence(x, lengths, h0, c0, H, reverse);
  require_shape(w_hh, {4 * H, H}, "w_hh");
  require_shape(w_ih, {4 * H, seq.input_size}, "w_ih");
  if (bias) require_shape(*bias, {4 * H}, "bias");
  py::array_t<double> out({seq.batch, seq.steps, H});
  py::array_t<double> h_n({seq.batch, H});
  py::array_t<double> c_n({seq.batch, H});
  nndct::lstm::StepRecord rec;
  {
    py::gil_scoped_release release;
    nndct::lstm::fixed_forward(fix, seq, w_ih.data(), w_hh.data(), bias ? bias->data() : nullptr,
                               out.mutable_data(), h_n.mutable_data(), c_n.mutable_data(),
                               record ? &rec : nullptr, num_threads);
  }
  if (!record) return py::make_tuple(out, h_n, c_n, py::none());
  const int64_t T = rec.steps_recorded;
  py::array_t<int32_t> input0({T, seq.input_size});
  py::array_t<int32_t> nodes({T, static_cast<int64_t>(kNumNodes - 1), H});
  std::copy(rec.input0.begin(), rec.input0.begin() + T * seq.input_size, input0.mutable_data());
  std::copy(rec.nodes.begin(), rec.nodes.begin() + T * (kNumNodes - 1) * H, nodes.mutable_data());
  return py::make_tuple(out, h_n, c_n, py::make_tuple(input0, nodes));
}

py::tuple lstm_calibrate_forward(const CArray<double>& x, const CArray<double>& w_ih,
                                 const CArray<double>& w_hh, const CArray<double>& bias,
                                 int bit_width, py::array_t<int64_t> fp_counts, int search_range,
                                 int max_fix_pos, const std::optional<CArray<int64_t>>& lengths,
                                 const std::optional<CArray<double>>& h0,
                                 const std::optional<CArray<double>>& c0, bool reverse) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require(search_range >= 1 && search_range <= 64, "search_range must be in 1..64");
  require(w_hh.ndim() == 2 && w_hh.shape(0) % 4 == 0, "w_hh must be [4*hidden, hidden]");
  const int64_t H = w_hh.shape(0) / 4;
  const SequenceBatch seq = make_sequence(x, lengths, h0, c0, H, reverse);
  require_shape(w_hh, {4 * H, H}, "w_hh");
  require_shape(w_ih, {4 * H, seq.input_size}, "w_ih");
  require_shape(bias, {4 * H}, "bias");
  require(fp_counts.ndim() == 2 && fp_counts.shape(0) == kNumNodes &&
              fp_counts.shape(1) == nndct::lstm::kFpSlots && (fp_counts.flags() & py::array::c_style) &&
              fp_counts.writeable(),
          "fp_counts must be a writeable C-contiguous int64 array [24, 256]");
  py::array_t<double> out({seq.batch, seq.steps, H});
  py::array_t<double> h_n({seq.batch, H});
  py::array_t<double> c_n({seq.batch, H});
  int64_t* counts = fp_counts.mutable_data();
  {
    py::gil_scoped_release release;
    nndct::lstm::calibrate_forward(bit_width, search_range, max_fix_pos, seq, w_ih.data(),
                                   w_hh.data(), bias.data(), counts, out.mutable_data(),
                                   h_n.mutable_data(), c_n.mutable_data());
  }
  return py::make_tuple(out, h_n, c_n);
}

// Test-only: acc = x @ wt through the dispatched kernel (tiled when the CPU allows) or the
// portable loop, to check that both give the same bits.
py::array_t<double> dense_rows_py(const CArray<double>& x, const CArray<double>& wt, bool portable) {
  require(x.ndim() == 2 && wt.ndim() == 2 && x.shape(1) == wt.shape(0), "x must be [n, in] and wt [in, cols]");
  const int64_t n = x.shape(0), in = x.shape(1), cols = wt.shape(1);
  std::vector<const double*> rows(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) rows[static_cast<size_t>(r)] = x.data() + r * in;
  py::array_t<double> acc({n, cols});
  {
    py::gil_scoped_release release;
    (portable ? nndct::dense_rows_portable : nndct::dense_rows)(rows.data(), n, in, wt.data(), cols,
                                                                acc.mutable_data());
  }
  return acc;
}

// Test-only: the step kernel's table node (TableOp) next to the scalar table node of
// lstm_int_ops.h, for every input code given. Returns (vector form, scalar form).
py::tuple table_node_py(const CArray<int64_t>& codes, bool is_tanh, int fin, int fout, int bit_width) {
  const nndct::lstm::CodeRange range = nndct::lstm::CodeRange::signed_bits(bit_width);
  const nndct::lstm::TableOp t = nndct::lstm::TableOp::make(is_tanh, fin, fout, range.lo, range.hi);
  const int64_t n = codes.size();
  py::array_t<int64_t> vec(n), scalar(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = codes.data()[i];
    vec.mutable_data()[i] = nndct::lstm::table_value(t, y);
    scalar.mutable_data()[i] = is_tanh ? nndct::lstm::tanh_node(y, fin, fout, range)
                                       : nndct::lstm::sigmoid_node(y, fin, fout, range);
  }
  return py::make_tuple(vec, scalar);
}

}  // namespace

void register_lstm_kernels(py::module_& m) {
  m.def("_dense_rows", &dense_rows_py, py::arg("x"), py::arg("wt"), py::arg("portable") = false,
        "Test-only: x @ wt through the LSTM loops' matrix kernel (or its portable loop).");
  m.def("_dense_rows_isa", [] { return std::string(nndct::dense_rows_isa()); },
        "Test-only: which dense_rows kernel this CPU uses ('avx512', 'avx2' or 'portable').");
  m.def("_lstm_table_node", &table_node_py, py::arg("codes"), py::arg("is_tanh"), py::arg("fin"),
        py::arg("fout"), py::arg("bit_width"),
        "Test-only: (step-kernel form, scalar form) of a sigmoid/tanh node on integer codes.");
  m.def("lstm_fixed_forward", &lstm_fixed_forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("bias"), py::arg("bit_width"), py::arg("node_fix_pos"), py::arg("w_ih_fix_pos"),
        py::arg("w_hh_fix_pos"), py::arg("bias_fix_pos"), py::arg("lengths") = py::none(),
        py::arg("h0") = py::none(), py::arg("c0") = py::none(), py::arg("reverse") = false,
        py::arg("record") = false, py::arg("num_threads") = 1,
        "Test-mode StandardLstmCell over a sequence batch on integer codes. Returns (out, h_n, c_n, "
        "record) where record is None or (input_0 codes [T, I], codes of nodes 1..23 [T, 23, H]) "
        "of batch element 0 in processing order.");
  m.def("lstm_calibrate_forward", &lstm_calibrate_forward, py::arg("x"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("bias"), py::arg("bit_width"), py::arg("fp_counts"),
        py::arg("search_range") = 5, py::arg("max_fix_pos") = 12, py::arg("lengths") = py::none(),
        py::arg("h0") = py::none(), py::arg("c0") = py::none(), py::arg("reverse") = false,
        "Calibration-mode StandardLstmCell over a sequence batch (fake-quantized float64 weights). "
        "Adds each node's per-step diffs fix position to fp_counts [24, 256] (slot = fp + 128), "
        "in place. Returns (out, h_n, c_n).");
}

}  // namespace nndct_py

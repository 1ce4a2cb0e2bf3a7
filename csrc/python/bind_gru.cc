// Python bindings of the quantized GRU cell time loops (nndct/gru_cell.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>

#include "bindings.h"
#include "nndct/gru_cell.h"
#include "rnn_args.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

using nndct::gru::CellFix;
using nndct::gru::kNumGates;
using nndct::gru::kNumNodes;
using nndct::gru::Variant;
using rnn_args::ForcedArray;
using rnn_args::require;
using rnn_args::require_shape;

Variant variant_of(bool reset_after) { return reset_after ? Variant::kResetAfter : Variant::kResetBefore; }

// H from w_hh [3H, H], with the shapes of w_ih [3H, I] and the optional biases [3H] checked.
template <typename T>
int64_t check_weights(const ForcedArray<T>& w_ih, const ForcedArray<T>& w_hh,
                      const std::optional<ForcedArray<T>>& b_ih, const std::optional<ForcedArray<T>>& b_hh,
                      int64_t input_size) {
  require(w_hh.ndim() == 2 && w_hh.shape(0) % kNumGates == 0, "w_hh must be [3*hidden, hidden]");
  const int64_t H = w_hh.shape(0) / kNumGates;
  require_shape(w_hh, {kNumGates * H, H}, "w_hh");
  require_shape(w_ih, {kNumGates * H, input_size}, "w_ih");
  if (b_ih) require_shape(*b_ih, {kNumGates * H}, "b_ih");
  if (b_hh) require_shape(*b_hh, {kNumGates * H}, "b_hh");
  return H;
}

py::tuple gru_fixed_forward(const ForcedArray<double>& x, const ForcedArray<int32_t>& w_ih,
                            const ForcedArray<int32_t>& w_hh, const std::optional<ForcedArray<int32_t>>& b_ih,
                            const std::optional<ForcedArray<int32_t>>& b_hh, bool reset_after, int bit_width,
                            const ForcedArray<int32_t>& node_fp, const ForcedArray<int32_t>& w_ih_fp,
                            const ForcedArray<int32_t>& w_hh_fp, const ForcedArray<int32_t>& b_ih_fp,
                            const ForcedArray<int32_t>& b_hh_fp, const std::optional<ForcedArray<int64_t>>& lengths,
                            const std::optional<ForcedArray<double>>& h0, bool reverse, bool record,
                            int num_threads) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require(x.ndim() == 3, "x must be [batch, steps, input_size]");
  const int64_t H = check_weights(w_ih, w_hh, b_ih, b_hh, x.shape(2));
  require_shape(node_fp, {kNumNodes}, "node_fix_pos");
  for (const auto* a : {&w_ih_fp, &w_hh_fp, &b_ih_fp, &b_hh_fp}) require_shape(*a, {kNumGates}, "fix_pos");
  CellFix fix;
  fix.bit_width = bit_width;
  std::copy(node_fp.data(), node_fp.data() + kNumNodes, fix.node);
  std::copy(w_ih_fp.data(), w_ih_fp.data() + kNumGates, fix.w_ih);
  std::copy(w_hh_fp.data(), w_hh_fp.data() + kNumGates, fix.w_hh);
  std::copy(b_ih_fp.data(), b_ih_fp.data() + kNumGates, fix.b_ih);
  std::copy(b_hh_fp.data(), b_hh_fp.data() + kNumGates, fix.b_hh);
  const nndct::gru::SequenceBatch seq = rnn_args::sequence(x, lengths, h0, H, reverse);
  py::array_t<double> out({seq.batch, seq.steps, H});
  py::array_t<double> h_n({seq.batch, H});
  nndct::gru::StepRecord rec;
  {
    py::gil_scoped_release release;
    nndct::gru::fixed_forward(variant_of(reset_after), fix, seq, w_ih.data(), w_hh.data(),
                              b_ih ? b_ih->data() : nullptr, b_hh ? b_hh->data() : nullptr, out.mutable_data(),
                              h_n.mutable_data(), record ? &rec : nullptr, num_threads);
  }
  if (!record) return py::make_tuple(out, h_n, py::none());
  const int64_t T = rec.steps_recorded;
  py::array_t<int32_t> input0({T, seq.input_size});
  py::array_t<int32_t> nodes({T, static_cast<int64_t>(kNumNodes - 1), H});
  std::copy(rec.input0.begin(), rec.input0.begin() + T * seq.input_size, input0.mutable_data());
  std::copy(rec.nodes.begin(), rec.nodes.begin() + T * (kNumNodes - 1) * H, nodes.mutable_data());
  return py::make_tuple(out, h_n, py::make_tuple(input0, nodes));
}

py::tuple gru_calibrate_forward(const ForcedArray<double>& x, const ForcedArray<double>& w_ih,
                                const ForcedArray<double>& w_hh, const std::optional<ForcedArray<double>>& b_ih,
                                const std::optional<ForcedArray<double>>& b_hh, bool reset_after, int bit_width,
                                py::array_t<int64_t> fp_counts, int search_range, int max_fix_pos,
                                const std::optional<ForcedArray<int64_t>>& lengths,
                                const std::optional<ForcedArray<double>>& h0, bool reverse) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require(search_range >= 1 && search_range <= 64, "search_range must be in 1..64");
  require(x.ndim() == 3, "x must be [batch, steps, input_size]");
  const int64_t H = check_weights(w_ih, w_hh, b_ih, b_hh, x.shape(2));
  require(fp_counts.ndim() == 2 && fp_counts.shape(0) == kNumNodes &&
              fp_counts.shape(1) == nndct::lstm::kFpSlots && (fp_counts.flags() & py::array::c_style) &&
              fp_counts.writeable(),
          "fp_counts must be a writeable C-contiguous int64 array [19, 256]");
  const nndct::gru::SequenceBatch seq = rnn_args::sequence(x, lengths, h0, H, reverse);
  py::array_t<double> out({seq.batch, seq.steps, H});
  py::array_t<double> h_n({seq.batch, H});
  int64_t* counts = fp_counts.mutable_data();
  {
    py::gil_scoped_release release;
    nndct::gru::calibrate_forward(variant_of(reset_after), bit_width, search_range, max_fix_pos, seq, w_ih.data(),
                                  w_hh.data(), b_ih ? b_ih->data() : nullptr, b_hh ? b_hh->data() : nullptr,
                                  counts, out.mutable_data(), h_n.mutable_data());
  }
  return py::make_tuple(out, h_n);
}

}  // namespace

void register_gru_kernels(py::module_& m) {
  m.def("gru_fixed_forward", &gru_fixed_forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
        py::arg("b_hh"), py::arg("reset_after"), py::arg("bit_width"), py::arg("node_fix_pos"),
        py::arg("w_ih_fix_pos"), py::arg("w_hh_fix_pos"), py::arg("b_ih_fix_pos"), py::arg("b_hh_fix_pos"),
        py::arg("lengths") = py::none(), py::arg("h0") = py::none(), py::arg("reverse") = false,
        py::arg("record") = false, py::arg("num_threads") = 1,
        "Test-mode StandardGruCell over a sequence batch on integer codes (weights [3H, *] in PyTorch "
        "gate order r, z, n). Returns (out, h_n, record) where record is None or (input_0 codes [T, I], "
        "codes of nodes 1..18 [T, 18, H]) of batch element 0 in processing order.");
  m.def("gru_calibrate_forward", &gru_calibrate_forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("reset_after"), py::arg("bit_width"), py::arg("fp_counts"),
        py::arg("search_range") = 5, py::arg("max_fix_pos") = 12, py::arg("lengths") = py::none(),
        py::arg("h0") = py::none(), py::arg("reverse") = false,
        "Calibration-mode StandardGruCell over a sequence batch (fake-quantized float64 weights). Adds "
        "each node's per-step diffs fix position to fp_counts [19, 256] (slot = fp + 128), in place. "
        "Returns (out, h_n).");
}

}  // namespace nndct_py

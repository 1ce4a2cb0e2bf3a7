// Python bindings of the quantized GRU cell time loops (nndct/gru_loops.h): cells prepared once per
// weight set (FixedGruCell for test mode, CalibGruCell for calibration), plus the test-only
// portable scalar loops they are compared with (nndct/gru_reference.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "bindings.h"
#include "nndct/gru_loops.h"
#include "nndct/gru_reference.h"
#include "rnn_args.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

using nndct::gru::CellFix;
using nndct::gru::kNumGates;
using nndct::gru::kNumNodes;
using nndct::gru::Sequence;
using nndct::gru::Variant;
using rnn_args::ForcedArray;
using rnn_args::node_bits_of;
using rnn_args::require;
using rnn_args::require_shape;

template <typename T>
using Opt = std::optional<ForcedArray<T>>;

Variant variant_of(bool reset_after) { return reset_after ? Variant::kResetAfter : Variant::kResetBefore; }

// H from w_hh [3H, H], with the shapes of w_ih [3H, I] and the optional biases [3H] checked.
template <typename T, typename B>
int64_t check_weights(const ForcedArray<T>& w_ih, const ForcedArray<T>& w_hh, const Opt<B>& b_ih, const Opt<B>& b_hh,
                      int64_t* input_size) {
  require(w_hh.ndim() == 2 && w_hh.shape(0) % kNumGates == 0 && w_hh.shape(0) == kNumGates * w_hh.shape(1),
          "w_hh must be [3*hidden, hidden]");
  const int64_t H = w_hh.shape(1);
  require(w_ih.ndim() == 2 && w_ih.shape(0) == kNumGates * H, "w_ih must be [3*hidden, input_size]");
  *input_size = w_ih.shape(1);
  if (b_ih) require_shape(*b_ih, {kNumGates * H}, "b_ih");
  if (b_hh) require_shape(*b_hh, {kNumGates * H}, "b_hh");
  return H;
}

CellFix make_fix(int bit_width, const ForcedArray<int32_t>& node_fp, const ForcedArray<int32_t>& w_ih_fp,
                 const ForcedArray<int32_t>& w_hh_fp, const ForcedArray<int32_t>& b_ih_fp,
                 const ForcedArray<int32_t>& b_hh_fp, const Opt<int32_t>& node_bits) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require_shape(node_fp, {kNumNodes}, "node_fix_pos");
  require_shape(w_ih_fp, {kNumGates}, "w_ih_fix_pos");
  require_shape(w_hh_fp, {kNumGates}, "w_hh_fix_pos");
  require_shape(b_ih_fp, {kNumGates}, "b_ih_fix_pos");
  require_shape(b_hh_fp, {kNumGates}, "b_hh_fix_pos");
  CellFix fix;
  fix.bit_width = bit_width;
  std::copy(node_fp.data(), node_fp.data() + kNumNodes, fix.node);
  std::copy(w_ih_fp.data(), w_ih_fp.data() + kNumGates, fix.w_ih);
  std::copy(w_hh_fp.data(), w_hh_fp.data() + kNumGates, fix.w_hh);
  std::copy(b_ih_fp.data(), b_ih_fp.data() + kNumGates, fix.b_ih);
  std::copy(b_hh_fp.data(), b_hh_fp.data() + kNumGates, fix.b_hh);
  const std::vector<int> bits = node_bits_of(node_bits, kNumNodes);
  std::copy(bits.begin(), bits.end(), fix.node_bits);
  return fix;
}

void check_counts(const py::array_t<int64_t>& fp_counts) {
  require(fp_counts.ndim() == 2 && fp_counts.shape(0) == kNumNodes &&
              fp_counts.shape(1) == nndct::lstm::kFpSlots && (fp_counts.flags() & py::array::c_style) &&
              fp_counts.writeable(),
          "fp_counts must be a writeable C-contiguous int64 array [19, 256]");
}

py::tuple record_arrays(const nndct::gru::StepRecord& rec, int64_t I, int64_t H) {
  const int64_t T = rec.steps_recorded;
  py::array_t<int32_t> input0({T, I});
  py::array_t<int32_t> nodes({T, static_cast<int64_t>(kNumNodes - 1), H});
  std::copy(rec.input0.begin(), rec.input0.begin() + T * I, input0.mutable_data());
  std::copy(rec.nodes.begin(), rec.nodes.begin() + T * (kNumNodes - 1) * H, nodes.mutable_data());
  return py::make_tuple(input0, nodes);
}

class FixedGruCell {
 public:
  FixedGruCell(const ForcedArray<int32_t>& w_ih, const ForcedArray<int32_t>& w_hh, const Opt<int32_t>& b_ih,
               const Opt<int32_t>& b_hh, bool reset_after, int bit_width, const ForcedArray<int32_t>& node_fp,
               const ForcedArray<int32_t>& w_ih_fp, const ForcedArray<int32_t>& w_hh_fp,
               const ForcedArray<int32_t>& b_ih_fp, const ForcedArray<int32_t>& b_hh_fp,
               const Opt<int32_t>& node_bits) {
    int64_t I;
    const int64_t H = check_weights(w_ih, w_hh, b_ih, b_hh, &I);
    const CellFix fix = make_fix(bit_width, node_fp, w_ih_fp, w_hh_fp, b_ih_fp, b_hh_fp, node_bits);
    cell_ = std::make_unique<nndct::gru::FixedCell>(variant_of(reset_after), fix, I, H, w_ih.data(), w_hh.data(),
                                                    b_ih ? b_ih->data() : nullptr, b_hh ? b_hh->data() : nullptr);
  }

  py::tuple forward(const py::array& x, const Opt<int64_t>& lengths, const Opt<double>& h0, bool reverse,
                    bool record, int num_threads, const py::object& out_dtype) const {
    const bool f32 = rnn_args::wants_float32_out(out_dtype);
    return rnn_args::with_typed_x(x, [&](const auto& xs) {
      using T = typename std::remove_reference_t<decltype(xs)>::value_type;
      const Sequence<T> seq =
          rnn_args::typed_sequence<T>(xs, lengths, h0, cell_->input_size, cell_->hidden, reverse);
      return f32 ? run<T, float>(seq, record, num_threads) : run<T, double>(seq, record, num_threads);
    });
  }

  int64_t input_size() const { return cell_->input_size; }
  int64_t hidden_size() const { return cell_->hidden; }
  bool narrow() const { return cell_->plan.narrow; }

 private:
  template <typename TIn, typename TOut>
  py::tuple run(const Sequence<TIn>& seq, bool record, int num_threads) const {
    const int64_t H = seq.hidden;
    py::array_t<TOut> out({seq.batch, seq.steps, H});
    py::array_t<double> h_n({seq.batch, H});
    nndct::gru::StepRecord rec;
    {
      py::gil_scoped_release release;
      nndct::gru::fixed_forward<TIn, TOut>(*cell_, seq, out.mutable_data(), h_n.mutable_data(),
                                          record ? &rec : nullptr, num_threads);
    }
    if (!record) return py::make_tuple(out, h_n, py::none());
    return py::make_tuple(out, h_n, record_arrays(rec, seq.input_size, H));
  }

  std::unique_ptr<nndct::gru::FixedCell> cell_;
};

class CalibGruCell {
 public:
  CalibGruCell(const ForcedArray<int32_t>& w_ih, const ForcedArray<int32_t>& w_hh,
               const ForcedArray<int32_t>& w_ih_fp, const ForcedArray<int32_t>& w_hh_fp, const Opt<double>& b_ih,
               const Opt<double>& b_hh, bool reset_after, int bit_width, int search_range, int max_fix_pos,
               const Opt<int32_t>& node_bits) {
    require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
    require(search_range >= 1 && search_range <= 64, "search_range must be in 1..64");
    int64_t I;
    const int64_t H = check_weights(w_ih, w_hh, b_ih, b_hh, &I);
    require_shape(w_ih_fp, {kNumGates}, "w_ih_fix_pos");
    require_shape(w_hh_fp, {kNumGates}, "w_hh_fix_pos");
    cell_ = std::make_unique<nndct::gru::CalibCell>(variant_of(reset_after), bit_width, search_range, max_fix_pos, I,
                                                    H, w_ih.data(), w_hh.data(), w_ih_fp.data(), w_hh_fp.data(),
                                                    b_ih ? b_ih->data() : nullptr, b_hh ? b_hh->data() : nullptr,
                                                    node_bits_of(node_bits, kNumNodes).data());
  }

  py::tuple forward(const py::array& x, py::array_t<int64_t> fp_counts, const Opt<int64_t>& lengths,
                    const Opt<double>& h0, bool reverse, int num_threads, const py::object& out_dtype) const {
    check_counts(fp_counts);
    const bool f32 = rnn_args::wants_float32_out(out_dtype);
    int64_t* counts = fp_counts.mutable_data();
    return rnn_args::with_typed_x(x, [&](const auto& xs) {
      using T = typename std::remove_reference_t<decltype(xs)>::value_type;
      const Sequence<T> seq =
          rnn_args::typed_sequence<T>(xs, lengths, h0, cell_->input_size, cell_->hidden, reverse);
      return f32 ? run<T, float>(seq, counts, num_threads) : run<T, double>(seq, counts, num_threads);
    });
  }

 private:
  template <typename TIn, typename TOut>
  py::tuple run(const Sequence<TIn>& seq, int64_t* counts, int num_threads) const {
    py::array_t<TOut> out({seq.batch, seq.steps, seq.hidden});
    py::array_t<double> h_n({seq.batch, seq.hidden});
    {
      py::gil_scoped_release release;
      nndct::gru::calibrate_forward<TIn, TOut>(*cell_, seq, counts, out.mutable_data(), h_n.mutable_data(),
                                              num_threads);
    }
    return py::make_tuple(out, h_n);
  }

  std::unique_ptr<nndct::gru::CalibCell> cell_;
};

// ---- test-only hooks ------------------------------------------------------------------------

py::tuple fixed_forward_scalar_py(const ForcedArray<double>& x, const ForcedArray<int32_t>& w_ih,
                                  const ForcedArray<int32_t>& w_hh, const Opt<int32_t>& b_ih,
                                  const Opt<int32_t>& b_hh, bool reset_after, int bit_width,
                                  const ForcedArray<int32_t>& node_fp, const ForcedArray<int32_t>& w_ih_fp,
                                  const ForcedArray<int32_t>& w_hh_fp, const ForcedArray<int32_t>& b_ih_fp,
                                  const ForcedArray<int32_t>& b_hh_fp, const Opt<int64_t>& lengths,
                                  const Opt<double>& h0, bool reverse, bool record, const Opt<int32_t>& node_bits) {
  int64_t I;
  const int64_t H = check_weights(w_ih, w_hh, b_ih, b_hh, &I);
  const CellFix fix = make_fix(bit_width, node_fp, w_ih_fp, w_hh_fp, b_ih_fp, b_hh_fp, node_bits);
  const nndct::gru::SequenceBatch seq = rnn_args::typed_sequence<double>(x, lengths, h0, I, H, reverse);
  py::array_t<double> out({seq.batch, seq.steps, H}), h_n({seq.batch, H});
  nndct::gru::StepRecord rec;
  {
    py::gil_scoped_release release;
    nndct::gru::fixed_forward_scalar(variant_of(reset_after), fix, seq, w_ih.data(), w_hh.data(),
                                     b_ih ? b_ih->data() : nullptr, b_hh ? b_hh->data() : nullptr,
                                     out.mutable_data(), h_n.mutable_data(), record ? &rec : nullptr);
  }
  if (!record) return py::make_tuple(out, h_n, py::none());
  return py::make_tuple(out, h_n, record_arrays(rec, I, H));
}

py::tuple calibrate_forward_scalar_py(const ForcedArray<double>& x, const ForcedArray<double>& w_ih,
                                      const ForcedArray<double>& w_hh, const Opt<double>& b_ih,
                                      const Opt<double>& b_hh, bool reset_after, int bit_width,
                                      py::array_t<int64_t> fp_counts, int search_range, int max_fix_pos,
                                      const Opt<int64_t>& lengths, const Opt<double>& h0, bool reverse,
                                      const Opt<int32_t>& node_bits) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require(search_range >= 1 && search_range <= 64, "search_range must be in 1..64");
  int64_t I;
  const int64_t H = check_weights(w_ih, w_hh, b_ih, b_hh, &I);
  check_counts(fp_counts);
  const nndct::gru::SequenceBatch seq = rnn_args::typed_sequence<double>(x, lengths, h0, I, H, reverse);
  py::array_t<double> out({seq.batch, seq.steps, H}), h_n({seq.batch, H});
  int64_t* counts = fp_counts.mutable_data();
  const std::vector<int> bits = node_bits_of(node_bits, kNumNodes);
  {
    py::gil_scoped_release release;
    nndct::gru::calibrate_forward_scalar(variant_of(reset_after), bit_width, search_range, max_fix_pos, seq,
                                         w_ih.data(), w_hh.data(), b_ih ? b_ih->data() : nullptr,
                                         b_hh ? b_hh->data() : nullptr, counts, out.mutable_data(),
                                         h_n.mutable_data(), bits.data());
  }
  return py::make_tuple(out, h_n);
}

}  // namespace

void register_gru_kernels(py::module_& m) {
  py::class_<FixedGruCell>(m, "FixedGruCell",
                           "Test-mode StandardGruCell on integer codes, prepared once (weights packed as int16; "
                           "[3H, *] in PyTorch gate order r, z, n).")
      .def(py::init<const ForcedArray<int32_t>&, const ForcedArray<int32_t>&, const Opt<int32_t>&,
                    const Opt<int32_t>&, bool, int, const ForcedArray<int32_t>&, const ForcedArray<int32_t>&,
                    const ForcedArray<int32_t>&, const ForcedArray<int32_t>&, const ForcedArray<int32_t>&,
                    const Opt<int32_t>&>(),
           py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("reset_after"),
           py::arg("bit_width"), py::arg("node_fix_pos"), py::arg("w_ih_fix_pos"), py::arg("w_hh_fix_pos"),
           py::arg("b_ih_fix_pos"), py::arg("b_hh_fix_pos"), py::arg("node_bits") = py::none())
      .def("forward", &FixedGruCell::forward, py::arg("x"), py::arg("lengths") = py::none(),
           py::arg("h0") = py::none(), py::arg("reverse") = false, py::arg("record") = false,
           py::arg("num_threads") = 1, py::arg("out_dtype") = py::none(),
           "Runs x [batch, steps, input] (float32 or float64). Returns (out, h_n, record): out in out_dtype "
           "(float64 by default), record None or (input_0 codes [T, I], codes of nodes 1..18 [T, 18, H]) of batch "
           "element 0 in processing order.")
      .def_property_readonly("input_size", &FixedGruCell::input_size)
      .def_property_readonly("hidden_size", &FixedGruCell::hidden_size)
      .def_property_readonly("steps_in_32bit_lanes", &FixedGruCell::narrow,
                             "Whether the fix positions let every step run in 32-bit lanes (see StepPlan::narrow).");
  py::class_<CalibGruCell>(m, "CalibGruCell",
                           "Calibration-mode StandardGruCell, prepared once: weight codes and fix positions "
                           "(the fake-quantized weights are code * 2^-fix_pos), bias fake-quantized values.")
      .def(py::init<const ForcedArray<int32_t>&, const ForcedArray<int32_t>&, const ForcedArray<int32_t>&,
                    const ForcedArray<int32_t>&, const Opt<double>&, const Opt<double>&, bool, int, int, int,
                    const Opt<int32_t>&>(),
           py::arg("w_ih"), py::arg("w_hh"), py::arg("w_ih_fix_pos"), py::arg("w_hh_fix_pos"), py::arg("b_ih"),
           py::arg("b_hh"), py::arg("reset_after"), py::arg("bit_width"), py::arg("search_range") = 5,
           py::arg("max_fix_pos") = 12, py::arg("node_bits") = py::none())
      .def("forward", &CalibGruCell::forward, py::arg("x"), py::arg("fp_counts"), py::arg("lengths") = py::none(),
           py::arg("h0") = py::none(), py::arg("reverse") = false, py::arg("num_threads") = 1,
           py::arg("out_dtype") = py::none(),
           "Adds each node's per-step diffs fix position to fp_counts [19, 256] (slot = fp + 128), in place. "
           "Returns (out, h_n).");
  m.def("_gru_fixed_forward_scalar", &fixed_forward_scalar_py, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("reset_after"), py::arg("bit_width"), py::arg("node_fix_pos"),
        py::arg("w_ih_fix_pos"), py::arg("w_hh_fix_pos"), py::arg("b_ih_fix_pos"), py::arg("b_hh_fix_pos"),
        py::arg("lengths") = py::none(), py::arg("h0") = py::none(), py::arg("reverse") = false,
        py::arg("record") = false, py::arg("node_bits") = py::none(),
        "Test-only: the portable scalar test-mode loop (the definition FixedGruCell is compared with).");
  m.def("_gru_calibrate_forward_scalar", &calibrate_forward_scalar_py, py::arg("x"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("reset_after"), py::arg("bit_width"),
        py::arg("fp_counts"), py::arg("search_range") = 5, py::arg("max_fix_pos") = 12,
        py::arg("lengths") = py::none(), py::arg("h0") = py::none(), py::arg("reverse") = false,
        py::arg("node_bits") = py::none(),
        "Test-only: the portable scalar calibration loop (fake-quantized float64 weights), the definition "
        "CalibGruCell is compared with.");
}

}  // namespace nndct_py

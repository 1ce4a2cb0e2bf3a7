// Python bindings of the quantized LSTM cell time loops (nndct/lstm_loops.h): cells prepared
// once per weight set (FixedLstmCell for test mode, CalibLstmCell for calibration), plus the
// test-only hooks that compare the fast kernels with their portable definitions.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "nndct/calib.h"
#include "nndct/dense_rows.h"
#include "nndct/gate_matmul.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_loops.h"
#include "nndct/lstm_reference.h"
#include "nndct/lstm_step_kernel.h"
#include "nndct/thread_team.h"
#include "rnn_args.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

using nndct::lstm::CalibCell;
using nndct::lstm::CellFix;
using nndct::lstm::FixedCell;
using nndct::lstm::kNumGates;
using nndct::lstm::kNumNodes;
using nndct::lstm::Sequence;
using nndct::lstm::SequenceBatch;

template <typename T>
using FArray = rnn_args::ForcedArray<T>;
using rnn_args::require;
using rnn_args::require_shape;

std::vector<int> node_bits_of(const std::optional<FArray<int32_t>>& bits) {
  return rnn_args::node_bits_of(bits, kNumNodes);
}

// node_bits: each node's own width (mixed widths), None: bit_width everywhere.
CellFix make_fix(int bit_width, const FArray<int32_t>& node_fp, const FArray<int32_t>& w_ih_fp,
                 const FArray<int32_t>& w_hh_fp, const FArray<int32_t>& bias_fp,
                 const std::optional<FArray<int32_t>>& node_bits) {
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
  const std::vector<int> bits = node_bits_of(node_bits);
  std::copy(bits.begin(), bits.end(), fix.node_bits);
  return fix;
}

void check_weights(const FArray<int32_t>& w_ih, const FArray<int32_t>& w_hh, int64_t* I, int64_t* H) {
  require(w_hh.ndim() == 2 && w_hh.shape(0) % 4 == 0 && w_hh.shape(0) == 4 * w_hh.shape(1),
          "w_hh must be [4*hidden, hidden]");
  *H = w_hh.shape(1);
  require(w_ih.ndim() == 2 && w_ih.shape(0) == 4 * *H, "w_ih must be [4*hidden, input_size]");
  *I = w_ih.shape(1);
}

// The optional arguments of a forward call, checked against the cell's sizes.
struct SequenceArgs {
  std::optional<FArray<int64_t>> lengths;
  std::optional<FArray<double>> h0, c0;
};

// x with its optional lengths, h0 and c0, checked against the cell's sizes.
template <typename T>
Sequence<T> make_sequence(const py::array_t<T, py::array::c_style>& x, const SequenceArgs& args, int64_t input_size,
                          int64_t hidden, bool reverse) {
  Sequence<T> seq = rnn_args::typed_sequence<T>(x, args.lengths, args.h0, input_size, hidden, reverse);
  if (args.c0) {
    require_shape(*args.c0, {seq.batch, hidden}, "c0");
    seq.c0 = args.c0->data();
  }
  return seq;
}

class FixedLstmCell {
 public:
  FixedLstmCell(const FArray<int32_t>& w_ih, const FArray<int32_t>& w_hh, const std::optional<FArray<int32_t>>& bias,
                int bit_width, const FArray<int32_t>& node_fp, const FArray<int32_t>& w_ih_fp,
                const FArray<int32_t>& w_hh_fp, const FArray<int32_t>& bias_fp,
                const std::optional<FArray<int32_t>>& node_bits) {
    int64_t I, H;
    check_weights(w_ih, w_hh, &I, &H);
    if (bias) require_shape(*bias, {4 * H}, "bias");
    const CellFix fix = make_fix(bit_width, node_fp, w_ih_fp, w_hh_fp, bias_fp, node_bits);
    cell_ = std::make_unique<FixedCell>(fix, I, H, w_ih.data(), w_hh.data(), bias ? bias->data() : nullptr);
  }

  py::tuple forward(const py::array& x, const SequenceArgs& args, bool reverse, bool record, int num_threads,
                    const py::object& out_dtype) const {
    const bool f32 = rnn_args::wants_float32_out(out_dtype);
    return rnn_args::with_typed_x(x, [&](const auto& xs) {
      using T = typename std::remove_reference_t<decltype(xs)>::value_type;
      const Sequence<T> seq = make_sequence<T>(xs, args, cell_->input_size, cell_->hidden, reverse);
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
    py::array_t<double> c_n({seq.batch, H});
    nndct::lstm::StepRecord rec;
    {
      py::gil_scoped_release release;
      nndct::lstm::fixed_forward<TIn, TOut>(*cell_, seq, out.mutable_data(), h_n.mutable_data(), c_n.mutable_data(),
                                           record ? &rec : nullptr, num_threads);
    }
    if (!record) return py::make_tuple(out, h_n, c_n, py::none());
    return py::make_tuple(out, h_n, c_n, record_arrays(rec, seq.input_size, H));
  }

 public:
  static py::tuple record_arrays(const nndct::lstm::StepRecord& rec, int64_t I, int64_t H) {
    const int64_t T = rec.steps_recorded;
    py::array_t<int32_t> input0({T, I});
    py::array_t<int32_t> nodes({T, static_cast<int64_t>(kNumNodes - 1), H});
    std::copy(rec.input0.begin(), rec.input0.begin() + T * I, input0.mutable_data());
    std::copy(rec.nodes.begin(), rec.nodes.begin() + T * (kNumNodes - 1) * H, nodes.mutable_data());
    return py::make_tuple(input0, nodes);
  }

 private:
  std::unique_ptr<FixedCell> cell_;
};

void check_counts(const py::array_t<int64_t>& fp_counts) {
  require(fp_counts.ndim() == 2 && fp_counts.shape(0) == kNumNodes && fp_counts.shape(1) == nndct::lstm::kFpSlots &&
              (fp_counts.flags() & py::array::c_style) && fp_counts.writeable(),
          "fp_counts must be a writeable C-contiguous int64 array [24, 256]");
}

class CalibLstmCell {
 public:
  CalibLstmCell(const FArray<int32_t>& w_ih, const FArray<int32_t>& w_hh, const FArray<int32_t>& w_ih_fp,
                const FArray<int32_t>& w_hh_fp, const FArray<double>& bias, int bit_width, int search_range,
                int max_fix_pos, const std::optional<FArray<int32_t>>& node_bits) {
    require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
    require(search_range >= 1 && search_range <= 64, "search_range must be in 1..64");
    int64_t I, H;
    check_weights(w_ih, w_hh, &I, &H);
    require_shape(bias, {4 * H}, "bias");
    require_shape(w_ih_fp, {kNumGates}, "w_ih_fix_pos");
    require_shape(w_hh_fp, {kNumGates}, "w_hh_fix_pos");
    cell_ = std::make_unique<CalibCell>(bit_width, search_range, max_fix_pos, I, H, w_ih.data(), w_hh.data(),
                                        w_ih_fp.data(), w_hh_fp.data(), bias.data(), node_bits_of(node_bits).data());
  }

  py::tuple forward(const py::array& x, py::array_t<int64_t> fp_counts, const SequenceArgs& args, bool reverse,
                    int num_threads, const py::object& out_dtype) const {
    check_counts(fp_counts);
    const bool f32 = rnn_args::wants_float32_out(out_dtype);
    int64_t* counts = fp_counts.mutable_data();
    return rnn_args::with_typed_x(x, [&](const auto& xs) {
      using T = typename std::remove_reference_t<decltype(xs)>::value_type;
      const Sequence<T> seq = make_sequence<T>(xs, args, cell_->input_size, cell_->hidden, reverse);
      return f32 ? run<T, float>(seq, counts, num_threads) : run<T, double>(seq, counts, num_threads);
    });
  }

 private:
  template <typename TIn, typename TOut>
  py::tuple run(const Sequence<TIn>& seq, int64_t* counts, int num_threads) const {
    py::array_t<TOut> out({seq.batch, seq.steps, seq.hidden});
    py::array_t<double> h_n({seq.batch, seq.hidden});
    py::array_t<double> c_n({seq.batch, seq.hidden});
    {
      py::gil_scoped_release release;
      nndct::lstm::calibrate_forward<TIn, TOut>(*cell_, seq, counts, out.mutable_data(), h_n.mutable_data(),
                                               c_n.mutable_data(), num_threads);
    }
    return py::make_tuple(out, h_n, c_n);
  }

  std::unique_ptr<CalibCell> cell_;
};

SequenceArgs sequence_args(const std::optional<FArray<int64_t>>& lengths, const std::optional<FArray<double>>& h0,
                           const std::optional<FArray<double>>& c0) {
  return SequenceArgs{lengths, h0, c0};
}

// ---- test-only hooks ------------------------------------------------------------------------

// The portable scalar test-mode loop (lstm_reference.h), same returns as FixedLstmCell.forward.
py::tuple fixed_forward_scalar_py(const FArray<double>& x, const FArray<int32_t>& w_ih, const FArray<int32_t>& w_hh,
                                  const std::optional<FArray<int32_t>>& bias, int bit_width,
                                  const FArray<int32_t>& node_fp, const FArray<int32_t>& w_ih_fp,
                                  const FArray<int32_t>& w_hh_fp, const FArray<int32_t>& bias_fp,
                                  const std::optional<FArray<int64_t>>& lengths,
                                  const std::optional<FArray<double>>& h0, const std::optional<FArray<double>>& c0,
                                  bool reverse, bool record, const std::optional<FArray<int32_t>>& node_bits) {
  int64_t I, H;
  check_weights(w_ih, w_hh, &I, &H);
  const CellFix fix = make_fix(bit_width, node_fp, w_ih_fp, w_hh_fp, bias_fp, node_bits);
  const SequenceBatch seq = make_sequence<double>(x, sequence_args(lengths, h0, c0), I, H, reverse);
  py::array_t<double> out({seq.batch, seq.steps, H}), h_n({seq.batch, H}), c_n({seq.batch, H});
  nndct::lstm::StepRecord rec;
  {
    py::gil_scoped_release release;
    nndct::lstm::fixed_forward_scalar(fix, seq, w_ih.data(), w_hh.data(), bias ? bias->data() : nullptr,
                                      out.mutable_data(), h_n.mutable_data(), c_n.mutable_data(),
                                      record ? &rec : nullptr);
  }
  if (!record) return py::make_tuple(out, h_n, c_n, py::none());
  return py::make_tuple(out, h_n, c_n, FixedLstmCell::record_arrays(rec, I, H));
}

// The portable scalar calibration loop, with fake-quantized float64 weights.
py::tuple calibrate_forward_scalar_py(const FArray<double>& x, const FArray<double>& w_ih, const FArray<double>& w_hh,
                                      const FArray<double>& bias, int bit_width, py::array_t<int64_t> fp_counts,
                                      int search_range, int max_fix_pos,
                                      const std::optional<FArray<int64_t>>& lengths,
                                      const std::optional<FArray<double>>& h0,
                                      const std::optional<FArray<double>>& c0, bool reverse,
                                      const std::optional<FArray<int32_t>>& node_bits) {
  require(bit_width >= 2 && bit_width <= 16, "bit_width must be in 2..16");
  require(search_range >= 1 && search_range <= 64, "search_range must be in 1..64");
  require(w_hh.ndim() == 2 && w_hh.shape(0) == 4 * w_hh.shape(1), "w_hh must be [4*hidden, hidden]");
  const int64_t H = w_hh.shape(1);
  require(w_ih.ndim() == 2 && w_ih.shape(0) == 4 * H, "w_ih must be [4*hidden, input_size]");
  require_shape(bias, {4 * H}, "bias");
  check_counts(fp_counts);
  const SequenceBatch seq = make_sequence<double>(x, sequence_args(lengths, h0, c0), w_ih.shape(1), H, reverse);
  py::array_t<double> out({seq.batch, seq.steps, H}), h_n({seq.batch, H}), c_n({seq.batch, H});
  int64_t* counts = fp_counts.mutable_data();
  const std::vector<int> bits = node_bits_of(node_bits);
  {
    py::gil_scoped_release release;
    nndct::lstm::calibrate_forward_scalar(bit_width, search_range, max_fix_pos, seq, w_ih.data(), w_hh.data(),
                                          bias.data(), counts, out.mutable_data(), h_n.mutable_data(),
                                          c_n.mutable_data(), bits.data());
  }
  return py::make_tuple(out, h_n, c_n);
}

// acc = x @ codes.T through gate_matmul with `gates` gate blocks (exact int64).
py::array_t<int64_t> gate_matmul_py(const FArray<int32_t>& codes, int gates, const FArray<int16_t>& x) {
  require(gates >= 1 && gates <= 4, "gates must be 1..4");
  require(codes.ndim() == 2 && codes.shape(0) % gates == 0 && codes.shape(0) > 0, "codes must be [gates * units, in]");
  require(x.ndim() == 2 && x.shape(1) == codes.shape(1), "x must be [rows, in]");
  const int64_t units = codes.shape(0) / gates, in = codes.shape(1), rows = x.shape(0);
  const nndct::PackedGates w(codes.data(), gates, units, in);
  const int64_t n = w.padded_in(), width = gates * w.padded_units();
  nndct::AlignedArray<int16_t> xs(rows * n);
  nndct::AlignedArray<int64_t> acc(rows * width);
  std::vector<const int16_t*> xr(static_cast<size_t>(rows));
  std::vector<int64_t*> ar(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(x.data() + r * in, x.data() + (r + 1) * in, xs.data() + r * n);
    xr[static_cast<size_t>(r)] = xs.data() + r * n;
    ar[static_cast<size_t>(r)] = acc.data() + r * width;
  }
  {
    py::gil_scoped_release release;
    nndct::gate_matmul(w, xr.data(), rows, 0, w.blocks(), ar.data());
  }
  py::array_t<int64_t> out({rows, gates * units});
  for (int64_t r = 0; r < rows; ++r)
    for (int g = 0; g < gates; ++g)
      std::copy(acc.data() + r * width + g * w.padded_units(), acc.data() + r * width + g * w.padded_units() + units,
                out.mutable_data() + (r * gates + g) * units);
  return out;
}

// The step kernel's table node (TableOp) next to the scalar table node of lstm_int_ops.h, for
// every input code given. Returns (vector form, scalar form).
py::tuple table_node_py(const FArray<int64_t>& codes, bool is_tanh, int fin, int fout, int bit_width) {
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

// Test-only: dense_rows (the older double matrix kernel) and its portable loop.
py::array_t<double> dense_rows_py(const FArray<double>& x, const FArray<double>& wt, bool portable) {
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

// diffs_fix_pos_in_range on a float64 tensor (its range taken with finite_range).
int diffs_in_range_py(const FArray<double>& x, int bit_width, int search_range, std::optional<int> max_fix_pos) {
  nndct::FixPosSearch s;
  s.bit_width = bit_width;
  s.search_range = search_range;
  s.method = nndct::Method::kFloor;
  s.max_fix_pos = max_fix_pos;
  const int64_t n = x.size();
  return nndct::diffs_fix_pos_in_range(x.data(), n, nndct::finite_range(x.data(), n), s);
}

}  // namespace

void register_lstm_kernels(py::module_& m) {
  py::class_<FixedLstmCell>(m, "FixedLstmCell",
                            "Test-mode StandardLstmCell on integer codes, prepared once (weights packed as int16).")
      .def(py::init<const FArray<int32_t>&, const FArray<int32_t>&, const std::optional<FArray<int32_t>>&, int,
                    const FArray<int32_t>&, const FArray<int32_t>&, const FArray<int32_t>&,
                    const FArray<int32_t>&, const std::optional<FArray<int32_t>>&>(),
           py::arg("w_ih"), py::arg("w_hh"), py::arg("bias"), py::arg("bit_width"), py::arg("node_fix_pos"),
           py::arg("w_ih_fix_pos"), py::arg("w_hh_fix_pos"), py::arg("bias_fix_pos"), py::arg("node_bits") = py::none())
      .def(
          "forward",
          [](const FixedLstmCell& cell, const py::array& x, const std::optional<FArray<int64_t>>& lengths,
             const std::optional<FArray<double>>& h0, const std::optional<FArray<double>>& c0, bool reverse,
             bool record, int num_threads, const py::object& out_dtype) {
            return cell.forward(x, sequence_args(lengths, h0, c0), reverse, record, num_threads, out_dtype);
          },
          py::arg("x"), py::arg("lengths") = py::none(), py::arg("h0") = py::none(), py::arg("c0") = py::none(),
          py::arg("reverse") = false, py::arg("record") = false, py::arg("num_threads") = 1,
          py::arg("out_dtype") = py::none(),
          "Runs x [batch, steps, input] (float32 or float64). Returns (out, h_n, c_n, record): out in out_dtype "
          "(float64 by default), record None or (input_0 codes [T, I], codes of nodes 1..23 [T, 23, H]) of batch "
          "element 0 in processing order.")
      .def_property_readonly("input_size", &FixedLstmCell::input_size)
      .def_property_readonly("hidden_size", &FixedLstmCell::hidden_size)
      .def_property_readonly("steps_in_32bit_lanes", &FixedLstmCell::narrow,
                             "Whether the fix positions let every step run in 32-bit lanes (see StepPlan::narrow).");
  py::class_<CalibLstmCell>(m, "CalibLstmCell",
                            "Calibration-mode StandardLstmCell, prepared once: weight codes and fix positions "
                            "(the fake-quantized weights are code * 2^-fix_pos), bias fake-quantized values.")
      .def(py::init<const FArray<int32_t>&, const FArray<int32_t>&, const FArray<int32_t>&, const FArray<int32_t>&,
                    const FArray<double>&, int, int, int, const std::optional<FArray<int32_t>>&>(),
           py::arg("w_ih"), py::arg("w_hh"), py::arg("w_ih_fix_pos"), py::arg("w_hh_fix_pos"), py::arg("bias"),
           py::arg("bit_width"), py::arg("search_range") = 5, py::arg("max_fix_pos") = 12,
           py::arg("node_bits") = py::none())
      .def(
          "forward",
          [](const CalibLstmCell& cell, const py::array& x, py::array_t<int64_t> fp_counts,
             const std::optional<FArray<int64_t>>& lengths, const std::optional<FArray<double>>& h0,
             const std::optional<FArray<double>>& c0, bool reverse, int num_threads, const py::object& out_dtype) {
            return cell.forward(x, fp_counts, sequence_args(lengths, h0, c0), reverse, num_threads, out_dtype);
          },
          py::arg("x"), py::arg("fp_counts"), py::arg("lengths") = py::none(), py::arg("h0") = py::none(),
          py::arg("c0") = py::none(), py::arg("reverse") = false, py::arg("num_threads") = 1,
          py::arg("out_dtype") = py::none(),
          "Adds each node's per-step diffs fix position to fp_counts [24, 256] (slot = fp + 128), in place. "
          "Returns (out, h_n, c_n).");
  m.def("team_capacity", &nndct::team_capacity, "Threads the LSTM loops' thread team can use (hardware concurrency).");

  m.def("_lstm_fixed_forward_scalar", &fixed_forward_scalar_py, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"),
        py::arg("bias"), py::arg("bit_width"), py::arg("node_fix_pos"), py::arg("w_ih_fix_pos"),
        py::arg("w_hh_fix_pos"), py::arg("bias_fix_pos"), py::arg("lengths") = py::none(), py::arg("h0") = py::none(),
        py::arg("c0") = py::none(), py::arg("reverse") = false, py::arg("record") = false,
        py::arg("node_bits") = py::none(),
        "Test-only: the portable scalar test-mode loop (the definition FixedLstmCell is compared with).");
  m.def("_lstm_calibrate_forward_scalar", &calibrate_forward_scalar_py, py::arg("x"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("bias"), py::arg("bit_width"), py::arg("fp_counts"), py::arg("search_range") = 5,
        py::arg("max_fix_pos") = 12, py::arg("lengths") = py::none(), py::arg("h0") = py::none(),
        py::arg("c0") = py::none(), py::arg("reverse") = false, py::arg("node_bits") = py::none(),
        "Test-only: the portable scalar calibration loop (the definition CalibLstmCell is compared with; "
        "node_bits [24]: each node's own width, None: bit_width everywhere).");
  m.def("_gate_matmul", &gate_matmul_py, py::arg("codes"), py::arg("gates"), py::arg("x"),
        "Test-only: x @ codes.T (exact int64) through the packed int16 kernel of the recurrent cells.");
  m.def("_gate_matmul_isa", [] { return std::string(nndct::gate_matmul_isa()); },
        "Test-only: the instruction set the packed int16 kernel uses.");
  m.def("_set_gate_matmul_isa", [](const std::string& name) { return nndct::set_gate_matmul_isa(name.c_str()); },
        py::arg("name"),
        "Test-only: run the packed int16 kernel with 'avx512vnni', 'avx512bw', 'avx2', 'portable' or 'auto'; "
        "returns False when this CPU cannot.");
  m.def("_lstm_table_node", &table_node_py, py::arg("codes"), py::arg("is_tanh"), py::arg("fin"), py::arg("fout"),
        py::arg("bit_width"), "Test-only: (step-kernel form, scalar form) of a sigmoid/tanh node on integer codes.");
  m.def("_dense_rows", &dense_rows_py, py::arg("x"), py::arg("wt"), py::arg("portable") = false,
        "Test-only: x @ wt through dense_rows (or its portable loop).");
  m.def("_dense_rows_isa", [] { return std::string(nndct::dense_rows_isa()); },
        "Test-only: which dense_rows kernel this CPU uses ('avx512', 'avx2' or 'portable').");
  m.def("_diffs_fix_pos_in_range", &diffs_in_range_py, py::arg("x"), py::arg("bit_width"), py::arg("search_range"),
        py::arg("max_fix_pos"),
        "Test-only: the allocation-free diffs search of the LSTM calibration (floor rounding).");
}

}  // namespace nndct_py

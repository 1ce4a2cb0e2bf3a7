// Bindings of fix_neuron / fix_codes (per tensor and per channel). Raw, validated-in-C++
// entry points; nndct_shared.kernels wraps them with dtype/shape handling and method names.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "array_args.h"
#include "bindings.h"
#include "nndct/fix_kernels.h"
#include "nndct/parallel.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

template <typename T>
void def_fix_neuron(py::module_& m) {
  m.def(
      "fix_neuron",
      [](CArray<T> x, CArray<T> out, int bit_width, int fix_pos, int method) {
        check_same_size(x, out, "fix_neuron");
        const nndct::Method meth = nndct::method_from_int(method);
        const T* src = x.data();
        T* dst = out.mutable_data();
        const int64_t n = x.size();
        py::gil_scoped_release release;
        nndct::fix_neuron<T>(src, dst, n, bit_width, fix_pos, meth);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("bit_width"),
      py::arg("fix_pos"), py::arg("method"),
      "Fake-quantize x into out (may be x itself): q * 2^-fix_pos with q the clamped code.");
  m.def(
      "fix_neuron_per_channel",
      [](CArray<T> x, CArray<T> out, int64_t outer, int64_t channels, int64_t inner, int bit_width,
         CArray<int32_t> fix_pos, int method) {
        check_same_size(x, out, "fix_neuron_per_channel");
        if (fix_pos.size() != channels) throw std::invalid_argument("fix_pos must have one entry per channel");
        const nndct::ChannelLayout layout{outer, channels, inner};
        if (layout.size() != x.size()) throw std::invalid_argument("channel layout does not match the input size");
        const nndct::Method meth = nndct::method_from_int(method);
        const T* src = x.data();
        T* dst = out.mutable_data();
        const int32_t* fp = fix_pos.data();
        py::gil_scoped_release release;
        nndct::fix_neuron_per_channel<T>(src, dst, layout, bit_width, fp, meth);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("outer"), py::arg("channels"),
      py::arg("inner"), py::arg("bit_width"), py::arg("fix_pos").noconvert(), py::arg("method"));
}

template <typename T, typename C>
void def_fix_codes(py::module_& m) {
  m.def(
      "fix_codes",
      [](CArray<T> x, CArray<C> out, int bit_width, int fix_pos, int method) {
        check_same_size(x, out, "fix_codes");
        const nndct::Method meth = nndct::method_from_int(method);
        const T* src = x.data();
        C* dst = out.mutable_data();
        const int64_t n = x.size();
        py::gil_scoped_release release;
        nndct::fix_codes<T, C>(src, dst, n, bit_width, fix_pos, meth);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("bit_width"),
      py::arg("fix_pos"), py::arg("method"), "Integer codes of x (NaN -> 0) into out.");
  m.def(
      "fix_codes_per_channel",
      [](CArray<T> x, CArray<C> out, int64_t outer, int64_t channels, int64_t inner, int bit_width,
         CArray<int32_t> fix_pos, int method) {
        check_same_size(x, out, "fix_codes_per_channel");
        if (fix_pos.size() != channels) throw std::invalid_argument("fix_pos must have one entry per channel");
        const nndct::ChannelLayout layout{outer, channels, inner};
        if (layout.size() != x.size()) throw std::invalid_argument("channel layout does not match the input size");
        const nndct::Method meth = nndct::method_from_int(method);
        const T* src = x.data();
        C* dst = out.mutable_data();
        const int32_t* fp = fix_pos.data();
        py::gil_scoped_release release;
        nndct::fix_codes_per_channel<T, C>(src, dst, layout, bit_width, fp, meth);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("outer"), py::arg("channels"),
      py::arg("inner"), py::arg("bit_width"), py::arg("fix_pos").noconvert(), py::arg("method"));
}

}  // namespace

void register_fix_kernels(py::module_& m) {
  def_fix_neuron<float>(m);
  def_fix_neuron<double>(m);
  def_fix_codes<float, int8_t>(m);
  def_fix_codes<float, int16_t>(m);
  def_fix_codes<float, int32_t>(m);
  def_fix_codes<double, int8_t>(m);
  def_fix_codes<double, int16_t>(m);
  def_fix_codes<double, int32_t>(m);
  // Scalar entry points of the header API (fix_point.h) that C++ kernels such as the LSTM time
  // loop call per element; bound so that tests can check them against an exact model.
  m.def(
      "round_to_code",
      [](double r, int method, int64_t qmin, int64_t qmax) {
        constexpr int64_t kLimit = int64_t{1} << 52;
        if (qmin > qmax || qmin < -kLimit || qmax > kLimit) {
          throw std::invalid_argument("round_to_code needs -2^52 <= qmin <= qmax <= 2^52");
        }
        return nndct::round_to_code(r, nndct::method_from_int(method), qmin, qmax);
      },
      py::arg("r"), py::arg("method"), py::arg("qmin"), py::arg("qmax"),
      "Code of the already-scaled value r: rounded with method, clamped; NaN -> 0.");
  m.def(
      "fix_code_scalar",
      [](double x, int bit_width, int fix_pos, int method) {
        nndct::check_bit_width(bit_width);
        return nndct::fix_code(x, bit_width, fix_pos, nndct::method_from_int(method));
      },
      py::arg("x"), py::arg("bit_width"), py::arg("fix_pos"), py::arg("method"),
      "Code of one real value at (bit_width, fix_pos), through the header's scalar path.");
  m.def(
      "fix_value_scalar",
      [](double x, int bit_width, int fix_pos, int method) {
        nndct::check_bit_width(bit_width);
        return nndct::fix_value(x, bit_width, fix_pos, nndct::method_from_int(method));
      },
      py::arg("x"), py::arg("bit_width"), py::arg("fix_pos"), py::arg("method"));
  m.def("max_threads", &nndct::max_threads,
        "Threads the kernels may use (hardware concurrency capped by NNDCT_NUM_THREADS).");
}

}  // namespace nndct_py

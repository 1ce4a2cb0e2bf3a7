// Bindings of the sigmoid/tanh table lookups (float and integer-code variants).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "array_args.h"
#include "bindings.h"
#include "nndct/tables.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

template <typename T>
void def_float_lookups(py::module_& m) {
  m.def(
      "sigmoid_table_lookup",
      [](CArray<T> x, CArray<T> out, int fix_pos) {
        check_same_size(x, out, "sigmoid_table_lookup");
        const T* src = x.data();
        T* dst = out.mutable_data();
        const int64_t n = x.size();
        py::gil_scoped_release release;
        nndct::sigmoid_table_lookup<T>(src, dst, n, fix_pos);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("fix_pos"));
  m.def(
      "tanh_table_lookup",
      [](CArray<T> x, CArray<T> out, int fix_pos) {
        check_same_size(x, out, "tanh_table_lookup");
        const T* src = x.data();
        T* dst = out.mutable_data();
        const int64_t n = x.size();
        py::gil_scoped_release release;
        nndct::tanh_table_lookup<T>(src, dst, n, fix_pos);
      },
      py::arg("x").noconvert(), py::arg("out").noconvert(), py::arg("fix_pos"));
}

template <typename C>
void def_code_lookups(py::module_& m) {
  m.def(
      "sigmoid_table_codes",
      [](CArray<C> codes, CArray<int16_t> out, int fix_pos) {
        check_same_size(codes, out, "sigmoid_table_codes");
        const C* src = codes.data();
        int16_t* dst = out.mutable_data();
        const int64_t n = codes.size();
        py::gil_scoped_release release;
        nndct::sigmoid_table_codes<C>(src, dst, n, fix_pos);
      },
      py::arg("codes").noconvert(), py::arg("out").noconvert(), py::arg("fix_pos"));
  m.def(
      "tanh_table_codes",
      [](CArray<C> codes, CArray<int16_t> out, int fix_pos) {
        check_same_size(codes, out, "tanh_table_codes");
        const C* src = codes.data();
        int16_t* dst = out.mutable_data();
        const int64_t n = codes.size();
        py::gil_scoped_release release;
        nndct::tanh_table_codes<C>(src, dst, n, fix_pos);
      },
      py::arg("codes").noconvert(), py::arg("out").noconvert(), py::arg("fix_pos"));
}

py::array_t<int16_t> table_copy(const int16_t* t) {
  py::array_t<int16_t> a(nndct::kTableSize);
  std::copy(t, t + nndct::kTableSize, a.mutable_data());
  return a;
}

}  // namespace

void register_table_kernels(py::module_& m) {
  def_float_lookups<float>(m);
  def_float_lookups<double>(m);
  def_code_lookups<int8_t>(m);
  def_code_lookups<int16_t>(m);
  def_code_lookups<int32_t>(m);
  def_code_lookups<int64_t>(m);
  // Scalar header API (tables.h) used by C++ kernels, bound for tests.
  m.def(
      "sigmoid_code",
      [](int64_t code, int fix_pos) { return nndct::sigmoid_code(code, fix_pos); },
      py::arg("code"), py::arg("fix_pos"));
  m.def(
      "tanh_code", [](int64_t code, int fix_pos) { return nndct::tanh_code(code, fix_pos); },
      py::arg("code"), py::arg("fix_pos"));
  m.def("sigmoid_table", [] { return table_copy(nndct::sigmoid_table()); },
        "A copy of the 2048-entry sigmoid table T_s (codes at 2^-15).");
  m.def("tanh_table", [] { return table_copy(nndct::tanh_table()); },
        "A copy of the 2048-entry tanh table T_t (codes at 2^-15).");
}

}  // namespace nndct_py

// Bindings of the diffs/maxmin fix-position search and of the AbsHistogram core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include "array_args.h"
#include "bindings.h"
#include "nndct/calib.h"
#include "nndct/histogram.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

py::array_t<int32_t> to_numpy(const std::vector<int32_t>& v) {
  py::array_t<int32_t> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

template <typename T>
void def_search(py::module_& m) {
  m.def(
      "diffs_fix_pos",
      [](CArray<T> x, int bit_width, int search_range, int method, std::optional<int> max_fix_pos) {
        nndct::FixPosSearch s;
        s.bit_width = bit_width;
        s.search_range = search_range;
        s.method = nndct::method_from_int(method);
        s.max_fix_pos = max_fix_pos;
        const T* p = x.data();
        const int64_t n = x.size();
        py::gil_scoped_release release;
        return nndct::diffs_fix_pos<T>(p, n, s);
      },
      py::arg("x").noconvert(), py::arg("bit_width"), py::arg("search_range"), py::arg("method"),
      py::arg("max_fix_pos"));
  m.def(
      "maxmin_fix_pos",
      [](CArray<T> x, int bit_width, std::optional<int> max_fix_pos) {
        const T* p = x.data();
        const int64_t n = x.size();
        py::gil_scoped_release release;
        return nndct::maxmin_fix_pos<T>(p, n, bit_width, max_fix_pos);
      },
      py::arg("x").noconvert(), py::arg("bit_width"), py::arg("max_fix_pos"));
  m.def(
      "diffs_fix_pos_per_channel",
      [](CArray<T> x, int64_t outer, int64_t channels, int64_t inner, int bit_width,
         int search_range, int method, std::optional<int> max_fix_pos) {
        const nndct::ChannelLayout layout{outer, channels, inner};
        if (layout.size() != x.size()) throw std::invalid_argument("channel layout does not match the input size");
        nndct::FixPosSearch s;
        s.bit_width = bit_width;
        s.search_range = search_range;
        s.method = nndct::method_from_int(method);
        s.max_fix_pos = max_fix_pos;
        const T* p = x.data();
        std::vector<int32_t> r;
        {
          py::gil_scoped_release release;
          r = nndct::diffs_fix_pos_per_channel<T>(p, layout, s);
        }
        return to_numpy(r);
      },
      py::arg("x").noconvert(), py::arg("outer"), py::arg("channels"), py::arg("inner"),
      py::arg("bit_width"), py::arg("search_range"), py::arg("method"), py::arg("max_fix_pos"));
  m.def(
      "maxmin_fix_pos_per_channel",
      [](CArray<T> x, int64_t outer, int64_t channels, int64_t inner, int bit_width,
         std::optional<int> max_fix_pos) {
        const nndct::ChannelLayout layout{outer, channels, inner};
        if (layout.size() != x.size()) throw std::invalid_argument("channel layout does not match the input size");
        const T* p = x.data();
        std::vector<int32_t> r;
        {
          py::gil_scoped_release release;
          r = nndct::maxmin_fix_pos_per_channel<T>(p, layout, bit_width, max_fix_pos);
        }
        return to_numpy(r);
      },
      py::arg("x").noconvert(), py::arg("outer"), py::arg("channels"), py::arg("inner"),
      py::arg("bit_width"), py::arg("max_fix_pos"));
}

void def_histogram(py::module_& m) {
  using nndct::AbsHistogram;
  py::class_<AbsHistogram>(m, "AbsHistogramCore",
                           "C++ core of nndct_shared.kernels.AbsHistogram (use that class).")
      .def(py::init<int64_t>(), py::arg("num_bins"))
      .def(py::init([](int64_t num_bins, std::optional<int> range_exponent, CArray<int64_t> counts) {
             std::vector<int64_t> c(counts.data(), counts.data() + counts.size());
             return AbsHistogram(num_bins, range_exponent, std::move(c));
           }),
           py::arg("num_bins"), py::arg("range_exponent"), py::arg("counts").noconvert())
      .def(
          "update",
          [](AbsHistogram& h, CArray<float> x) {
            const float* p = x.data();
            const int64_t n = x.size();
            py::gil_scoped_release release;
            h.update(p, n);
          },
          py::arg("x").noconvert())
      .def(
          "update",
          [](AbsHistogram& h, CArray<double> x) {
            const double* p = x.data();
            const int64_t n = x.size();
            py::gil_scoped_release release;
            h.update(p, n);
          },
          py::arg("x").noconvert())
      .def("merge", &AbsHistogram::merge, py::arg("other"))
      .def_property_readonly("counts",
                             [](const AbsHistogram& h) {
                               py::array_t<int64_t> a(static_cast<py::ssize_t>(h.counts().size()));
                               std::copy(h.counts().begin(), h.counts().end(), a.mutable_data());
                               return a;
                             })
      .def_property_readonly("num_bins", &AbsHistogram::num_bins)
      .def_property_readonly("total", &AbsHistogram::total)
      .def_property_readonly("range_exponent", &AbsHistogram::range_exponent)
      .def_property_readonly("range_max", &AbsHistogram::range_max);
}

}  // namespace

void register_calib_kernels(py::module_& m) {
  def_search<float>(m);
  def_search<double>(m);
  def_histogram(m);
}

}  // namespace nndct_py

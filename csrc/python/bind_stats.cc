// Bindings of the output statistics of the accuracy tools (bias correction's channel sums and
// the grid a tensor lies on).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "array_args.h"
#include "bindings.h"
#include "nndct/output_stats.h"

namespace py = pybind11;

namespace nndct_py {
namespace {

template <typename T>
void def_channel_difference_sums(py::module_& m) {
  m.def(
      "channel_difference_sums",
      [](CArray<T> a, CArray<T> b, int64_t outer, int64_t channels, int64_t inner) {
        check_same_size(a, b, "channel_difference_sums");
        const nndct::ChannelLayout layout{outer, channels, inner};
        if (layout.size() != a.size()) throw std::invalid_argument("channel layout does not match the input size");
        py::array_t<double> out(static_cast<py::ssize_t>(channels));
        const T* pa = a.data();
        const T* pb = b.data();
        double* po = out.mutable_data();
        {
          py::gil_scoped_release release;
          nndct::channel_difference_sums<T>(pa, pb, layout, po);
        }
        return out;
      },
      py::arg("a").noconvert(), py::arg("b").noconvert(), py::arg("outer"), py::arg("channels"),
      py::arg("inner"));
}

template <typename T>
void def_grid_extent(py::module_& m) {
  m.def(
      "grid_extent",
      [](CArray<T> x) {
        const T* p = x.data();
        const int64_t n = x.size();
        nndct::GridExtent g;
        {
          py::gil_scoped_release release;
          g = nndct::grid_extent<T>(p, n);
        }
        return py::make_tuple(g.fraction_bits, g.max_abs, g.finite);
      },
      py::arg("x").noconvert());
}

}  // namespace

void register_stats_kernels(py::module_& m) {
  def_channel_difference_sums<float>(m);
  def_channel_difference_sums<double>(m);
  def_grid_extent<float>(m);
  def_grid_extent<double>(m);
}

}  // namespace nndct_py

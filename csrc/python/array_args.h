// Helpers shared by the binding files: C-contiguous NumPy arrays of an exact dtype (the Python
// wrapper converts beforehand, and the bindings use noconvert() so that no hidden copy is ever
// made -- a hidden copy of an output array would silently drop the results).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace nndct_py {

template <typename T>
using CArray = pybind11::array_t<T, pybind11::array::c_style>;

inline void check_same_size(const pybind11::array& a, const pybind11::array& b, const char* what) {
  if (a.size() != b.size()) {
    throw std::invalid_argument(std::string(what) + ": output has " + std::to_string(b.size()) +
                                " elements but the input has " + std::to_string(a.size()));
  }
}

}  // namespace nndct_py

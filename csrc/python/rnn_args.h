// Argument checks shared by the RNN time-loop bindings: shapes of the weight and state arrays and
// the sequence batch description. Bad arguments raise ValueError naming the array.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "nndct/lstm_cell.h"

namespace nndct_py {
namespace rnn_args {

template <typename T>
using ForcedArray = pybind11::array_t<T, pybind11::array::c_style | pybind11::array::forcecast>;

inline void require(bool ok, const std::string& what) {
  if (!ok) throw pybind11::value_error(what);
}

template <typename T>
void require_shape(const ForcedArray<T>& a, std::initializer_list<int64_t> shape, const char* name) {
  require(a.ndim() == static_cast<pybind11::ssize_t>(shape.size()), std::string(name) + " has the wrong number of dimensions");
  int d = 0;
  for (int64_t s : shape) require(a.shape(d++) == s, std::string(name) + " has the wrong shape");
}

// x [batch, steps, input] of dtype T (float32 or float64: the loops read either exactly), with
// the optional lengths and h0 (c0 left null), checked against the cell's sizes.
template <typename T>
nndct::lstm::Sequence<T> typed_sequence(const pybind11::array_t<T, pybind11::array::c_style>& x,
                                        const std::optional<ForcedArray<int64_t>>& lengths,
                                        const std::optional<ForcedArray<double>>& h0, int64_t input_size,
                                        int64_t hidden, bool reverse) {
  require(x.ndim() == 3, "x must be [batch, steps, input_size]");
  require(x.shape(2) == input_size, "x has " + std::to_string(x.shape(2)) + " features, the cell expects " +
                                        std::to_string(input_size));
  nndct::lstm::Sequence<T> seq;
  seq.batch = x.shape(0);
  seq.steps = x.shape(1);
  seq.input_size = input_size;
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
  return seq;
}

// Calls fn(typed x) with x as float32 when it is a C-contiguous float32 array, as float64
// otherwise (converted once).
template <typename Fn>
auto with_typed_x(const pybind11::array& x, Fn&& fn) {
  if (pybind11::isinstance<pybind11::array_t<float>>(x) && (x.flags() & pybind11::array::c_style))
    return fn(pybind11::array_t<float, pybind11::array::c_style>::ensure(x));
  return fn(pybind11::array_t<double, pybind11::array::c_style>(ForcedArray<double>::ensure(x)));
}

// Whether the output sequence is float32 (out_dtype float32) or float64 (None or float64).
inline bool wants_float32_out(const pybind11::object& out_dtype) {
  if (out_dtype.is_none()) return false;
  const pybind11::dtype d = pybind11::dtype::from_args(out_dtype);
  require(d.is(pybind11::dtype::of<float>()) || d.is(pybind11::dtype::of<double>()),
          "out_dtype must be float32 or float64");
  return d.is(pybind11::dtype::of<float>());
}

// Per-node bit widths [nodes] of a cell (mixed widths), each in 2..16; None leaves every node at
// the cell's bit width (zeros, CellFix::bits' "no own width").
inline std::vector<int> node_bits_of(const std::optional<ForcedArray<int32_t>>& bits, int nodes) {
  std::vector<int> out(static_cast<size_t>(nodes), 0);
  if (!bits) return out;
  require_shape(*bits, {nodes}, "node_bits");
  for (int i = 0; i < nodes; ++i) {
    out[static_cast<size_t>(i)] = bits->data()[i];
    require(out[static_cast<size_t>(i)] >= 2 && out[static_cast<size_t>(i)] <= 16, "node_bits must be in 2..16");
  }
  return out;
}

}  // namespace rnn_args
}  // namespace nndct_py

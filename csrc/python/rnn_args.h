// Argument checks shared by the RNN time-loop bindings: shapes of the weight and state arrays and
// the sequence batch description. Bad arguments raise ValueError naming the array.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <optional>
#include <string>

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

// x [batch, steps, input], lengths [batch], h0 [batch, hidden] (c0 is left null).
inline nndct::lstm::SequenceBatch sequence(const ForcedArray<double>& x,
                                           const std::optional<ForcedArray<int64_t>>& lengths,
                                           const std::optional<ForcedArray<double>>& h0, int64_t hidden,
                                           bool reverse) {
  require(x.ndim() == 3, "x must be [batch, steps, input_size]");
  nndct::lstm::SequenceBatch seq;
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
  return seq;
}

}  // namespace rnn_args
}  // namespace nndct_py

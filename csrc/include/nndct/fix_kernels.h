// Array kernels for fake-quantization (fix_neuron) and integer codes (fix_codes), per tensor and
// per channel. Arguments are validated here (std::invalid_argument) so that C++ callers get the
// same checks as Python callers.
#pragma once

#include <cstdint>

#include "nndct/fix_point.h"

namespace nndct {

// out[i] = q_i * 2^-fix_pos in T, with q_i the code of x[i]. out may equal x (in place) but must
// not otherwise overlap it. Runs on several threads for large n.
template <typename T>
void fix_neuron(const T* x, T* out, int64_t n, int bit_width, int fix_pos, Method method);

// out[i] = q_i (NaN -> 0). C must be wide enough for bit_width (int8 <= 8, int16 <= 16, ...).
template <typename T, typename C>
void fix_codes(const T* x, C* out, int64_t n, int bit_width, int fix_pos, Method method);

// A tensor viewed as [outer, channels, inner] (row-major): channel c of an array of shape
// (..., C, ...) split at the channel axis.
struct ChannelLayout {
  int64_t outer;
  int64_t channels;
  int64_t inner;
  int64_t size() const { return outer * channels * inner; }
};

// As fix_neuron / fix_codes with fix_pos[c] for channel c (fix_pos has layout.channels entries).
template <typename T>
void fix_neuron_per_channel(const T* x, T* out, const ChannelLayout& layout, int bit_width,
                            const int32_t* fix_pos, Method method);
template <typename T, typename C>
void fix_codes_per_channel(const T* x, C* out, const ChannelLayout& layout, int bit_width,
                           const int32_t* fix_pos, Method method);

}  // namespace nndct

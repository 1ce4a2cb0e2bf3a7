// Fix-position calibration from a tensor's values: the reference "diffs" search (minimum sum of
// squared fake-quantization error over a few fix positions) and its no-search variant "maxmin".
//
// Defined edge cases (the reference left them undefined or device dependent):
// * Only finite values count: NaN and +-inf are left out of the min/max and of the error.
// * An empty tensor, or one without any finite value, is an error (std::invalid_argument).
// * When the step max(x_min/lb, x_max/ub) is below the smallest normal float (2^-126) -- in
//   particular for an all-zero tensor -- every fix position reproduces the values (almost)
//   exactly, so the most precise allowed one is returned: max_fix_pos, or kZeroTensorFixPos (18,
//   like the reference CUDA kernel) when there is no cap. The threshold also keeps every
//   candidate fix position within the range the kernels represent exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "nndct/fix_kernels.h"
#include "nndct/fix_point.h"

namespace nndct {

constexpr int kZeroTensorFixPos = 18;
constexpr int kMaxSearchRange = 64;

struct FixPosSearch {
  int bit_width = 16;
  int search_range = 5;            // number of candidates: max_scale .. max_scale + range - 1
  Method method = Method::kDpuRound;
  std::optional<int> max_fix_pos = 12;  // cap applied last; nullopt = no cap
};

// Diffs search on a whole tensor (search.search_range candidates).
template <typename T>
int diffs_fix_pos(const T* x, int64_t n, const FixPosSearch& search);

// fp = max_scale capped by max_fix_pos (a search with range 1, without computing errors).
template <typename T>
int maxmin_fix_pos(const T* x, int64_t n, int bit_width, std::optional<int> max_fix_pos);

// One fix position per channel of a [outer, channels, inner] layout.
template <typename T>
std::vector<int32_t> diffs_fix_pos_per_channel(const T* x, const ChannelLayout& layout,
                                               const FixPosSearch& search);
template <typename T>
std::vector<int32_t> maxmin_fix_pos_per_channel(const T* x, const ChannelLayout& layout,
                                                int bit_width, std::optional<int> max_fix_pos);

// The finite min / max / count of a tensor: the first pass of the diffs search.
struct FiniteRange {
  double min = 0.0, max = 0.0;
  int64_t finite = 0;
};
FiniteRange finite_range(const double* x, int64_t n);
// The range of the concatenation of two tensors (min / max do not depend on the order).
FiniteRange combine(const FiniteRange& a, const FiniteRange& b);

// diffs_fix_pos of one contiguous tensor whose FiniteRange is already known, on the calling
// thread and without allocating (the LSTM calibration calls it for every node of every time
// step). Same result as diffs_fix_pos(x, n, search), exceptions included.
int diffs_fix_pos_in_range(const double* x, int64_t n, const FiniteRange& range, const FixPosSearch& search);

}  // namespace nndct

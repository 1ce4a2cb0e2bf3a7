// One-pass, mergeable histogram of |x| over the finite values of many tensors, for percentile,
// entropy and MSE calibration.
//
// The range is [0, 2^e) split into num_bins equal bins (num_bins a power of two), so the bin of
// |x| is floor(|x| * 2^(log2(num_bins) - e)): an exact power-of-two scaling. When a value does
// not fit, e grows and adjacent bin pairs merge (bin b -> b / 2 per doubling), which gives exactly
// the counts a histogram built with the larger range from the start would have; the final counts
// therefore do not depend on the order of updates and merges.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace nndct {

class AbsHistogram {
 public:
  static constexpr int64_t kDefaultBins = 2048;
  static constexpr int64_t kMaxBins = int64_t{1} << 24;

  explicit AbsHistogram(int64_t num_bins = kDefaultBins);

  // Rebuilds a histogram from its state (see to_state in Python); validates everything.
  AbsHistogram(int64_t num_bins, std::optional<int> range_exponent, std::vector<int64_t> counts);

  // Adds |x[i]| for every finite x[i] (NaN and +-inf are skipped).
  template <typename T>
  void update(const T* x, int64_t n);

  // Adds other's counts, after bringing both to the larger range.
  void merge(const AbsHistogram& other);

  int64_t num_bins() const { return num_bins_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t total() const { return total_; }
  // e of the range [0, 2^e); nullopt until a nonzero finite value has been seen.
  std::optional<int> range_exponent() const { return exponent_; }
  // 2^e, or 0.0 while there is no range yet (then every count is in bin 0: values were zeros).
  double range_max() const;

 private:
  void grow_to(int exponent);

  int64_t num_bins_;
  int log2_bins_;
  std::optional<int> exponent_;
  std::vector<int64_t> counts_;
  int64_t total_ = 0;
};

}  // namespace nndct

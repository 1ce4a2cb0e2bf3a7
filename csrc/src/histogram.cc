// AbsHistogram: exact power-of-two binning, growth by merging bin pairs, per-thread partial
// counts for large updates.
#include "nndct/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "nndct/parallel.h"

namespace nndct {
namespace {

int log2_exact(int64_t v) {
  int l = 0;
  while ((int64_t{1} << l) < v) ++l;
  return l;
}

// Largest finite |x| (0 if none), over at most max_threads() contiguous parts.
template <typename T>
double max_abs_finite(const T* x, int64_t n) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(max_threads(), (n + kChunkElements - 1) / kChunkElements));
  std::vector<T> part_max(static_cast<size_t>(parts), T(0));
  const T big = std::numeric_limits<T>::max();
  auto run = [&](int64_t p) {
    T m = 0;
    for (int64_t i = n * p / parts, e = n * (p + 1) / parts; i < e; ++i) {
      const T a = std::fabs(x[i]);
      m = ((a <= big) & (a > m)) ? a : m;  // NaN and inf fail a <= big
    }
    part_max[static_cast<size_t>(p)] = m;
  };
  if (parts == 1) {
    run(0);
  } else {
    parallel_for_chunks(parts, run);
  }
  return static_cast<double>(*std::max_element(part_max.begin(), part_max.end()));
}

}  // namespace

AbsHistogram::AbsHistogram(int64_t num_bins) : num_bins_(num_bins) {
  if (num_bins < 2 || num_bins > kMaxBins || (num_bins & (num_bins - 1)) != 0) {
    throw std::invalid_argument("num_bins must be a power of two in [2, 2^24] (exact binning and "
                                "range doubling need it), got " + std::to_string(num_bins));
  }
  log2_bins_ = log2_exact(num_bins);
  counts_.assign(static_cast<size_t>(num_bins), 0);
}

AbsHistogram::AbsHistogram(int64_t num_bins, std::optional<int> range_exponent,
                           std::vector<int64_t> counts)
    : AbsHistogram(num_bins) {
  if (static_cast<int64_t>(counts.size()) != num_bins) {
    throw std::invalid_argument("histogram state has " + std::to_string(counts.size()) +
                                " counts but num_bins is " + std::to_string(num_bins));
  }
  int64_t total = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    if (counts[b] < 0) throw std::invalid_argument("histogram state has a negative count");
    if (!range_exponent && b > 0 && counts[b] != 0) {
      throw std::invalid_argument("histogram state without a range may only count zeros (bin 0)");
    }
    total += counts[b];
  }
  if (range_exponent && (*range_exponent < -1100 || *range_exponent > 1100)) {
    throw std::invalid_argument("histogram range exponent out of range: " + std::to_string(*range_exponent));
  }
  exponent_ = range_exponent;
  counts_ = std::move(counts);
  total_ = total;
}

double AbsHistogram::range_max() const { return exponent_ ? std::ldexp(1.0, *exponent_) : 0.0; }

void AbsHistogram::grow_to(int exponent) {
  if (!exponent_) {
    exponent_ = exponent;  // all counts so far are zeros in bin 0, valid for any range
    return;
  }
  if (exponent <= *exponent_) return;
  const int shift = exponent - *exponent_;
  std::vector<int64_t> merged(counts_.size(), 0);
  for (size_t b = 0; b < counts_.size(); ++b) {
    const size_t nb = shift >= 63 ? 0 : static_cast<size_t>(static_cast<uint64_t>(b) >> shift);
    merged[nb] += counts_[b];
  }
  counts_.swap(merged);
  exponent_ = exponent;
}

template <typename T>
void AbsHistogram::update(const T* x, int64_t n) {
  if (n <= 0) return;
  const double m = max_abs_finite(x, n);
  if (m > 0.0) {
    int e = 0;
    std::frexp(m, &e);  // m = f * 2^e with f in [0.5, 1): m < 2^e
    grow_to(e);
  }
  // Bin scale 2^(log2_bins - e); with no range yet only zeros remain and they go to bin 0.
  const double scale = exponent_ ? std::ldexp(1.0, log2_bins_ - *exponent_) : 0.0;
  const int64_t last = num_bins_ - 1;
  const T big = std::numeric_limits<T>::max();
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(max_threads(), (n + kChunkElements - 1) / kChunkElements));
  auto count_part = [&](int64_t b, int64_t e, int64_t* counts, int64_t* finite) {
    int64_t f = 0;
    for (int64_t i = b; i < e; ++i) {
      const double a = std::fabs(static_cast<double>(x[i]));
      if (!(a <= static_cast<double>(big))) continue;
      const int64_t bin = std::min(static_cast<int64_t>(a * scale), last);
      ++counts[bin];
      ++f;
    }
    *finite += f;
  };
  if (parts == 1) {
    int64_t finite = 0;
    count_part(0, n, counts_.data(), &finite);
    total_ += finite;
    return;
  }
  std::vector<std::vector<int64_t>> local(static_cast<size_t>(parts), std::vector<int64_t>(counts_.size(), 0));
  std::vector<int64_t> finite(static_cast<size_t>(parts), 0);
  parallel_for_chunks(parts, [&](int64_t p) {
    count_part(n * p / parts, n * (p + 1) / parts, local[static_cast<size_t>(p)].data(), &finite[static_cast<size_t>(p)]);
  });
  for (int64_t p = 0; p < parts; ++p) {
    for (size_t b = 0; b < counts_.size(); ++b) counts_[b] += local[static_cast<size_t>(p)][b];
    total_ += finite[static_cast<size_t>(p)];
  }
}

void AbsHistogram::merge(const AbsHistogram& other) {
  if (other.num_bins_ != num_bins_) {
    throw std::invalid_argument("cannot merge histograms with different num_bins (" +
                                std::to_string(num_bins_) + " vs " + std::to_string(other.num_bins_) + ")");
  }
  if (&other == this) {
    for (auto& c : counts_) c *= 2;
    total_ *= 2;
    return;
  }
  AbsHistogram rhs = other;
  if (rhs.exponent_ && (!exponent_ || *rhs.exponent_ > *exponent_)) grow_to(*rhs.exponent_);
  if (exponent_) rhs.grow_to(*exponent_);
  for (size_t b = 0; b < counts_.size(); ++b) counts_[b] += rhs.counts_[b];
  total_ += rhs.total_;
}

template void AbsHistogram::update<float>(const float*, int64_t);
template void AbsHistogram::update<double>(const double*, int64_t);

}  // namespace nndct

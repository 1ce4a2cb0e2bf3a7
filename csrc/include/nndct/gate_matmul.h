// The matrix products of the recurrent cells (LSTM, GRU) on 16-bit integer codes, exact.
//
// A cell's weights are G gate blocks of `units` rows each (PyTorch's gate-major layout: row
// g * units + j is gate g of unit j), every entry an integer code that fits int16 (bit widths up
// to 16). PackedGates stores them once per cell as int16, in blocks of kUnitBlock units:
//
//   block b = units [16b, 16b + 16): for each pair p of inputs (2p, 2p + 1), for each gate g,
//   16 lanes x 2 int16 = (w[g*units + 16b + l][2p], w[...][2p + 1]) for lane l = 0..15
//
// so one 64-byte load holds one gate's 16 lanes for two inputs (the operand of one AVX-512
// VNNI vpdpwssd / vpmaddwd), a block is read as one contiguous stream (no power-of-two strides,
// hence no cache-set aliasing), half the bytes of float32 weights, and all G gates of a unit come
// out of one pass, which lets a thread own whole units of a cell step.
//
// Exactness: products of two int16 codes are below 2^30 in magnitude; the SIMD kernels add
// them in int32 lanes (wrapping arithmetic, so only the value at a flush has to fit) and add
// each lane to an int64 accumulator every `flush` input pairs, where `flush` is the largest
// power of two for which no group's sum of |w| times max|x| can exceed 2^31 - 1 (tables built
// at packing time). The single case where even one pair can overflow (both weights and an input
// at -32768) splits the inputs into bytes, x = 256 * hi + lo, and combines two exact products.
// The result is therefore the exact integer sum, whatever the ISA or the order of additions;
// the tests compare every ISA with the portable int64 loop.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace nndct {

constexpr int64_t kUnitBlock = 16;

// A 64-byte aligned array (the packed weights and the loops' scratch rows).
template <typename T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(int64_t n) { resize(n); }
  void resize(int64_t n);  // contents are zero after a resize
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  T& operator[](int64_t i) { return p_.get()[i]; }
  const T& operator[](int64_t i) const { return p_.get()[i]; }
  int64_t size() const { return n_; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> p_;
  int64_t n_ = 0;
};

class PackedGates {
 public:
  PackedGates() = default;
  // `codes`: gates * units rows of `in` codes each; every code must fit int16
  // (std::invalid_argument otherwise).
  PackedGates(const int32_t* codes, int gates, int64_t units, int64_t in);

  int gates() const { return gates_; }
  int64_t units() const { return units_; }
  int64_t in() const { return in_; }
  int64_t pairs() const { return (in_ + 1) / 2; }
  int64_t blocks() const { return (units_ + kUnitBlock - 1) / kUnitBlock; }
  // Units rounded up to whole blocks: the stride between gates in an accumulator row.
  int64_t padded_units() const { return blocks() * kUnitBlock; }
  // Elements an input row must have readable: in rounded up to even (the pad is multiplied by
  // zero weights, so its value does not matter).
  int64_t padded_in() const { return pairs() * 2; }
  const int16_t* block(int64_t b) const { return data_.data() + b * pairs() * gates_ * 2 * kUnitBlock; }

  // The largest flush interval in input pairs (a power of two; >= pairs() means "never") whose
  // int32 partial sums cannot overflow for inputs with |x| <= max_abs_x; 0 when a single pair
  // can overflow.
  int64_t flush_pairs(int64_t max_abs_x) const;

 private:
  int gates_ = 0;
  int64_t units_ = 0, in_ = 0;
  AlignedArray<int16_t> data_;
  // l1_[e]: the largest sum of |w| over 2^e consecutive pairs (aligned groups) of any row.
  std::vector<int64_t> l1_;
};

// For every row r < rows, gate g, unit j in blocks [b0, b1):
//   acc[r][g * padded_units + j] = sum_k x[r][k] * w[g * units + j][k]   (exact)
// x[r] must have w.padded_in() readable int16 elements; acc[r] rows have
// gates * padded_units int64 elements (only the columns of the blocks are written).
void gate_matmul(const PackedGates& w, const int16_t* const* x, int64_t rows, int64_t b0, int64_t b1,
                 int64_t* const* acc);

// The instruction set gate_matmul uses: "avx512vnni", "avx512bw", "avx2" or "portable" (the
// best this CPU has, unless set_gate_matmul_isa chose a lower one).
const char* gate_matmul_isa();
// Test hook: use `name` (one of the above, at most what the CPU has) from now on; returns false
// when the CPU cannot run it. "auto" restores the best.
bool set_gate_matmul_isa(const char* name);

}  // namespace nndct

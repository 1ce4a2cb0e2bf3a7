// Calibration mode of the quantized StandardLstmCell: the reference's fake-quantized float cell.
//
// One call of the reference's cell is one time step of one batch: every node computes its output
// in float from already fake-quantized inputs, scans it with the diffs search, appends the fix
// position to its history and fake-quantizes the output (floor) at the history's mode. Later
// nodes and steps therefore see quantized values, exactly as in the reference. The only liberty
// taken is float64 instead of float32 arithmetic (deterministic, and never less accurate).
#include <algorithm>
#include <cmath>
#include <atomic>
#include <exception>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "nndct/calib.h"
#include "nndct/dense_rows.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_step_kernel.h"
#include "nndct/parallel.h"
#include "nndct/simd.h"

namespace nndct {
namespace lstm {

bool histogram_mode(const int64_t* counts, int* fix_pos) {
  int best = -1;
  for (int s = 0; s < kFpSlots; ++s)
    if (counts[s] > 0 && (best < 0 || counts[s] > counts[best])) best = s;
  if (best < 0) return false;
  *fix_pos = best - kFpOffset;
  return true;
}

namespace {

// Below this many values per node and step, handing half the gates to another thread costs
// more than it saves.
constexpr int64_t kMinPairElements = 2048;

// A second thread that runs one task per call of run() in lockstep with the caller: the caller
// runs `here`, the pair thread `there`, and run() returns when both are done. One thread for the
// whole sequence, since starting a thread per time step would cost more than the step; the
// hand-offs spin (yielding now and then) instead of sleeping on a condition variable, because a
// futex wake-up between virtual CPUs costs as much as half a step's work.
class PairThread {
 public:
  explicit PairThread(bool enabled) {
    if (enabled) worker_ = std::thread([this] { loop(); });
  }
  ~PairThread() {
    if (!worker_.joinable()) return;
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    worker_.join();
  }
  PairThread(const PairThread&) = delete;
  PairThread& operator=(const PairThread&) = delete;

  void run(const std::function<void()>& here, const std::function<void()>& there, bool parallel) {
    if (!parallel || !worker_.joinable()) {
      here();
      there();
      return;
    }
    task_ = &there;
    done_.store(false, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    std::exception_ptr mine;
    try {
      here();
    } catch (...) {
      mine = std::current_exception();
    }
    spin_until([this] { return done_.load(std::memory_order_acquire); });
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  template <typename Ready>
  static void spin_until(Ready&& ready) {
    for (uint32_t i = 1; !ready(); ++i)
      if ((i & 255) == 0) std::this_thread::yield();
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      seen = generation_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_acquire)) return;
      try {
        (*task_)();
      } catch (...) {
        error_ = std::current_exception();
      }
      done_.store(true, std::memory_order_release);
    }
  }

  std::thread worker_;
  const std::function<void()>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> done_{true}, stop_{false};
  std::exception_ptr error_;
};

class NodeScanner {
 public:
  NodeScanner(int bit_width, int search_range, int max_fix_pos, int64_t* counts)
      : bit_width_(bit_width), search_range_(search_range), max_fix_pos_(max_fix_pos),
        counts_(counts), range_(CodeRange::signed_bits(bit_width)) {}

  // Scans node `node`'s output v[0..n), records its fix position and fake-quantizes v in place
  // at the mode. All-zero outputs carry no range information and do not vote.
  void scan(int node, double* v, int64_t n, bool is_input) {
    if (n == 0) return;
    const bool any = std::any_of(v, v + n, [](double a) { return a != 0.0; });
    int64_t* row = counts_ + node * kFpSlots;
    if (any) {
      FixPosSearch search;
      search.bit_width = bit_width_;
      search.search_range = is_input ? 1 : search_range_;
      search.method = Method::kFloor;
      search.max_fix_pos = max_fix_pos_;
      const int fp = diffs_fix_pos<double>(v, n, search);
      const int slot = std::clamp(fp + kFpOffset, 0, kFpSlots - 1);
      ++row[slot];
    }
    int fp;
    if (!histogram_mode(row, &fp)) return;  // nothing non-zero seen yet: v is all zero
    floor_codes(v, n, fp, range_.lo, range_.hi, pow2(-fp), v);  // Q_fp in place
  }

  // Current fix position of a node (its mode), or max_fix_pos before any vote.
  int fix_pos(int node) const {
    int fp;
    return histogram_mode(counts_ + node * kFpSlots, &fp) ? fp : max_fix_pos_;
  }

 private:
  int bit_width_, search_range_, max_fix_pos_;
  int64_t* counts_;
  CodeRange range_;
};

// out[r][j] = sum_k a[r][k] * wt[k][j] + bias[j]. Every operand is on a power-of-two grid
// (inputs and states fake-quantized by their scan, weights and bias by the caller), so the sums
// are exact and the order of the additions (dense_rows tiles them) cannot change a bit.
void dense(const double* a, int64_t rows, int64_t in, const std::vector<double>& wt,
           const double* bias, int64_t cols, double* out) {
  std::vector<const double*> row_ptrs(rows);
  for (int64_t r = 0; r < rows; ++r) row_ptrs[r] = a + r * in;
  dense_rows(row_ptrs.data(), rows, in, wt.data(), cols, out);
  if (!bias) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) out[r * cols + j] += bias[j];
}

std::vector<double> transpose(const double* w, int64_t rows, int64_t cols) {
  std::vector<double> t(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = w[r * cols + c];
  return t;
}

// Table lookup of values on the 2^-fin grid; results on the 2^-15 grid (the lookup of the
// test-mode step kernel, so both modes share one definition).
NNDCT_TARGET_CLONES void table_loop(const TableOp& t, const int64_t* NNDCT_RESTRICT table,
                                    const double* NNDCT_RESTRICT in, double amp, double* NNDCT_RESTRICT out,
                                    int64_t n) {
  const double inv = pow2(-kTableOutputFixPos);
  const int il = t.index.left, ir = t.index.right, ol = t.out.left, orr = t.out.right;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t code = static_cast<int64_t>(in[i] * amp);  // exact: on the grid
    out[i] = static_cast<double>(table_value(table, code, t.in_lo, t.in_hi, il, ir, t.high, t.low, ol, orr,
                                             t.out_lo, t.out_hi)) * inv;
  }
}

void table(bool is_tanh, const double* in, int fin, double* out, int64_t n) {
  // The step kernel's table node with no output requantization (outputs stay on the 2^-15 grid).
  const TableOp t = TableOp::make(is_tanh, fin, kTableOutputFixPos, 0, 0);
  table_loop(t, t.table, in, pow2(fin), out, n);
}

}  // namespace

void calibrate_forward(int bit_width, int search_range, int max_fix_pos, const SequenceBatch& seq,
                       const double* w_ih, const double* w_hh, const double* bias,
                       int64_t* fp_counts, double* out, double* h_n, double* c_n) {
  const int64_t B = seq.batch, T = seq.steps, I = seq.input_size, H = seq.hidden, G = 4 * H;
  NodeScanner scanner(bit_width, search_range, max_fix_pos, fp_counts);
  const std::vector<double> wih_t = transpose(w_ih, G, I);
  const std::vector<double> whh_t = transpose(w_hh, G, H);
  std::vector<int64_t> len(B);
  for (int64_t b = 0; b < B; ++b)
    len[b] = seq.lengths ? std::min<int64_t>(std::max<int64_t>(seq.lengths[b], 0), T) : T;
  // State of every row (fake-quantized h_next / c_next of its last step).
  std::vector<double> h(B * H, 0.0), c(B * H, 0.0);
  if (seq.h0) std::copy(seq.h0, seq.h0 + B * H, h.begin());
  if (seq.c0) std::copy(seq.c0, seq.c0 + B * H, c.begin());
  std::fill(out, out + B * T * H, 0.0);

  std::vector<int64_t> rows;
  std::vector<double> x, hin, cin, ax, ah, node(kNumNodes * B * H), buf(B * G);
  PairThread pair(max_threads() >= 2 && B * H >= kMinPairElements);
  for (int64_t t = 0; t < T; ++t) {
    rows.clear();
    for (int64_t b = 0; b < B; ++b)
      if (t < len[b]) rows.push_back(b);
    const int64_t n = static_cast<int64_t>(rows.size());
    if (n == 0) continue;
    x.resize(n * I);
    hin.resize(n * H);
    cin.resize(n * H);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = rows[k];
      const int64_t pos = seq.reverse ? len[b] - 1 - t : t;
      std::copy(seq.x + (b * T + pos) * I, seq.x + (b * T + pos + 1) * I, x.begin() + k * I);
      std::copy(h.begin() + b * H, h.begin() + (b + 1) * H, hin.begin() + k * H);
      std::copy(c.begin() + b * H, c.begin() + (b + 1) * H, cin.begin() + k * H);
    }
    const bool paired = n * H >= kMinPairElements;  // independent nodes below run side by side
    pair.run([&] { scanner.scan(kInput1, hin.data(), n * H, true); },
             [&] {
               scanner.scan(kInput0, x.data(), n * I, true);
               scanner.scan(kInput2, cin.data(), n * H, true);
             },
             paired);

    auto node_buf = [&](int idx) { return node.data() + idx * B * H; };
    // Gate pre-activations: dense outputs per gate gathered into each node's buffer.
    ax.resize(n * G);
    ah.resize(n * G);
    // Rows are independent: the first half here, the second on the pair thread.
    auto dense_rows_of = [&](int64_t r0, int64_t r1) {
      dense(x.data() + r0 * I, r1 - r0, I, wih_t, bias, G, ax.data() + r0 * G);
      dense(hin.data() + r0 * H, r1 - r0, H, whh_t, nullptr, G, ah.data() + r0 * G);
    };
    const int64_t half = n / 2;
    pair.run([&] { dense_rows_of(0, half); }, [&] { dense_rows_of(half, n); }, paired);
    // The four gates are independent within a step (each reads ax/ah and writes its own node
    // buffers and vote rows), so gates 0-1 run here while gates 2-3 run on the pair thread; every
    // search sees exactly the values it sees serially, so the votes do not depend on threading.
    auto gate = [&](int g) {
      double* a = node_buf(dense_x_node(g));
      double* bb = node_buf(dense_h_node(g));
      double* y = node_buf(sum_node(g));
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < H; ++j) {
          a[k * H + j] = ax[k * G + g * H + j];
          bb[k * H + j] = ah[k * G + g * H + j];
        }
      scanner.scan(dense_x_node(g), a, n * H, false);
      scanner.scan(dense_h_node(g), bb, n * H, false);
      for (int64_t i = 0; i < n * H; ++i) y[i] = a[i] + bb[i];
      scanner.scan(sum_node(g), y, n * H, false);
      table(g == 2, y, scanner.fix_pos(sum_node(g)), node_buf(gate_node(g)), n * H);
      scanner.scan(gate_node(g), node_buf(gate_node(g)), n * H, false);
    };
    pair.run([&] { gate(0); gate(1); }, [&] { gate(2); gate(3); }, paired);
    double* ig = node_buf(kItCct);
    double* fc = node_buf(kFtC);
    double* cn = node_buf(kCNext);
    double* ct = node_buf(kCTemp);
    double* hn = node_buf(kHNext);
    const double *it = node_buf(kIt), *ft = node_buf(kFt), *cct = node_buf(kCct), *ot = node_buf(kOt);
    pair.run(
        [&] {
          for (int64_t i = 0; i < n * H; ++i) ig[i] = it[i] * cct[i];
          scanner.scan(kItCct, ig, n * H, false);
        },
        [&] {
          for (int64_t i = 0; i < n * H; ++i) fc[i] = ft[i] * cin[i];
          scanner.scan(kFtC, fc, n * H, false);
        },
        paired);
    for (int64_t i = 0; i < n * H; ++i) cn[i] = ig[i] + fc[i];
    scanner.scan(kCNext, cn, n * H, false);
    table(true, cn, scanner.fix_pos(kCNext), ct, n * H);
    scanner.scan(kCTemp, ct, n * H, false);
    for (int64_t i = 0; i < n * H; ++i) hn[i] = ot[i] * ct[i];
    scanner.scan(kHNext, hn, n * H, false);

    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = rows[k];
      const int64_t pos = seq.reverse ? len[b] - 1 - t : t;
      std::copy(hn + k * H, hn + (k + 1) * H, out + (b * T + pos) * H);
      std::copy(hn + k * H, hn + (k + 1) * H, h.begin() + b * H);
      std::copy(cn + k * H, cn + (k + 1) * H, c.begin() + b * H);
    }
  }
  std::copy(h.begin(), h.end(), h_n);
  std::copy(c.begin(), c.end(), c_n);
}

}  // namespace lstm
}  // namespace nndct

// Calibration mode of the quantized StandardGruCell: the reference's fake-quantized float cell
// (the GRU twin of lstm_calibrate_forward.cc, on the same shared pieces of rnn_calib.h).
//
// Every node computes its output in float64 from already fake-quantized inputs, votes its diffs
// fix position and is fake-quantized (floor) at its running mode by its consumers (rnn::Quant).
// The matrix products are exact integer sums of codes (gate_matmul.h): code sum * 2^-(fx + fw) is
// the very double the float dot product gives. input_0's votes and the input projections are
// taken a chunk of steps at a time (rnn::CalibInputChunk).
//
// With two threads a step runs two tasks side by side: (a) the reset gate's product and nodes,
// then the candidate's recurrent branch (reset-after: W_hn h + b_hn, then r * it; reset-before:
// r * h, then W_hn times its codes); (b) the update gate's product and nodes, the candidate's
// dense_x vote and z * h. Every vote sees the values it sees serially, so the votes do not
// depend on the threading.
#include <algorithm>
#include <vector>

#include "nndct/gru_loops.h"
#include "nndct/thread_team.h"

namespace nndct {
namespace gru {

CalibCell::CalibCell(Variant v, int bw, int range, int max_fp, int64_t in, int64_t h, const int32_t* w_ih_codes,
                     const int32_t* w_hh_codes, const int* ih_fp, const int* hh_fp, const double* b_ih_values,
                     const double* b_hh_values, const int* bits)
    : variant(v), bit_width(bw), search_range(range), max_fix_pos(max_fp), input_size(in), hidden(h),
      input(in, h, w_ih_codes, ih_fp,
            b_ih_values ? b_ih_values : std::vector<double>(static_cast<size_t>(kNumGates * h), 0.0).data(), {2, 1}) {
  if (bits) std::copy(bits, bits + kNumNodes, node_bits);
  for (int g = 0; g < kNumGates; ++g) {
    w_hh[g] = PackedGates(w_hh_codes + g * h * h, 1, h, h);
    w_hh_fp[g] = hh_fp[g];
  }
  if (v == Variant::kResetAfter && b_hh_values) b_hh.assign(b_hh_values, b_hh_values + kNumGates * h);
}

namespace {

using rnn::CalibState;
using rnn::NodeVotes;
using rnn::Quant;

// Below this many values per node and step, a second thread costs more than it saves.
constexpr int64_t kMinPairElements = 2048;

template <typename TIn, typename TOut>
class CalibRun {
 public:
  CalibRun(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* counts, TOut* out, double* h_n)
      : cell_(cell), seq_(seq), out_(out), h_n_(h_n), Hp_(cell.w_hh[0].padded_units()),
        after_(cell.variant == Variant::kResetAfter), len_(rnn::sequence_lengths(seq.lengths, seq.batch, seq.steps)),
        votes_(counts, kNumNodes, cell.bit_width, cell.search_range, cell.max_fix_pos, cell.node_bits),
        inputs_(cell.input, seq, len_) {
    const int64_t B = seq.batch, T = seq.steps, H = seq.hidden;
    h_.init(seq.h0, B, H);  // the fake-quantized h_next of each row's last step (raw h0 at first)
    active_.resize(static_cast<size_t>(B));
    h_rows_.resize(static_cast<size_t>(B));
    out_rows_.resize(static_cast<size_t>(B));
    fresh_ranges_.resize(static_cast<size_t>(B));
    hcodes_.resize(B * Hp_);
    if (!after_) rhcodes_.resize(B * Hp_);
    nodes_.resize(kNumNodes * B * H);
    for (int g = 0; g < kNumGates; ++g) acc_[g].resize(B * Hp_);
    for (int task = 0; task < 2; ++task) {
      in_rows_[task].resize(static_cast<size_t>(B));
      acc_rows_[task].resize(static_cast<size_t>(B));
    }
    rnn::zero_past_lengths(out, len_, T, H);
  }

  void run(int threads) {
    const int64_t T = seq_.steps, H = seq_.hidden;
    SectionPacer pacer(threads >= 2 && seq_.batch * H >= kMinPairElements ? 2 : 1);
    const int64_t chunk = inputs_.chunk();
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t t1 = std::min(T, t0 + chunk);
      inputs_.scan(t0, t1, votes_, kInput0);
      pacer.run(2, [&](int64_t p) { inputs_.project(static_cast<int>(p)); });
      for (int64_t t = t0; t < t1; ++t) {
        head(t);
        if (n_ == 0) continue;
        if (n_ * H >= kMinPairElements) {
          pacer.run(2, [&](int64_t task) { task == 0 ? reset_task(t - t0) : update_task(t - t0); });
        } else {
          reset_task(t - t0);
          update_task(t - t0);
        }
        tail(t, t - t0);
      }
    }
    std::copy(h_.v.begin(), h_.v.end(), h_n_);
  }

 private:
  const Quant& q(int node) const { return votes_.quant(node); }
  double* node_buf(int node) { return nodes_.data() + node * seq_.batch * seq_.hidden; }

  // Active rows; the input_1 vote; the codes of the quantized h for the products.
  void head(int64_t t) {
    const int64_t B = seq_.batch, H = seq_.hidden;
    int64_t n = 0;
    for (int64_t b = 0; b < B; ++b)
      if (t < len_[static_cast<size_t>(b)]) active_[static_cast<size_t>(n++)] = b;
    n_ = n;
    if (n == 0) return;
    votes_.vote(kInput1, nullptr, n * H, h_.active_range(active_.data(), n), true);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = active_[static_cast<size_t>(k)];
      rnn::codes16(h_.row(b, H), q(kInput1), hcodes_.data() + k * Hp_, H);
      h_rows_[static_cast<size_t>(k)] = h_.row(b, H);
    }
  }

  // acc_[g] = the rows `codes` ([active][Hp]) times W_hh gate g (exact), by `task`'s scratch.
  void product(int task, int g, const int16_t* codes) {
    std::vector<const int16_t*>& in_rows = in_rows_[task];
    std::vector<int64_t*>& acc_rows = acc_rows_[task];
    for (int64_t k = 0; k < n_; ++k) {
      in_rows[static_cast<size_t>(k)] = codes + k * Hp_;
      acc_rows[static_cast<size_t>(k)] = acc_[g].data() + k * Hp_;
    }
    gate_matmul(cell_.w_hh[g], in_rows.data(), n_, 0, cell_.w_hh[g].blocks(), acc_rows.data());
  }

  // The recurrent dense node of gate g from acc_[g] (inputs at `in_node`'s Quant), with b_hh
  // when the cell has one.
  FiniteRange recurrent_dense(int g, int in_node, double* out) {
    const int64_t H = seq_.hidden;
    const double scale = q(in_node).scale * pow2(-cell_.w_hh_fp[g]);  // 2^-(fx + fw), exact
    if (after_ && !cell_.b_hh.empty())
      return rnn::biased_rows(acc_[g].data(), Hp_, n_, H, scale, cell_.b_hh.data() + g * H, out);
    return rnn::scaled_rows(acc_[g].data(), Hp_, n_, H, scale, out);
  }

  // Gate g (r or z): dense_x (computed with the chunk), dense_h, the sum and the gate node.
  void gate(int g, int64_t s) {
    const int64_t N = n_ * seq_.hidden;
    const int dx = dense_x_node(g), dh = dense_h_node(cell_.variant, g), y = sum_node(g), z = kR + g;
    const double* a = inputs_.dense(g, s);
    double* b = node_buf(dh);
    votes_.vote(dx, a, N, inputs_.dense_range(g, s), false);
    votes_.vote(dh, b, N, recurrent_dense(g, kInput1, b), false);
    votes_.vote(y, node_buf(y), N, rnn::sum_values(a, q(dx), b, q(dh), node_buf(y), N), false);
    const lstm::TableOp op = lstm::TableOp::make(false, votes_.fix_pos(y), kTableOutputFixPos, 0, 0);
    votes_.vote(z, node_buf(z), N, rnn::table_values(op, node_buf(y), q(y), node_buf(z), N), false);
  }

  // Task (a): the reset gate, then the candidate's recurrent branch (nodes 11 and 12).
  void reset_task(int64_t s) {
    const int64_t H = seq_.hidden, N = n_ * H;
    product(0, 0, hcodes_.data());
    gate(0, s);
    double* n11 = node_buf(11);
    double* n12 = node_buf(12);
    if (after_) {  // r * (W_hn h + b_hn)
      product(0, 2, hcodes_.data());
      votes_.vote(11, n11, N, recurrent_dense(2, kInput1, n11), false);
      votes_.vote(12, n12, N, rnn::product_values(node_buf(kR), q(kR), n11, q(11), n12, N), false);
    } else {       // W_hn (r * h)
      votes_.vote(11, n11, N, rnn::product_rows(node_buf(kR), q(kR), h_rows_.data(), q(kInput1), n_, H, n11), false);
      for (int64_t k = 0; k < n_; ++k) rnn::codes16(n11 + k * H, q(11), rhcodes_.data() + k * Hp_, H);
      product(0, 2, rhcodes_.data());
      votes_.vote(12, n12, N, recurrent_dense(2, 11, n12), false);
    }
  }

  // Task (b): the update gate, the candidate's dense_x vote and z * h.
  void update_task(int64_t s) {
    const int64_t H = seq_.hidden, N = n_ * H;
    product(1, 1, hcodes_.data());
    gate(1, s);
    votes_.vote(kDenseXn, inputs_.dense(2, s), N, inputs_.dense_range(2, s), false);
    double* zh = node_buf(kZH);
    votes_.vote(kZH, zh, N, rnn::product_rows(node_buf(kZ), q(kZ), h_rows_.data(), q(kInput1), n_, H, zh), false);
  }

  // y_g, cct, ft*cct, cct-ft*cct, h_next, and the new state of every active row.
  void tail(int64_t t, int64_t s) {
    const int64_t H = seq_.hidden, N = n_ * H, T = seq_.steps;
    const double* xn = inputs_.dense(2, s);
    double *yn = node_buf(kYn), *nt = node_buf(kN), *zn = node_buf(kZN), *d = node_buf(kNMinusZN);
    double* hn = node_buf(kHNext);
    votes_.vote(kYn, yn, N, rnn::sum_values(xn, q(kDenseXn), node_buf(12), q(12), yn, N), false);
    const lstm::TableOp op = lstm::TableOp::make(true, votes_.fix_pos(kYn), kTableOutputFixPos, 0, 0);
    votes_.vote(kN, nt, N, rnn::table_values(op, yn, q(kYn), nt, N), false);
    votes_.vote(kZN, zn, N, rnn::product_values(node_buf(kZ), q(kZ), nt, q(kN), zn, N), false);
    votes_.vote(kNMinusZN, d, N, rnn::difference_values(nt, q(kN), zn, q(kZN), d, N), false);
    votes_.vote(kHNext, hn, N, rnn::sum_values(d, q(kNMinusZN), node_buf(kZH), q(kZH), hn, N), false);
    for (int64_t k = 0; k < n_; ++k) {
      const int64_t b = active_[static_cast<size_t>(k)], L = len_[static_cast<size_t>(b)];
      const int64_t pos = seq_.reverse ? L - 1 - t : t;
      h_rows_[static_cast<size_t>(k)] = h_.row(b, H);
      out_rows_[static_cast<size_t>(k)] = out_ + (b * T + pos) * H;
    }
    rnn::store_rows(hn, q(kHNext), n_, H, h_rows_.data(), out_rows_.data(), fresh_ranges_.data());
    for (int64_t k = 0; k < n_; ++k)
      h_.range[static_cast<size_t>(active_[static_cast<size_t>(k)])] = fresh_ranges_[static_cast<size_t>(k)];
  }

  const CalibCell& cell_;
  const Sequence<TIn>& seq_;
  TOut* out_;
  double* h_n_;
  int64_t Hp_;
  bool after_;
  std::vector<int64_t> len_;
  NodeVotes votes_;
  rnn::CalibInputChunk<TIn> inputs_;
  CalibState h_;
  // Written by the calling thread between sections, read by the tasks of a section.
  std::vector<int64_t> active_;
  std::vector<double*> h_rows_;
  std::vector<TOut*> out_rows_;
  std::vector<FiniteRange> fresh_ranges_;
  int64_t n_ = 0;
  AlignedArray<int16_t> hcodes_;   // [active][Hp]: input_1 codes
  AlignedArray<int16_t> rhcodes_;  // reset-before: [active][Hp] node 11's codes
  AlignedArray<double> nodes_;     // [kNumNodes][active][H] (nodes 0 and 2, 5, 10 unused)
  AlignedArray<int64_t> acc_[kNumGates];  // [active][Hp] per gate
  // The scratch of each task (whichever thread runs it).
  std::vector<const int16_t*> in_rows_[2];
  std::vector<int64_t*> acc_rows_[2];
};

}  // namespace

template <typename TIn, typename TOut>
void calibrate_forward(const CalibCell& cell, const Sequence<TIn>& seq, int64_t* fp_counts, TOut* out, double* h_n,
                       int num_threads) {
  CalibRun<TIn, TOut> run(cell, seq, fp_counts, out, h_n);
  run.run(num_threads);
}

#define NNDCT_INSTANTIATE_CALIB_FORWARD(TIn, TOut)                                                             \
  template void calibrate_forward<TIn, TOut>(const CalibCell&, const Sequence<TIn>&, int64_t*, TOut*, double*, \
                                             int);
NNDCT_INSTANTIATE_CALIB_FORWARD(double, double)
NNDCT_INSTANTIATE_CALIB_FORWARD(double, float)
NNDCT_INSTANTIATE_CALIB_FORWARD(float, double)
NNDCT_INSTANTIATE_CALIB_FORWARD(float, float)
#undef NNDCT_INSTANTIATE_CALIB_FORWARD

}  // namespace gru
}  // namespace nndct

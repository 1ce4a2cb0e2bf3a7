// The per-node statistic of the RNN calibration loops: one call of the reference's cell is one
// time step of one batch, and every node output is scanned with the diffs search, its fix
// position voted into the node's histogram, and the output floored in place at the histogram's
// mode (most frequent, smallest on ties), so that later nodes and steps see quantized values.
//
// The fast calibration loops do this with rnn_calib.h's fused pieces; this direct form is the
// definition the portable scalar loops of both cells (lstm_reference.cc, gru_reference.cc) run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "nndct/calib.h"
#include "nndct/grid.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_int_ops.h"
#include "nndct/lstm_step_kernel.h"

namespace nndct {

class RnnNodeScanner {
 public:
  // `counts` is [nodes][lstm::kFpSlots]; slot = fix position + lstm::kFpOffset. `node_bits`
  // (mixed widths; nullptr, or 0 for a node: bit_width) is node k's own width, read at every scan
  // (the caller keeps it alive).
  RnnNodeScanner(int bit_width, int search_range, int max_fix_pos, int64_t* counts, const int* node_bits = nullptr)
      : bit_width_(bit_width), search_range_(search_range), max_fix_pos_(max_fix_pos), counts_(counts),
        node_bits_(node_bits) {}

  // Scans node `node`'s output v[0..n), votes and fake-quantizes v in place at the mode. Inputs
  // (`is_input`) use search range 1, as the reference's LSTM-mode inputs. All-zero outputs carry
  // no range information and do not vote.
  void scan(int node, double* v, int64_t n, bool is_input) {
    if (n == 0) return;
    int64_t* row = counts_ + node * lstm::kFpSlots;
    if (std::any_of(v, v + n, [](double a) { return a != 0.0; })) {
      FixPosSearch search;
      search.bit_width = bits(node);
      search.search_range = is_input ? 1 : search_range_;
      search.method = Method::kFloor;
      search.max_fix_pos = max_fix_pos_;
      const int fp = diffs_fix_pos<double>(v, n, search);
      ++row[std::clamp(fp + lstm::kFpOffset, 0, lstm::kFpSlots - 1)];
    }
    int fp;
    if (!lstm::histogram_mode(row, &fp)) return;  // nothing non-zero seen yet: v is all zero
    // clamp(floor(v * 2^fp)) * 2^-fp + 0.0 (a zero code gives +0.0), in place.
    const lstm::CodeRange range = lstm::CodeRange::signed_bits(bits(node));
    const double amp = pow2(fp), scale = pow2(-fp), lo = static_cast<double>(range.lo),
                 hi = static_cast<double>(range.hi);
    for (int64_t i = 0; i < n; ++i) {
      double s = std::floor(v[i] * amp);
      s = s > lo ? s : lo;
      s = s > hi ? hi : s;
      v[i] = s * scale + 0.0;
    }
  }

  // Current fix position of a node (its mode), or max_fix_pos before any vote.
  int fix_pos(int node) const {
    int fp;
    return lstm::histogram_mode(counts_ + node * lstm::kFpSlots, &fp) ? fp : max_fix_pos_;
  }

 private:
  int bits(int node) const { return node_bits_ && node_bits_[node] ? node_bits_[node] : bit_width_; }
  int bit_width_, search_range_, max_fix_pos_;
  int64_t* counts_;
  const int* node_bits_;
};

}  // namespace nndct

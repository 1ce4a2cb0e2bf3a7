// The batch rows of one time step in the recurrent cells' portable scalar loops (LSTM and GRU):
// which rows still run at step t, their inputs and states gathered into [n, width] blocks, and
// the step's output scattered back to the sequence and the running state. Shared so that both
// cells' reference loops read and write a step the same way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "nndct/lstm_cell.h"

namespace nndct {
namespace rnn {

// Steps of batch element b: its length clamped to [0, steps], or all steps without lengths.
inline int64_t sequence_length(const lstm::SequenceBatch& seq, int64_t b) {
  return seq.lengths ? std::min<int64_t>(std::max<int64_t>(seq.lengths[b], 0), seq.steps) : seq.steps;
}

class StepRows {
 public:
  // Selects the rows still running at step t; returns how many.
  int64_t select(const lstm::SequenceBatch& seq, int64_t t) {
    rows_.clear();
    for (int64_t b = 0; b < seq.batch; ++b)
      if (t < sequence_length(seq, b)) rows_.push_back(b);
    return static_cast<int64_t>(rows_.size());
  }

  // x_t of every selected row (its own position when the sequence runs backward) into x [n, I].
  void gather_x(const lstm::SequenceBatch& seq, int64_t t, std::vector<double>& x) const {
    const int64_t I = seq.input_size;
    x.assign(rows_.size() * static_cast<size_t>(I), 0.0);
    for (size_t k = 0; k < rows_.size(); ++k) {
      const double* src = seq.x + (rows_[k] * seq.steps + position(seq, k, t)) * I;
      std::copy(src, src + I, x.begin() + static_cast<int64_t>(k) * I);
    }
  }

  // The selected rows of a state [B, H] into dst [n, H].
  void gather(const std::vector<double>& state, int64_t H, std::vector<double>& dst) const {
    dst.assign(rows_.size() * static_cast<size_t>(H), 0.0);
    for (size_t k = 0; k < rows_.size(); ++k)
      std::copy(state.begin() + rows_[k] * H, state.begin() + (rows_[k] + 1) * H, dst.begin() + static_cast<int64_t>(k) * H);
  }

  // Row k of src [n, H] into its row of a state [B, H].
  void scatter(const double* src, int64_t H, std::vector<double>& state) const {
    for (size_t k = 0; k < rows_.size(); ++k)
      std::copy(src + static_cast<int64_t>(k) * H, src + static_cast<int64_t>(k + 1) * H, state.begin() + rows_[k] * H);
  }

  // Row k of h [n, H] into out [B, T, H] at its position of step t.
  void scatter_out(const lstm::SequenceBatch& seq, int64_t t, const double* h, double* out) const {
    const int64_t H = seq.hidden;
    for (size_t k = 0; k < rows_.size(); ++k)
      std::copy(h + static_cast<int64_t>(k) * H, h + static_cast<int64_t>(k + 1) * H,
                out + (rows_[k] * seq.steps + position(seq, k, t)) * H);
  }

 private:
  int64_t position(const lstm::SequenceBatch& seq, size_t k, int64_t t) const {
    return seq.reverse ? sequence_length(seq, rows_[k]) - 1 - t : t;
  }

  std::vector<int64_t> rows_;
};

}  // namespace rnn
}  // namespace nndct

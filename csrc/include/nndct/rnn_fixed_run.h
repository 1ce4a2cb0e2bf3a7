// What the test-mode time loops of the recurrent cells (LSTM, GRU) share: the input projections
// computed a chunk of time steps at a time, and the cutting of a call into slices run on the
// thread team (lstm_loops.h, gru_loops.h).
//
// Why shared: both cells read their input through dense-with-bias nodes, one per gate, from the
// same packed int16 weights (gate_matmul.h), and both run independent batch rows (or, at batch 1,
// independent units of a step) in the same way; only the per-unit step differs.
//
// Work split: batch rows are independent, so (a) slices of the batch run as chains of time chunks
// (thread_team.h's run_chains: any thread continues any slice, no synchronisation between
// slices); (b) at batch 1 and large hidden sizes, slices of the units of one step run as one
// section of tasks per step phase (a step whose second recurrent product reads the first phase's
// results of every unit, as the GRU's reset-before candidate, has two phases); (c) small calls
// stay on the calling thread. The results never depend on the split.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "nndct/gate_matmul.h"
#include "nndct/lstm_cell.h"
#include "nndct/lstm_step_kernel.h"
#include "nndct/thread_team.h"

namespace nndct {
namespace rnn {

using lstm::DenseBiasPlan;
using lstm::Sequence;
using lstm::StepRecord;

// Positions whose input projections one slice computes ahead of its steps (a few hundred KiB of
// codes at hidden 512), and rows per projection product.
constexpr int64_t kChunkPositions = 32;
constexpr int64_t kProjectionRows = 8;

// The input side of a cell, prepared once: the input weight codes packed for gate_matmul (G gate
// blocks, gate-major rows [G * units, in]), the input bias codes (one block per gate, padded to
// whole unit blocks; empty without bias) and each gate's dense-with-bias plan:
// node = Q_fa(Q_fa(x codes . w codes) + bias), x at `input_fp`. Mixed widths: `input_bits` (x)
// and `dense_bits[g]` (gate g's node) override `bit_width` where given (0 / nullptr: bit_width).
struct InputProjection {
  InputProjection(int gates, int64_t units, int64_t in, const int32_t* w_codes, const int32_t* bias_codes,
                  int bit_width, int input_fp, const int* w_fp, const int* node_fp, const int* bias_fp,
                  int input_bits = 0, const int* dense_bits = nullptr);
  PackedGates w;
  std::vector<int32_t> bias;  // [gates][padded units]; empty without bias
  DenseBiasPlan dense[4];
  int input_fp;
  int64_t lo, hi;  // the code range of the input x
  int64_t dense_lo[4] = {}, dense_hi[4] = {};  // the code range of each gate's node
};

// One thread's scratch for InputProjection::project.
struct ProjectionScratch {
  AlignedArray<int64_t> acc;
  AlignedArray<int16_t> xq;
  std::vector<const int16_t*> in_rows;
  std::vector<int64_t*> acc_rows;
  std::vector<int32_t*> dst;
  explicit ProjectionScratch(const InputProjection& p);
  ProjectionScratch() = default;
};

// The dense-with-bias codes of the positions of steps [t0, t1) of rows [r0, r1) (len[r]: each
// row's valid steps), unit blocks [b0, b1), into proj[((t - t0) * (r1 - r0) + r - r0) * G * Hp +
// g * Hp + j] (Hp = padded units). When `record` is given and the slice holds row 0 and block 0,
// row 0's input codes of every step go to record->input0.
template <typename TIn>
void project_steps(const InputProjection& p, const Sequence<TIn>& seq, const int64_t* len, int64_t r0, int64_t r1,
                   int64_t b0, int64_t b1, int64_t t0, int64_t t1, int32_t* proj, ProjectionScratch& sc,
                   StepRecord* record);

// How a call is cut: `slices` independent batch slices (each runs all its time steps alone),
// or, with by_units, one slice per thread of the units, stepped together one section per phase.
struct Split {
  int threads = 1;
  int64_t slices = 1;
  bool by_units = false;
};

// step_macs: the recurrent multiply-adds of one time step of the whole batch; total_macs: those
// of the whole call (inputs included); unit_blocks: the cell's blocks of 16 units.
Split choose_split(int64_t batch, int64_t step_macs, int64_t total_macs, int64_t unit_blocks, int num_threads);

// Rows [r0, r1) and unit blocks [b0, b1) of one slice.
struct Slice {
  int64_t r0 = 0, r1 = 0, b0 = 0, b1 = 0;
  int64_t rows() const { return r1 - r0; }
};

// The slices of a split, the most rows a slice has, and the steps per chunk.
struct SlicePlan {
  std::vector<Slice> slices;
  int64_t max_rows = 0, chunk = 1, chunks = 0;
  // Scratch sets the loop needs: one per thread (batch slices) or one per slice (unit slices).
  int64_t scratches = 1;
  SlicePlan(const Split& split, int64_t batch, int64_t steps, int64_t unit_blocks);
};

// The valid steps of every row (lengths clamped to [0, steps]; all steps without lengths).
std::vector<int64_t> sequence_lengths(const int64_t* lengths, int64_t batch, int64_t steps);

// Zeros for the outputs [batch, steps, hidden] past each row's valid steps len[b].
template <typename TOut>
void zero_past_lengths(TOut* out, const std::vector<int64_t>& len, int64_t steps, int64_t hidden) {
  for (size_t b = 0; b < len.size(); ++b) {
    const int64_t row = static_cast<int64_t>(b);
    std::fill(out + (row * steps + len[b]) * hidden, out + (row + 1) * steps * hidden, TOut(0));
  }
}

// An empty record of `nodes` nodes (node 0's codes are record->input0) for row 0's len0 steps.
inline void start_record(StepRecord* record, int64_t steps, int64_t input_size, int nodes, int64_t hidden,
                         int64_t len0) {
  record->input0.assign(static_cast<size_t>(steps * input_size), 0);
  record->nodes.assign(static_cast<size_t>(steps * (nodes - 1) * hidden), 0);
  record->steps_recorded = len0;
}

// Runs a test-mode loop as `plan` cuts it: for every slice and chunk [t0, t1) of its steps,
// project(scratch, slice, t0, t1), then step(scratch, slice, t, t0, phase) for every step t of the
// chunk and phase < phases. `scratch[k]` is the k-th of plan.scratches sets.
template <typename Scratch, typename Project, typename Step>
void run_slices(const Split& split, const SlicePlan& plan, int64_t steps, int phases, std::vector<Scratch>& scratch,
                Project&& project, Step&& step) {
  const int64_t n = static_cast<int64_t>(plan.slices.size()), chunk = plan.chunk;
  if (!split.by_units) {
    run_chains(split.threads, n, plan.chunks, [&](int slot, int64_t i, int64_t k) {
      const Slice& sl = plan.slices[static_cast<size_t>(i)];
      Scratch& sc = scratch[static_cast<size_t>(slot)];
      const int64_t t0 = k * chunk, t1 = std::min(steps, t0 + chunk);
      project(sc, sl, t0, t1);
      for (int64_t t = t0; t < t1; ++t)
        for (int ph = 0; ph < phases; ++ph) step(sc, sl, t, t0, ph);
    });
    return;
  }
  // Unit slices share the rows: every phase of a step is one section of n tasks.
  SectionPacer pacer(split.threads);
  for (int64_t t0 = 0; t0 < steps; t0 += chunk) {
    const int64_t t1 = std::min(steps, t0 + chunk);
    pacer.run(n, [&](int64_t i) { project(scratch[static_cast<size_t>(i)], plan.slices[static_cast<size_t>(i)], t0, t1); });
    for (int64_t t = t0; t < t1; ++t)
      for (int ph = 0; ph < phases; ++ph)
        pacer.run(n, [&](int64_t i) {
          step(scratch[static_cast<size_t>(i)], plan.slices[static_cast<size_t>(i)], t, t0, ph);
        });
  }
}

}  // namespace rnn
}  // namespace nndct

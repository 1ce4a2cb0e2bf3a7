"""The fast GRU time loops against the portable scalar loops (gru_reference.h), bit for bit.

The fast loops pack the weight codes as int16 for gate_matmul (exact integer products), compute
the input projections in chunks, run the step in 32-bit lanes when the fix positions allow it,
fuse node computation, vote and quantization in calibration, and split the work over threads.
The scalar loops run every node through the scalar integer ops (test mode) or the reference
cell's order of operations with diffs_fix_pos and full histogram scans (calibration). Every
output, final state, recorded node code and vote must be identical -- also the sign of zeros --
for both variants (reset after / before), hidden sizes 1..256, batches 1, 3 and 64, 16 and 8
bits, and weight and state codes at the extremes (-32768 / 32767); and with mixed widths (every
node clamped to its own width, votes at each node's width).
"""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared import _kernels as core
from nndct_shared import kernels
from nndct_shared.gru.cell import QuantizedGruCell
from nndct_shared.gru.cell_params import GruCellWeights
from nndct_shared.lstm.cell_base import PARAM_SEARCH_RANGE, WEIGHT_METHOD

from helpers.loop_checks import mixed_widths, narrow_limits_reached, same_bits

HIDDEN = (1, 7, 64, 100, 128, 255, 256)
BATCH = (1, 3, 64)
ISAS = ("avx512vnni", "avx512bw", "avx2", "portable")


def make_case(hidden: int, batch: int, bit_width: int, variant: str, reset_after: bool, seed: int,
              steps: int | None = None):
    """(cell, x, lengths, h0). `extreme` puts weight codes and initial states at the ends of the
    code range: weights -8 / 7.9999 (codes -32768 / 32767 at fix position 12) and h0 = -8."""
    rng = np.random.default_rng(seed)
    inputs = int(rng.integers(1, 40))
    steps = steps or (3 if hidden * batch >= 16384 else 6 if hidden >= 255 else 10)
    s = 1 / np.sqrt(hidden)
    w_ih = rng.uniform(-s, s, (3 * hidden, inputs))
    w_hh = rng.uniform(-s, s, (3 * hidden, hidden))
    b_ih = rng.uniform(-s, s, 3 * hidden)
    b_hh = rng.uniform(-s, s, 3 * hidden) if reset_after and seed % 3 else None
    h0 = lengths = None
    if variant == "extreme":
        w_hh = rng.choice([-8.0, -8.0, 7.9999, 0.0], size=w_hh.shape)
        w_ih = rng.choice([-8.0, 7.9999], size=w_ih.shape)
        h0 = rng.choice([-8.0, 7.9999, -1.0], size=(batch, hidden))
        h0[0, 0] = -8.0  # the recorded row's first input_1 code is -2^(bw-1)
    elif variant == "lengths":
        lengths = rng.integers(0, steps + 1, batch)
        lengths[0] = steps  # batch element 0 is the recorded one
        h0 = rng.uniform(-1, 1, (batch, hidden))
    x = rng.normal(0, 1.5, (batch, steps, inputs))
    weights = GruCellWeights.from_arrays(w_ih, w_hh, b_ih, b_hh, reset_after=reset_after)
    cell = QuantizedGruCell("g", weights, reverse=bool(seed % 2), bit_width=bit_width)
    return cell, x, lengths, h0


def check_calibration(cell: QuantizedGruCell, x, lengths, h0, threads: int):
    cell._calibrate_params()
    blocks, fp = cell.weights.blocks(), cell.calibration.param
    w_ih, w_hh, b_ih, b_hh = cell._kernel_layout(
        {n: kernels.fix_neuron(b, cell.param_width(n), fp[n], WEIGHT_METHOD) for n, b in blocks.items()})
    counts = np.zeros_like(cell.calibration.counts)
    cell.num_threads = threads
    # Two calls: the second starts from the first one's histograms (modes carried over).
    for call, (xx, hh) in enumerate(((x, h0), (x[:, ::-1] * 0.5, None))):
        xx = np.ascontiguousarray(xx)
        fast = cell.calibrate(xx, lengths, hh)
        slow = core._gru_calibrate_forward_scalar(
            xx, w_ih, w_hh, b_ih, b_hh, cell.reset_after, cell.bit_width, counts, search_range=PARAM_SEARCH_RANGE,
            max_fix_pos=cell.calibration.max_fix_pos, lengths=lengths, h0=hh, reverse=cell.reverse,
            node_bits=cell.calibration.node_bits())
        assert np.array_equal(cell.calibration.counts, counts), f"votes differ after call {call}"
        for name, a, b in zip(("out", "h_n"), fast, slow):
            assert same_bits(a, b), f"calibration {name} differs in call {call}"
    assert counts.sum() > 0


def load_fix(cell: QuantizedGruCell, variant: str):
    fix = cell.calibration.aligned()
    if variant == "extreme":
        for name in fix.param:
            if name.startswith("weight"):
                fix.param[name] = 12
        fix.node[1] = fix.node_width(1) - 1  # input_1 at the finest grid: h codes reach -2^(bw-1)
    cell.load_fix_positions(fix)
    return fix


def check_test_mode(cell: QuantizedGruCell, x, lengths, h0, threads: int, variant: str):
    fix = load_fix(cell, variant)
    w_ih, w_hh, b_ih, b_hh = cell._kernel_layout(cell.param_codes())
    slow = core._gru_fixed_forward_scalar(
        x, w_ih, w_hh, b_ih, b_hh, cell.reset_after, fix.bit_width, *cell._fix_arrays(fix), lengths=lengths, h0=h0,
        reverse=cell.reverse, record=True, node_bits=fix.node_bits())
    cell.num_threads = threads
    fast = cell._run_fixed(x, lengths, h0, record=True)
    for name, a, b in zip(("out", "h_n"), fast[:2], slow[:2]):
        assert same_bits(a, b), f"test mode {name} differs"
    assert np.array_equal(fast[2][0], slow[2][0]), "input_0 codes differ"
    names = cell.definition.node_names
    for k in range(len(names) - 1):
        assert np.array_equal(fast[2][1][:, k], slow[2][1][:, k]), f"node {names[k + 1]} differs"
    out32 = cell.run(x.astype(np.float32), lengths, h0, out_dtype=np.float32)[0]
    assert out32.dtype == np.float32
    if np.array_equal(x.astype(np.float32), x):
        assert same_bits(out32.astype(np.float64), slow[0])
    return slow


@pytest.mark.parametrize("bit_width", [16, 8])
@pytest.mark.parametrize("batch", BATCH)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_fast_loops_equal_the_scalar_loops(hidden, batch, bit_width):
    variants = ("plain", "extreme", "lengths") if hidden * batch < 16384 else ("extreme",)
    for k, variant in enumerate(variants):
        for reset_after in (True, False):
            seed = hidden * 1000 + batch * 10 + bit_width + k + reset_after
            cell, x, lengths, h0 = make_case(hidden, batch, bit_width, variant, reset_after, seed)
            threads = 1 + (seed % 2)
            check_calibration(cell, x, lengths, h0, threads)
            slow = check_test_mode(cell, x, lengths, h0, threads, variant)
            if variant == "extreme" and bit_width == 16:
                assert slow[2][1][:, 0].min() == -32768, "the extreme case must reach code -32768 in input_1"


@pytest.mark.parametrize("isa", ISAS)
def test_every_instruction_set_gives_the_same_bits(isa):
    if not core._set_gate_matmul_isa(isa):
        pytest.skip(f"this CPU has no {isa}")
    try:
        for hidden, batch in ((7, 3), (128, 1), (255, 64)):
            for variant in ("plain", "extreme"):
                for reset_after in (True, False):
                    cell, x, lengths, h0 = make_case(hidden, batch, 16, variant, reset_after, hidden + batch)
                    check_calibration(cell, x, lengths, h0, 2)
                    check_test_mode(cell, x, lengths, h0, 2, variant)
    finally:
        core._set_gate_matmul_isa("auto")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_do_not_depend_on_the_threads(threads):
    """Batch slices, unit slices (one section per step phase; two phases
    for reset-before, batch 1 at hidden 1536) and a single thread: the same bits."""
    for hidden, batch, steps in ((1536, 1, 4), (256, 8, 12), (64, 64, 12)):
        for reset_after in (True, False):
            cell, x, _, _ = make_case(hidden, batch, 16, "plain", reset_after, 7, steps=steps)
            cell.num_threads = 1
            ref_cal = cell.calibrate(x)
            ref_counts = cell.calibration.counts.copy()
            load_fix(cell, "plain")
            ref = cell.run(x)
            cell.calibration.counts[:] = 0
            cell.num_threads = threads
            got_cal = cell.calibrate(x)
            assert np.array_equal(cell.calibration.counts, ref_counts)
            assert all(same_bits(a, b) for a, b in zip(got_cal, ref_cal))
            assert all(same_bits(a, b) for a, b in zip(cell.run(x), ref))


def test_arbitrary_fix_positions_in_64_and_32_bit_lanes():
    """Fix positions no calibration produces (every node at its own position): plans that cannot
    run in 32-bit lanes take the 64-bit loops; both must equal the scalar loop."""
    rng = np.random.default_rng(5)
    seen = set()
    for trial in range(16):
        bit_width = (16, 8)[trial % 2]
        reset_after = bool(trial % 4 < 2)
        cell, x, lengths, h0 = make_case(int(rng.choice([7, 64, 100])), 3, bit_width, "lengths", reset_after, trial)
        cell._calibrate_params()
        fix = cell.calibration.aligned()
        lo, hi = (4, 15) if bit_width == 16 else (1, 7)
        fix.node = [int(v) for v in rng.integers(lo, hi, len(fix.node))]
        for i in cell.definition.table_nodes:
            fix.node[i] = int(rng.integers(bit_width - 4, bit_width))
        if trial % 3 == 0:  # a wide shift somewhere: no 32-bit lanes
            fix.node[int(rng.integers(2, len(fix.node)))] = -6
        cell.load_fix_positions(fix)
        seen.add(cell._fixed_cell.steps_in_32bit_lanes)
        w_ih, w_hh, b_ih, b_hh = cell._kernel_layout(cell.param_codes())
        slow = core._gru_fixed_forward_scalar(
            x, w_ih, w_hh, b_ih, b_hh, reset_after, bit_width, *cell._fix_arrays(fix), lengths=lengths, h0=h0,
            reverse=cell.reverse, record=True)
        for threads in (1, 2):
            cell.num_threads = threads
            fast = cell._run_fixed(x, lengths, h0, record=True)
            assert same_bits(fast[0], slow[0]) and same_bits(fast[1], slow[1])
            assert np.array_equal(fast[2][1], slow[2][1])
    assert seen == {True, False}, "both lane widths must be exercised"


@pytest.mark.parametrize("reset_after", [True, False])
def test_mixed_widths_fast_loops_equal_the_scalar_loops(reset_after):
    """Per-node widths: calibration votes at each node's width and test mode clamps each node to
    its own range, in the fast loops (32- and 64-bit lanes, threads) as in the scalar loops; the
    narrow limits are reached, so the clamps are exercised."""
    rng = np.random.default_rng(31 + reset_after)
    reached = set()
    for k, (hidden, batch, variant) in enumerate(((7, 3, "lengths"), (100, 3, "plain"), (64, 64, "extreme"),
                                                  (255, 2, "plain"))):
        cell, x, lengths, h0 = make_case(hidden, batch, 16, variant, reset_after, 700 + k)
        widths = mixed_widths(cell, rng)
        cell.set_widths(widths)
        assert cell.calibration.node_bits() is not None
        threads = 1 + k % 2
        check_calibration(cell, x, lengths, h0, threads)
        slow = check_test_mode(cell, x, lengths, h0, threads, variant)
        reached |= narrow_limits_reached(slow[2][1], widths, cell.definition.node_names)
    assert len(reached) >= 3, reached

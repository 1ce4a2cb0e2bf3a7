"""The fast LSTM time loops against the portable scalar loops, bit for bit.

The fast loops pack the weight codes as int16 (exact integer products in int32 lanes flushed to
int64, gate_matmul.h), fuse node computation, scan and quantization, compute the input
projections in chunks and split the work over threads. The scalar loops (lstm_reference.h) run
every node through the scalar definitions of lstm_int_ops.h (test mode) or the reference cell's
order of operations with diffs_fix_pos and full histogram scans (calibration). Every output,
final state, recorded node code and fix-position vote must be identical -- also the sign of
zeros -- for random weights at hidden sizes 1..512, batches 1, 3 and 64, 16 and 8 bits, and
with weight and state codes at the extremes (-32768 / 32767) where a narrow accumulator would
overflow; and with mixed widths (every node clamped to its own width, votes at each node's width).
"""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared import _kernels as core
from nndct_shared import kernels
from nndct_shared.lstm.cell import PARAM_SEARCH_RANGE, WEIGHT_METHOD, QuantizedLstmCell
from nndct_shared.lstm.cell_params import CellWeights
from nndct_shared.lstm.naming import GATES, NODE_NAMES, PARAM_NAMES

from helpers.loop_checks import mixed_widths, narrow_limits_reached, same_bits

HIDDEN = (1, 7, 64, 100, 128, 255, 256, 512)
BATCH = (1, 3, 64)
ISAS = ("avx512vnni", "avx512bw", "avx2", "portable")
TABLE_NODES = (15, 16, 17, 18, 22)  # sigmoid / tanh outputs: fix positions at most the tables' 15


def steps_for(hidden: int, batch: int) -> int:
    return 3 if hidden * batch >= 16384 else 8 if hidden >= 255 else 12


def make_case(hidden: int, batch: int, bit_width: int, variant: str, seed: int):
    """(cell, x, lengths, h0, c0). `extreme` puts weight codes and initial states at the ends of
    the code range: weights -8 / 7.999 (codes -32768 / 32767 at fix position 12) and h0 = -8."""
    rng = np.random.default_rng(seed)
    inputs = int(rng.integers(1, 40))
    steps = steps_for(hidden, batch)
    s = 1 / np.sqrt(hidden)
    w_ih = rng.uniform(-s, s, (4 * hidden, inputs))
    w_hh = rng.uniform(-s, s, (4 * hidden, hidden))
    bias = rng.uniform(-s, s, 4 * hidden)
    h0 = c0 = lengths = None
    if variant == "extreme":
        w_hh = rng.choice([-8.0, -8.0, 7.9999, 0.0], size=w_hh.shape)
        w_ih = rng.choice([-8.0, 7.9999], size=w_ih.shape)
        h0 = rng.choice([-8.0, 7.9999, -1.0], size=(batch, hidden))
        c0 = rng.normal(0, 2, (batch, hidden))
    elif variant == "lengths":
        lengths = rng.integers(0, steps + 1, batch)
        lengths[0] = steps  # batch element 0 is the recorded one
        h0 = rng.uniform(-1, 1, (batch, hidden))
        c0 = rng.normal(0, 1, (batch, hidden))
    x = rng.normal(0, 1.5, (batch, steps, inputs))
    cell = QuantizedLstmCell("c", CellWeights.from_arrays(w_ih, w_hh, bias), reverse=bool(seed % 2),
                             bit_width=bit_width)
    return cell, x, lengths, h0, c0


def calib_inputs(cell: QuantizedLstmCell):
    """Fake-quantized float64 weights (each parameter at its own width) for the scalar
    calibration loop."""
    cell._calibrate_params()
    blocks, fp = cell.weights.blocks(), cell.calibration.param
    q = {n: kernels.fix_neuron(blocks[n], cell.param_width(n), fp[n], WEIGHT_METHOD) for n in PARAM_NAMES}
    return (np.concatenate([q[f"weight_i{g}"] for g in GATES]), np.concatenate([q[f"weight_h{g}"] for g in GATES]),
            np.concatenate([q[f"bias_{g}"] for g in GATES]))


def scalar_calibration(cell, weights, counts, x, lengths, h0, c0, node_bits):
    """The portable scalar calibration loop with the fake-quantized `weights` of calib_inputs;
    votes into `counts` in place."""
    return core._lstm_calibrate_forward_scalar(
        np.ascontiguousarray(x), *weights, cell.bit_width, counts, search_range=PARAM_SEARCH_RANGE,
        max_fix_pos=cell.calibration.max_fix_pos, lengths=lengths, h0=h0, c0=c0, reverse=cell.reverse,
        node_bits=node_bits)


def check_calibration(cell, x, lengths, h0, c0, threads: int):
    weights = calib_inputs(cell)
    counts = np.zeros_like(cell.calibration.counts)
    cell.num_threads = threads
    # Two calls: the second starts from the first one's histograms (modes carried over).
    for call, (xx, hh, cc) in enumerate(((x, h0, c0), (x[:, ::-1] * 0.5, None, None))):
        fast = cell.calibrate(np.ascontiguousarray(xx), lengths, hh, cc)
        slow = scalar_calibration(cell, weights, counts, xx, lengths, hh, cc, cell.calibration.node_bits())
        assert np.array_equal(cell.calibration.counts, counts), f"votes differ after call {call}"
        for name, a, b in zip(("out", "h_n", "c_n"), fast, slow):
            assert same_bits(a, b), f"calibration {name} differs in call {call}"
    assert counts.sum() > 0


def load_fix(cell: QuantizedLstmCell, variant: str):
    fix = cell.calibration.aligned()
    if variant == "extreme":
        for name in PARAM_NAMES:
            if name.startswith("weight"):
                fix.param[name] = 12
        fix.node[1] = fix.node_width(1) - 1  # input_1 at the finest grid: h codes reach -2^(bw-1)
    elif variant == "finer":  # nodes finer than calibrated, so that most of them saturate
        # Table outputs at most 14: position 15 is the table's own grid, kept unclamped
        # (lstm_int_ops.h table_output), which the flow gives 16-bit table nodes only
        # (fix_positions.table_fix_pos). The small products ft*input_2 and h_next need more bits
        # to reach their limits.
        fix.node = [min(p + 3, 14) if k in TABLE_NODES else p + (8 if k in (20, 23) else 3)
                    for k, p in enumerate(fix.node)]
    cell.load_fix_positions(fix)
    return fix


def scalar_test_mode(cell, fix, x, lengths, h0, c0, node_bits):
    """The portable scalar test-mode loop on the cell's parameter codes (record on)."""
    codes = cell.param_codes()
    node, w_ih_fp, w_hh_fp, bias_fp = fix.arrays()
    return core._lstm_fixed_forward_scalar(
        x, np.concatenate([codes[f"weight_i{g}"] for g in GATES]), np.concatenate([codes[f"weight_h{g}"] for g in GATES]),
        np.concatenate([codes[f"bias_{g}"] for g in GATES]), fix.bit_width, node, w_ih_fp, w_hh_fp, bias_fp,
        lengths=lengths, h0=h0, c0=c0, reverse=cell.reverse, record=True, node_bits=node_bits)


def check_test_mode(cell, x, lengths, h0, c0, threads: int, variant: str):
    fix = load_fix(cell, variant)
    slow = scalar_test_mode(cell, fix, x, lengths, h0, c0, fix.node_bits())
    cell.num_threads = threads
    fast = cell._run_fixed(x, lengths, h0, c0, record=True)
    for name, a, b in zip(("out", "h_n", "c_n"), fast[:3], slow[:3]):
        assert same_bits(a, b), f"test mode {name} differs"
    assert np.array_equal(fast[3][0], slow[3][0]), "input_0 codes differ"
    for k, name in enumerate(NODE_NAMES[1:]):
        assert np.array_equal(fast[3][1][:, k], slow[3][1][:, k]), f"node {name} differs"
    out32 = cell.run(x.astype(np.float32), lengths, h0, c0, out_dtype=np.float32)[0]
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
        seed = hidden * 1000 + batch * 10 + bit_width + k
        cell, x, lengths, h0, c0 = make_case(hidden, batch, bit_width, variant, seed)
        threads = 1 + (seed % 2)
        check_calibration(cell, x, lengths, h0, c0, threads)
        slow = check_test_mode(cell, x, lengths, h0, c0, threads, variant)
        if variant == "extreme" and bit_width == 16:
            assert slow[3][1][:, 0].min() == -32768, "the extreme case must reach code -32768 in input_1"


@pytest.mark.parametrize("isa", ISAS)
def test_every_instruction_set_gives_the_same_bits(isa):
    if not core._set_gate_matmul_isa(isa):
        pytest.skip(f"this CPU has no {isa}")
    try:
        for hidden, batch in ((7, 3), (128, 1), (255, 64), (512, 1)):
            for variant in ("plain", "extreme"):
                cell, x, lengths, h0, c0 = make_case(hidden, batch, 16, variant, hidden + batch)
                check_calibration(cell, x, lengths, h0, c0, 2)
                check_test_mode(cell, x, lengths, h0, c0, 2, variant)
    finally:
        core._set_gate_matmul_isa("auto")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_do_not_depend_on_the_threads(threads):
    """Batch slices, unit slices (one section of tasks per step, batch 1 at hidden 1024) and a
    single thread: the same bits."""
    for hidden, batch, steps in ((1024, 1, 6), (512, 1, 30), (256, 8, 20), (64, 64, 20)):
        cell, x, lengths, h0, c0 = make_case(hidden, batch, 16, "plain", 7)
        x = np.random.default_rng(1).normal(0, 1, (batch, steps, x.shape[2]))
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


def test_nndct_num_threads_and_torch_threads_are_followed(monkeypatch):
    from nndct_shared.kernels.threads import loop_threads

    monkeypatch.setenv("NNDCT_NUM_THREADS", "1")
    assert loop_threads() == 1
    monkeypatch.setenv("NNDCT_NUM_THREADS", "3")
    assert loop_threads() == 3
    monkeypatch.delenv("NNDCT_NUM_THREADS")
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert loop_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_arbitrary_fix_positions_in_64_and_32_bit_lanes():
    """Fix positions no calibration produces (every node at its own position, shifts of up to
    20 bits): plans that cannot run in 32-bit lanes take the 64-bit loops; both must equal the
    scalar loop."""
    rng = np.random.default_rng(5)
    seen = set()
    for trial in range(24):
        bit_width = (16, 8)[trial % 2]
        cell, x, lengths, h0, c0 = make_case(int(rng.choice([7, 64, 100])), 3, bit_width, "lengths", trial)
        cell._calibrate_params()
        fix = cell.calibration.aligned()
        fix.node = [int(v) for v in rng.integers(-4, 21, size=len(fix.node))]
        for i in TABLE_NODES:
            fix.node[i] = min(fix.node[i], 15)
        fix.param.update({n: int(rng.integers(6, 16)) for n in PARAM_NAMES})
        cell.load_fix_positions(fix)
        seen.add(cell._fixed_cell.steps_in_32bit_lanes)
        slow = scalar_test_mode(cell, fix, x, lengths, h0, c0, None)
        fast = cell.run(x, lengths, h0, c0)
        for name, a, b in zip(("out", "h_n", "c_n"), fast, slow[:3]):
            assert same_bits(a, b), f"{name} differs for fix positions {fix.node}"
    assert seen == {True, False}, "both the 32-bit and the 64-bit step loops must have been exercised"


def test_helpers_hold_no_core_while_idle():
    """After a two-thread forward the helper threads sleep: the process uses (almost) no CPU
    while it waits. A helper spinning while idle would use most of the second (still a sixth
    of it with a dozen busy processes on two cores)."""
    import time

    cell, x, lengths, h0, c0 = make_case(64, 64, 16, "plain", 11)
    cell.num_threads = 2
    cell.calibrate(x)
    load_fix(cell, "plain")
    cell.run(x)
    time.sleep(0.05)  # past the helpers' short watch for a next section
    before = time.process_time()
    time.sleep(1.0)
    assert time.process_time() - before < 0.05


def test_concurrent_callers_get_the_same_bits():
    """Python threads running cells at once share one helper team: a caller that finds it busy
    runs alone; every result is the one of a single-threaded run."""
    from concurrent.futures import ThreadPoolExecutor

    cases = []
    for k, (hidden, batch) in enumerate(((64, 64), (128, 8), (100, 50))):
        cell, x, lengths, h0, c0 = make_case(hidden, batch, 16, "plain", 20 + k)
        cell.num_threads = 1
        cell.calibrate(x)
        load_fix(cell, "plain")
        cases.append((cell, x, cell.run(x)))
    for cell, _, _ in cases:
        cell.num_threads = 2

    def run(i):
        cell, x, want = cases[i % len(cases)]
        return all(same_bits(a, b) for a, b in zip(cell.run(x), want))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(run, range(24)))


def assert_widths_matter(cell, x, lengths, h0, c0, recorded_codes):
    """The scalar loops WITHOUT the node widths disagree with the fast loops WITH them (votes,
    outputs and node codes), so the comparisons above can fail."""
    fix = cell._require_fix()
    uniform = scalar_test_mode(cell, fix, x, lengths, h0, c0, None)
    assert not np.array_equal(uniform[3][1], recorded_codes), "test mode ignores the node widths"
    weights = calib_inputs(cell)
    cell.calibration.counts[:] = 0
    fast = cell.calibrate(x, lengths, h0, c0)
    counts = np.zeros_like(cell.calibration.counts)
    slow = scalar_calibration(cell, weights, counts, x, lengths, h0, c0, None)
    assert not (np.array_equal(counts, cell.calibration.counts) and same_bits(fast[0], slow[0])), \
        "calibration ignores the node widths"


def test_mixed_widths_fast_loops_equal_the_scalar_loops():
    """Per-node widths: calibration votes at each node's width and test mode clamps each node to
    its own range, in the fast loops (32- and 64-bit lanes, one and two threads) as in the
    scalar loops, at the calibrated fix positions and at finer ones; the narrow limits are
    reached, so the clamps are exercised."""
    rng = np.random.default_rng(43)
    reached, lanes = set(), set()
    for k, (hidden, batch, variant) in enumerate(((7, 3, "lengths"), (100, 3, "plain"), (64, 64, "extreme"),
                                                  (255, 2, "plain"), (1, 1, "plain"))):
        cell, x, lengths, h0, c0 = make_case(hidden, batch, 16, variant, 800 + k)
        widths = mixed_widths(cell, rng)
        cell.set_widths(widths)
        assert cell.calibration.node_bits() is not None
        threads = 1 + k % 2
        check_calibration(cell, x, lengths, h0, c0, threads)
        slow = check_test_mode(cell, x, lengths, h0, c0, threads, variant)
        lanes.add(cell._fixed_cell.steps_in_32bit_lanes)
        reached |= narrow_limits_reached(slow[3][1], widths, NODE_NAMES)
        assert_widths_matter(cell, x, lengths, h0, c0, slow[3][1])
        slow = check_test_mode(cell, x, lengths, h0, c0, threads, "finer")
        lanes.add(cell._fixed_cell.steps_in_32bit_lanes)
        reached |= narrow_limits_reached(slow[3][1], widths, NODE_NAMES)
    assert reached == set(NODE_NAMES[1:]), f"no narrow limit reached in {sorted(set(NODE_NAMES[1:]) - reached)}"
    assert lanes == {True, False}, "both the 32-bit and the 64-bit step loops must have been exercised"

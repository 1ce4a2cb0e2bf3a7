"""The C++ GRU time loops against the independent step-by-step reference (tests/helpers/
reference_gru.py), on random shapes, weights, inputs and fix-position layouts, both variants.

Test mode: every node code of every frame of batch element 0 (the deploy-check record) and the
outputs and final states of every row. Calibration: the per-step votes (through the aligned fix
positions) and the fake-quantized outputs of every step.
"""
from __future__ import annotations

import numpy as np
import pytest

from helpers import reference_gru as ref
from nndct_shared import kernels
from nndct_shared.gru.cell import QuantizedGruCell
from nndct_shared.gru.cell_params import GruCellWeights
from nndct_shared.gru.naming import gru_definition
from nndct_shared.lstm.fix_positions import CellFixPositions


def _weights(rng, I, H, reset_after, scale=0.6):
    w_ih = rng.normal(0, scale, (3 * H, I))
    w_hh = rng.normal(0, scale, (3 * H, H))
    b_ih = rng.normal(0, 0.3, 3 * H)
    b_hh = rng.normal(0, 0.3, 3 * H) if reset_after else None
    return GruCellWeights.from_arrays(w_ih, w_hh, b_ih, b_hh, reset_after=reset_after)


def _blocks(w: GruCellWeights):
    return ref.split(w.w_ih, w.w_hh, w.b_ih, w.b_hh, w.reset_after)


def _layout(rng, kind, bw, reset_after):
    """(node fix positions, param fix positions). 'aligned' is what calibration produces;
    'scrambled' gives every node its own position, so every shift and clamp is exercised."""
    definition = gru_definition(reset_after)
    n = len(definition.node_names)
    table_fp = min(15, bw - 1)
    if kind == "aligned":
        ph, px = (12, int(rng.integers(9, 13))) if bw == 16 else (bw - 2, bw - 3)
        node = [px] + [ph] * (n - 1)
        for i in definition.table_nodes:
            node[i] = table_fp
        param = {p: int(rng.integers(bw - 4, bw)) for p in definition.param_names}
        for bias, dense in definition.bias_nodes:
            param[bias] = node[dense]
    else:
        lo, hi = (7, 15) if bw == 16 else (2, 8)
        node = [int(v) for v in rng.integers(lo, hi, n)]
        for i in definition.table_nodes:
            node[i] = int(rng.integers(table_fp - 3, table_fp + 1))  # what a bw-bit code can hold
        param = {p: int(rng.integers(lo, hi + 2)) for p in definition.param_names}
    return node, param


CASES = [  # (seed, batch, steps, input, hidden, reverse, with lengths, with h0, threads)
    (0, 1, 5, 1, 1, False, False, False, 1),
    (1, 3, 6, 5, 3, True, True, True, 1),
    (2, 10, 4, 23, 17, False, True, True, 3),
    (3, 9, 7, 4, 40, True, False, True, 2),
]


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("bw", [16, 8])
@pytest.mark.parametrize("layout", ["aligned", "scrambled"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{c[0]}" for c in CASES])
def test_test_mode_matches_the_reference_node_by_node(case, layout, bw, reset_after):
    seed, B, T, I, H, reverse, with_lengths, with_h0, threads = case
    rng = np.random.default_rng(seed * 100 + bw + 7 * reset_after + (layout == "aligned"))
    w = _weights(rng, I, H, reset_after)
    node_fp, param_fp = _layout(rng, layout, bw, reset_after)
    definition = gru_definition(reset_after)
    cell = QuantizedGruCell("G_StandardGruCell_layer_0_forward", w, reverse=reverse, bit_width=bw, num_threads=threads)
    cell.load_fix_positions(CellFixPositions(bw, node_fp, param_fp, definition))
    x = rng.normal(0, 1.5, (B, T, I))
    lengths = rng.integers(0, T + 1, B) if with_lengths else None
    if lengths is not None:
        lengths[0] = T  # element 0 (the recorded one) runs every step
    h0 = np.tanh(rng.normal(0, 1, (B, H))) if with_h0 else None
    out, record = cell.record(x, lengths, h0)
    out_run, h_n = cell.run(x, lengths, h0)
    np.testing.assert_array_equal(out, out_run)

    blocks = _blocks(w)
    fp = dict(zip(definition.node_names, node_fp))
    for b in range(B):
        L = T if lengths is None else int(lengths[b])
        steps = ref.test_sequence(x[b, :L], blocks, node_fp, param_fp, bw, reset_after,
                                  h0=None if h0 is None else h0[b], reverse=reverse)
        positions = list(range(L - 1, -1, -1) if reverse else range(L))
        want = np.zeros((T, H))
        for pos, s in zip(positions, steps):
            want[pos] = s["h_next"]
        np.testing.assert_array_equal(out[b], want, err_msg=f"row {b}")
        final = steps[-1]["h_next"] if steps else (np.zeros(H) if h0 is None else ref.q_floor(h0[b], fp["input_1"], bw))
        np.testing.assert_array_equal(h_n[b], final, err_msg=f"h_n of row {b}")
        if b == 0:
            assert record.steps == L
            for t, s in enumerate(steps):
                for name in definition.node_names:
                    np.testing.assert_array_equal(record.codes[name][t], s[name] * 2.0 ** fp[name],
                                                  err_msg=f"node {name}, frame {t}")


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("bw", [16, 8])
def test_calibration_matches_the_reference_step_by_step(reset_after, bw):
    rng = np.random.default_rng(10 + bw + reset_after)
    B, T, I, H = 6, 9, 7, 12
    w = _weights(rng, I, H, reset_after, scale=0.5)
    cell = QuantizedGruCell("G_StandardGruCell_layer_0_backward", w, reverse=True, bit_width=bw)
    reference = ref.CalibReference(_blocks(w), bw, reset_after, kernels.diffs_fix_pos)
    for batch in range(3):  # the votes accumulate over calls and batches
        x = rng.normal(0, 1.0 + batch, (B, T, I))
        lengths = rng.integers(1, T + 1, B)
        lengths[batch] = T
        h0 = np.tanh(rng.normal(0, 1, (B, H))) if batch == 1 else None
        out, h_n = cell.calibrate(x, lengths, h0)
        want = reference.run(x, lengths, reverse=True, h0=h0)
        np.testing.assert_array_equal(out, want, err_msg=f"batch {batch}")
        np.testing.assert_array_equal(h_n, want[np.arange(B), 0], err_msg=f"h_n, batch {batch}")
    aligned = cell.calibration.aligned()
    node, param = reference.aligned()
    assert aligned.node == node
    assert aligned.param == param
    assert cell.calibration.calls == 3 * T  # one vote per step of each batch


def test_a_cell_with_an_empty_batch_or_no_steps():
    rng = np.random.default_rng(5)
    w = _weights(rng, 3, 4, True)
    cell = QuantizedGruCell("G_StandardGruCell_layer_0_forward", w, reverse=False, bit_width=16)
    out, h_n = cell.calibrate(np.zeros((0, 4, 3)))
    assert out.shape == (0, 4, 4) and h_n.shape == (0, 4)
    cell.load_fix_positions(cell.calibration.aligned())
    h0 = np.full((2, 4), 0.3)
    out, h_n = cell.run(rng.normal(size=(2, 5, 3)), lengths=np.array([0, 0]), h0=h0)
    assert not out.any()
    np.testing.assert_array_equal(h_n, np.floor(h0 * 2 ** 12) / 2 ** 12)  # the quantized initial state

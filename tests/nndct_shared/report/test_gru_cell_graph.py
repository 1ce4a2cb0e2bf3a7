"""The report's GRU cell graphs (both variants): with every tensor quantized the evaluation is the
fixed-point datapath (every node code of the deploy-check record, every output, the final h), and
with none it is the float GRU (torch's nn.GRU for reset after, a NumPy GRU written here for
Keras' reset before)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared.gru.cell_params import GruCellWeights
from nndct_shared.gru.naming import GRU_CELL, GRU_CELL_RESET_BEFORE
from nndct_shared.gru.stack import QuantizedGruStack
from nndct_shared.quant_mode import RunMode
from nndct_shared.report.gru_graph import gru_cell_graph
from nndct_shared.report.recurrent import CellAnalysis, CellCall, recurrent_cell

INPUT, HIDDEN = 5, 10


def _weights(reset_after: bool, seed: int) -> list[list[GruCellWeights]]:
    rng = np.random.default_rng(seed)
    per_dir = []
    for _ in range(2):
        w_ih, w_hh = rng.normal(scale=0.4, size=(3 * HIDDEN, INPUT)), rng.normal(scale=0.4, size=(3 * HIDDEN, HIDDEN))
        b_ih = rng.normal(scale=0.2, size=3 * HIDDEN)
        b_hh = rng.normal(scale=0.2, size=3 * HIDDEN) if reset_after else None
        per_dir.append(GruCellWeights.from_arrays(w_ih, w_hh, b_ih, b_hh, reset_after=reset_after))
    return [per_dir]


def _calibrated(reset_after: bool, bit_width: int, x: np.ndarray) -> QuantizedGruStack:
    stack = QuantizedGruStack("Gru", _weights(reset_after, bit_width), bit_width)
    stack.forward(x, mode=RunMode.CALIB)
    return stack


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bit_width", [16, 8])
def test_all_quantized_evaluation_is_the_datapath(reset_after, bit_width):
    rng = np.random.default_rng(bit_width + reset_after)
    x = rng.normal(scale=1.5, size=(7, 9, INPUT))
    stack = _calibrated(reset_after, bit_width, x)
    lengths = np.array([9, 4, 7, 1, 9, 3, 6])
    init = {"h": rng.normal(scale=0.3, size=(7, HIDDEN))}
    for cell in stack.cells:
        rc = recurrent_cell(cell)
        assert rc.graph is gru_cell_graph(reset_after) and rc.graph.node_names == cell.definition.node_names
        call = CellCall(x, lengths, init)
        out, finals = rc.evaluator(rc.quant).run(x, lengths, init, rc.reverse)
        out_datapath, finals_datapath = rc.run_datapath(call)
        assert set(finals) == set(finals_datapath) == {"h"}
        np.testing.assert_array_equal(out, out_datapath)
        np.testing.assert_array_equal(finals["h"], finals_datapath["h"])
        recorded = rc.record_datapath(call)
        checked = 0
        for step in rc.evaluator(rc.quant).steps(x, lengths, init, rc.reverse):
            if step.rows[0] != 0:
                break
            for name in rc.graph.node_names:
                codes = np.ldexp(step.post[name][0], rc.quant[name].fix_pos)
                np.testing.assert_array_equal(codes, recorded[name][step.t], err_msg=f"{name} step {step.t}")
                checked += 1
        assert checked == 9 * 19
        analysis = CellAnalysis(rc)
        analysis.add(call)
        assert analysis.mismatch is None
        doc = analysis.to_json()
        assert doc["states"] == ["h"] and list(doc["drift"]) == ["h"] and "no cell state c" in doc["note"]
        assert doc["variant"] == ("reset_after" if reset_after else "reset_before")


def test_float_reset_after_evaluation_is_torch_gru():
    torch.manual_seed(3)
    gru = nn.GRU(INPUT, HIDDEN, batch_first=True, bidirectional=True).double().eval()
    x = np.random.default_rng(0).normal(size=(4, 8, INPUT))
    from pytorch_nndct.nn.quant_gru import gru_cell_weights_of

    stack = QuantizedGruStack("Gru", gru_cell_weights_of(gru), 16)
    stack.forward(x, mode=RunMode.CALIB)
    with torch.no_grad():
        expected, h_n = gru(torch.from_numpy(x))
    for d, cell in enumerate(stack.cells):
        rc = recurrent_cell(cell)
        out, finals = rc.evaluator({}).run(x, None, None, rc.reverse)
        np.testing.assert_allclose(out, expected[..., HIDDEN * d:HIDDEN * (d + 1)].numpy(), atol=1e-12)
        np.testing.assert_allclose(finals["h"], h_n[d].numpy(), atol=1e-12)


def _numpy_reset_before_gru(x, w: GruCellWeights):
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    (wr, wz, wn), (ur, uz, un), (br, bz, bn) = (np.split(a, 3) for a in (w.w_ih, w.w_hh, w.b_ih))
    h = np.zeros((x.shape[0], w.hidden_size))
    out = []
    for t in range(x.shape[1]):
        r = sig(x[:, t] @ wr.T + br + h @ ur.T)
        z = sig(x[:, t] @ wz.T + bz + h @ uz.T)
        n = np.tanh(x[:, t] @ wn.T + bn + (r * h) @ un.T)
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out, axis=1)


def test_float_reset_before_evaluation_is_the_keras_formula():
    x = np.random.default_rng(1).normal(size=(3, 6, INPUT))
    stack = _calibrated(False, 16, x)
    cell = stack.cells[0]
    rc = recurrent_cell(cell)
    out, _ = rc.evaluator({}).run(x, None, None, False)
    np.testing.assert_allclose(out, _numpy_reset_before_gru(x, cell.weights), atol=1e-12)


def test_gru_graphs_follow_the_cell_definitions():
    for reset_after, definition in ((True, GRU_CELL), (False, GRU_CELL_RESET_BEFORE)):
        graph = gru_cell_graph(reset_after)
        assert graph.node_names == definition.node_names and len(graph.node_names) == 19
        assert tuple(graph.params) == definition.param_names
        assert graph.table_nodes == ("it", "ft", "cct")
        assert [graph.node_names[i] for i in definition.table_nodes] == ["it", "ft", "cct"]
        assert graph.states == (("h", "h_next"),) and graph.output == "h_next"
        assert graph.tensor_kind("input_0") == "input" and graph.tensor_kind("weight_hg") == "weights"
    assert gru_cell_graph(True).tensor_kind("bias_hg") == "bias"
    assert gru_cell_graph(False).tensor_kind("bias_g") == "bias"

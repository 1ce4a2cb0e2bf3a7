"""The report's cell-graph evaluation: with every tensor quantized it is the fixed-point datapath
(every node code of the deploy-check record, every output), and with none it is the float LSTM."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared.lstm.naming import NODE_NAMES
from nndct_shared.lstm.stack import QuantizedLstmStack, RunMode
from nndct_shared.report.lstm_graph import LSTM_CELL
from nndct_shared.report.recurrent import CellAnalysis, CellCall, recurrent_cell
from pytorch_nndct.nn.quant_lstm import cell_weights_of


@pytest.fixture(scope="module")
def lstm():
    torch.manual_seed(1)
    return nn.LSTM(6, 12, batch_first=True, bidirectional=True).double().eval()


def _calibrated_stack(lstm, bit_width, x):
    stack = QuantizedLstmStack("Lstm", cell_weights_of(lstm), bit_width)
    stack.forward(x, mode=RunMode.CALIB)
    return stack


@pytest.mark.parametrize("bit_width", [16, 8])
def test_all_quantized_evaluation_is_the_datapath(lstm, bit_width):
    rng = np.random.default_rng(bit_width)
    x = rng.normal(scale=1.5, size=(9, 11, 6))
    stack = _calibrated_stack(lstm, bit_width, x)
    lengths = np.array([11, 4, 7, 1, 11, 9, 3, 11, 6])
    init = {"h": rng.normal(scale=0.3, size=(9, 12)), "c": rng.normal(size=(9, 12))}
    for cell in stack.cells:
        rc = recurrent_cell(cell)
        call = CellCall(x, lengths, init)
        out, finals = rc.evaluator(rc.quant).run(x, lengths, init, rc.reverse)
        out_datapath, finals_datapath = rc.run_datapath(call)
        np.testing.assert_array_equal(out, out_datapath)
        np.testing.assert_array_equal(finals["h"], finals_datapath["h"])
        np.testing.assert_array_equal(finals["c"], finals_datapath["c"])
        # every node code of batch element 0 at every step, as the deploy-check dump records it
        recorded = rc.record_datapath(call)
        for step in rc.evaluator(rc.quant).steps(x, lengths, init, rc.reverse):
            if step.rows[0] != 0:
                break
            for name in NODE_NAMES:
                codes = np.ldexp(step.post[name][0], rc.quant[name].fix_pos)
                np.testing.assert_array_equal(codes, recorded[name][step.t], err_msg=f"{name} step {step.t}")
        analysis = CellAnalysis(rc)
        analysis.add(call)
        assert analysis.mismatch is None


def test_float_evaluation_is_the_float_lstm(lstm):
    x = np.random.default_rng(0).normal(size=(4, 9, 6))
    stack = _calibrated_stack(lstm, 16, x)
    with torch.no_grad():
        expected, (h_n, c_n) = lstm(torch.from_numpy(x))
    for d, cell in enumerate(stack.cells):
        rc = recurrent_cell(cell)
        out, finals = rc.evaluator({}).run(x, None, None, rc.reverse)
        np.testing.assert_allclose(out, expected[..., 12 * d:12 * (d + 1)].numpy(), atol=1e-12)
        np.testing.assert_allclose(finals["c"], c_n[d].numpy(), atol=1e-12)


def test_lstm_cell_graph_lists_the_24_reference_nodes():
    assert LSTM_CELL.node_names == NODE_NAMES and len(NODE_NAMES) == 24
    assert LSTM_CELL.table_nodes == ("it", "ft", "cct", "ot", "c_temp")
    assert LSTM_CELL.tensor_kind("input_0") == "input" and LSTM_CELL.tensor_kind("bias_g") == "bias"

"""Bit-exact agreement with the reference RNN quantizer on its own files.

The golden directory holds what the reference wrote for `decoder.rnn1 = nn.LSTM(16, 32)`: the
quantized weights (in the xmodel), the fix positions (quant_info.json) and the per-step node
dumps of two consecutive time steps. Feeding the same weights, fix positions and frame-1 state
into our cell must reproduce every node code of both frames, the dump files byte for byte, and
the xmodel op for op.
"""
from __future__ import annotations

import filecmp

import numpy as np
import pytest

from nndct_shared.deploy_check import DeployCheckWriter
from nndct_shared.lstm.cell import QuantizedLstmCell
from nndct_shared.lstm.cell_params import CellWeights
from nndct_shared.lstm.fix_positions import CellFixPositions
from nndct_shared.lstm.naming import GATES, NODE_NAMES, op_name, scoped
from nndct_shared.lstm.session import write_cell_frames
from nndct_shared.lstm.xmodel_export import cell_xgraph
from nndct_shared.quant_info import read_quant_info
from nndct_shared.xmodel import read_xmodel

GRAPH = "DecoderRnn1_StandardLstmCell_layer_0_forward"


def _frame_dir(golden, frame):
    return golden / "deploy_check_data_int" / GRAPH / f"frame_{frame}"


def _codes(golden, frame, node):
    return np.loadtxt(_frame_dir(golden, frame) / f"{op_name(scoped(GRAPH, node))}_fix.txt").astype(np.int64)


@pytest.fixture(scope="module")
def golden_cell(golden_lstm_dir):
    xg = read_xmodel(golden_lstm_dir / "xmodel" / f"{GRAPH}_int.xmodel")
    const = {op.name: op.const_array() for op in xg.ops_of_type("const")}

    def w(local):
        return const[op_name(scoped(GRAPH, local))]

    weights = CellWeights.from_arrays(
        np.concatenate([w(f"weight_i{g}") for g in GATES]),
        np.concatenate([w(f"weight_h{g}") for g in GATES]),
        np.concatenate([w(f"bias_{g}") for g in GATES]))
    qi = read_quant_info(golden_lstm_dir / "quant_info.json")
    cell = QuantizedLstmCell(GRAPH, weights, reverse=False, bit_width=16)
    cell.load_fix_positions(CellFixPositions.from_quant_info_entries(GRAPH, qi.param, qi.output))
    return cell, xg


@pytest.fixture(scope="module")
def golden_run(golden_cell, golden_lstm_dir):
    cell, _ = golden_cell
    fp = cell.fix.node
    x = np.stack([_codes(golden_lstm_dir, f, "input_0") for f in (1, 2)]) * 2.0 ** -fp[0]
    h0 = _codes(golden_lstm_dir, 1, "input_1") * 2.0 ** -fp[1]
    c0 = _codes(golden_lstm_dir, 1, "input_2") * 2.0 ** -fp[2]
    return cell.record(x[None], h0=h0[None], c0=c0[None])


@pytest.mark.parametrize("frame", [1, 2])
def test_every_node_code_matches_the_reference(golden_run, golden_lstm_dir, frame):
    _, record = golden_run
    for name in NODE_NAMES:
        np.testing.assert_array_equal(record.codes[name][frame - 1], _codes(golden_lstm_dir, frame, name),
                                      err_msg=f"node {name}, frame {frame}")


def test_frame_two_reads_frame_one_state(golden_lstm_dir):
    np.testing.assert_array_equal(_codes(golden_lstm_dir, 2, "input_1"), _codes(golden_lstm_dir, 1, "h_next"))
    np.testing.assert_array_equal(_codes(golden_lstm_dir, 2, "input_2"), _codes(golden_lstm_dir, 1, "c_next"))


def test_output_is_h_next(golden_run, golden_lstm_dir):
    out, record = golden_run
    np.testing.assert_array_equal(out[0, 1] * 2.0 ** 12, _codes(golden_lstm_dir, 2, "h_next"))


def test_dump_files_are_byte_identical(golden_cell, golden_run, golden_lstm_dir, tmp_path):
    cell, _ = golden_cell
    _, record = golden_run
    write_cell_frames(DeployCheckWriter(tmp_path), cell, record)
    for ours, theirs in ((0, 1), (1, 2)):
        mine = tmp_path / GRAPH / f"frame_{ours}"
        gold = _frame_dir(golden_lstm_dir, theirs)
        names = sorted(p.name for p in gold.iterdir())
        assert len(names) == 2 * len(NODE_NAMES) + 1
        match, mismatch, errors = filecmp.cmpfiles(gold, mine, names, shallow=False)
        assert (mismatch, errors) == ([], []), (mismatch, errors)
    # our frame 0 also holds the 12 parameters (value and code files), as the reference's frame 0
    assert len(list((tmp_path / GRAPH / "frame_0").iterdir())) == 2 * len(NODE_NAMES) + 1 + 24
    assert len(list((tmp_path / GRAPH / "frame_1").iterdir())) == 2 * len(NODE_NAMES) + 1


def test_xmodel_matches_the_reference_op_for_op(golden_cell):
    cell, golden = golden_cell
    ours = cell_xgraph(cell)
    assert [op.name for op in ours] == [op.name for op in golden]
    for a, b in zip(ours, golden):
        assert a.type == b.type, a.name
        assert a.inputs == b.inputs, a.name
        assert a.shape == b.shape, a.name
        assert dict(a.attrs) == dict(b.attrs), a.name
    assert ours.op_type_counts() == golden.op_type_counts()
    assert len(ours) == 72
    assert ours.attrs["direction"] == golden.attrs["direction"]
    assert ours.return_ops == golden.return_ops

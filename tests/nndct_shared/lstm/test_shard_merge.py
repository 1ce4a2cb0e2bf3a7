"""LSTM calibration split into shards and merged equals one calibration on every batch.

The cell is the reference's golden cell (`nn.LSTM(16, 32)` weights read from its xmodel), fed
with sklearn digits read as sequences (4 steps of 16 pixels). With per-batch histories
(`own_history`, calib_feedback="batch") the vote counts of shards of unequal size (one of them
empty), moved as `state()`s and merged, must equal those of one cell that saw every batch, in any
merge order; `CellShards` merges a two-rank group the same way and refuses a rank whose cells
differ. The process transport itself is tested in tests/pytorch_nndct/distributed.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from nndct_shared.collective import Collective, gather_checked
from nndct_shared.lstm.cell import QuantizedLstmCell
from nndct_shared.lstm.cell_params import CellWeights
from nndct_shared.lstm.fix_positions import CellCalibration
from nndct_shared.lstm.naming import GATES, op_name, scoped
from nndct_shared.lstm.shard_merge import CellShards, cell_fingerprint, own_history
from nndct_shared.messages import NndctError
from nndct_shared.xmodel import read_xmodel

GRAPH = "DecoderRnn1_StandardLstmCell_layer_0_forward"


@pytest.fixture(scope="module")
def golden_weights(golden_lstm_dir) -> CellWeights:
    xg = read_xmodel(golden_lstm_dir / "xmodel" / f"{GRAPH}_int.xmodel")
    const = {op.name: op.const_array() for op in xg.ops_of_type("const")}

    def w(local):
        return const[op_name(scoped(GRAPH, local))]

    return CellWeights.from_arrays(np.concatenate([w(f"weight_i{g}") for g in GATES]),
                                   np.concatenate([w(f"weight_h{g}") for g in GATES]),
                                   np.concatenate([w(f"bias_{g}") for g in GATES]))


@pytest.fixture(scope="module")
def sequences() -> list[np.ndarray]:
    """Batches of digits as sequences [batch, 4 steps, 16 features], at 4 scales (from [0, 2] to
    [0, 16]) so that the nodes' ranges differ from batch to batch."""
    from sklearn.datasets import load_digits

    images = load_digits().data[:300] / 8.0
    return [b * 2.0 ** (k % 4) for k, b in enumerate(np.array_split(images.reshape(-1, 4, 16), 9))]


def _calibrate(weights, batches, per_batch=True) -> QuantizedLstmCell:
    cell = QuantizedLstmCell(GRAPH, weights, reverse=False, bit_width=16)
    for batch in batches:
        if per_batch:
            with own_history([cell]):
                cell.calibrate(batch)
        else:
            cell.calibrate(batch)
    return cell


def test_shards_merged_equal_one_cell(golden_weights, sequences):
    whole = _calibrate(golden_weights, sequences)
    shards = [sequences[:5], sequences[5:6], [], sequences[6:]]
    states = [pickle.loads(pickle.dumps(_calibrate(golden_weights, s).calibration.state())) for s in shards]
    for order in (states, states[::-1]):
        merged = CellCalibration.merge_states(order)
        np.testing.assert_array_equal(merged.counts, whole.calibration.counts)
        assert merged.param == whole.calibration.param
        assert merged.aligned() == whole.calibration.aligned()
    assert states[2]["param"] == {}  # the empty shard never calibrated its params


def test_per_batch_histories_do_not_depend_on_the_order(golden_weights, sequences):
    """What makes the merge exact: each batch votes with its own history. With the reference's
    running history the counts of this data do depend on the order of the batches."""
    forward = _calibrate(golden_weights, sequences)
    backward = _calibrate(golden_weights, sequences[::-1])
    np.testing.assert_array_equal(forward.calibration.counts, backward.calibration.counts)
    running = _calibrate(golden_weights, sequences, per_batch=False)
    running_backward = _calibrate(golden_weights, sequences[::-1], per_batch=False)
    assert not np.array_equal(running.calibration.counts, running_backward.calibration.counts)


def test_merge_states_refuses_other_weights_or_widths(golden_weights, sequences):
    state = _calibrate(golden_weights, sequences[:1]).calibration.state()
    other = dict(state, param={**state["param"], "weight_ii": state["param"]["weight_ii"] + 1})
    with pytest.raises(ValueError, match="weights differ"):
        CellCalibration.merge_states([state, other])
    with pytest.raises(ValueError, match="bit widths"):
        CellCalibration.merge_states([state, dict(state, bit_width=8)])


class _TwoRanks(Collective):
    """Rank 0 of a two-rank group whose rank 1 sent `theirs` (the transport is tested elsewhere)."""

    world_size = 2

    def __init__(self, theirs):
        self.theirs = theirs

    def all_gather(self, obj, action):
        return [obj, self.theirs]


def test_cell_shards_merge_a_two_rank_group(golden_weights, sequences):
    ours = _calibrate(golden_weights, sequences[:4])
    theirs = _calibrate(golden_weights, sequences[4:])
    payload = (cell_fingerprint([theirs]), (0, [theirs.calibration.state()]))
    CellShards(_TwoRanks(payload)).merge([ours], "export_quant_config()")
    np.testing.assert_array_equal(ours.calibration.counts, _calibrate(golden_weights, sequences).calibration.counts)

    other_weights = CellWeights(golden_weights.w_ih * 0.5, golden_weights.w_hh, golden_weights.bias)
    stranger = _calibrate(other_weights, sequences[4:])
    bad = (cell_fingerprint([stranger]), (0, [stranger.calibration.state()]))
    with pytest.raises(NndctError, match="the RNN weights differs between rank 0 and rank 1") as info:
        CellShards(_TwoRanks(bad)).merge([_calibrate(golden_weights, sequences[:4])], "export_quant_config()")
    assert info.value.msg_id.endswith("DIST_MISMATCH")


def test_gather_checked_names_the_first_difference():
    collective = _TwoRanks(({"a": "1", "b": "2"}, "payload 1"))
    assert gather_checked(collective, {"a": "1", "b": "2"}, "payload 0", "x()") == ["payload 0", "payload 1"]
    with pytest.raises(NndctError, match=r"x\(\): b differs between rank 0 and rank 1"):
        gather_checked(collective, {"a": "1", "b": "3"}, "payload 0", "x()")

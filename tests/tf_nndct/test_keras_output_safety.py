"""Issue 13 in the Keras LSTM flow. Exports killed (SIGKILL) at every step of their commits: the
calibration result, and `dump_xmodel()` followed by `dump_rnn_outputs_by_timestep()`, whose
xmodels and dumps are one unit (no kill leaves a new xmodel beside the dumps of an older run).
And the catalogued errors: bit width other than calibration, NaN in test mode, an output_dir
that is not a path."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.kill_steps import SWITCH_STEPS, expect_one_switch, kill_at_every_step
from nndct_shared.messages import NndctError
from tf_nndct.quantization.api import tf_quantizer

STEPS = 2


def lstm_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((STEPS, 12))
    return keras.Model(inputs, keras.layers.LSTM(8, name="lstm")(inputs))


def _calibrate(model: keras.Model, out, x: np.ndarray):
    q = tf_quantizer(model, None, "calib", str(out), bitwidth=16)
    q.quant_model(x)
    q.export_quant_config()
    return q


def _part(tree: dict, prefix: str) -> dict:
    return {k: v for k, v in tree.items() if k.startswith(prefix)}


def test_kills_during_export_quant_config(vowels, tmp_path):
    x = vowels[0][:10, -STEPS:]
    out = tmp_path / "out"
    _calibrate(lstm_model(0), out, x)
    second = tf_quantizer(lstm_model(1), None, "calib", str(out), bitwidth=16)
    second.quant_model(x * 20)  # other ranges: other fix positions
    expect_one_switch(kill_at_every_step(out, second.export_quant_config))


def test_kills_between_and_during_dump_xmodel_and_dump_rnn_outputs(vowels, tmp_path):
    """Old: model A's xmodel and dumps (beside model B's calibration). New: B's. Killed anywhere
    in B's dump_xmodel() + dump_rnn_outputs_by_timestep(), the directory holds A's pair, B's
    xmodel alone, or B's pair."""
    x = vowels[1][:2, -STEPS:]
    out = tmp_path / "out"
    model_a, model_b = lstm_model(0), lstm_model(1)
    _calibrate(model_a, out, vowels[0][:10, -STEPS:])
    a = tf_quantizer(model_a, None, "test", str(out), bitwidth=16)
    a.dump_xmodel()
    a.dump_rnn_outputs_by_timestep(x[:1])
    _calibrate(model_b, out, vowels[0][:10, -STEPS:])
    b = tf_quantizer(model_b, None, "test", str(out), bitwidth=16)
    b.quant_model(x)

    def export() -> None:
        b.dump_xmodel()
        b.dump_rnn_outputs_by_timestep(x[1:])

    seen = kill_at_every_step(out, export)
    assert [label for label, _ in seen if label in SWITCH_STEPS] == ["switched", "switched"]
    trees = [tree for _, tree in seen]
    old_xmodel, old_dumps = _part(trees[0], "xmodel/"), _part(trees[0], "deploy_check_data_int/")
    new_xmodel, new_dumps = _part(trees[-1], "xmodel/"), _part(trees[-1], "deploy_check_data_int/")
    assert old_xmodel != new_xmodel and old_dumps != new_dumps and old_dumps and new_dumps
    states = {(_part(t, "xmodel/") == new_xmodel, tuple(sorted(_part(t, "deploy_check_data_int/")))) for t in trees}
    for tree in trees:
        xmodel, dumps = _part(tree, "xmodel/"), _part(tree, "deploy_check_data_int/")
        assert (xmodel, dumps) in ((old_xmodel, old_dumps), (new_xmodel, {}), (new_xmodel, new_dumps))
    assert len(states) == 3  # all three were seen


def test_dump_xmodel_again_keeps_this_quantizers_dumps(vowels, tmp_path):
    """The unit rule seen from the API: dump_xmodel() after dump_rnn_outputs_by_timestep() writes
    the same dumps again (they belong to this quantizer's xmodel)."""
    x = vowels[1][:1, -STEPS:]
    _calibrate(lstm_model(0), tmp_path, vowels[0][:10, -STEPS:])
    q = tf_quantizer(lstm_model(0), None, "test", str(tmp_path), bitwidth=16)
    frames = q.dump_rnn_outputs_by_timestep(x)
    assert [f.name for f in frames] == [f"frame_{t}" for t in range(STEPS)]
    before = {p: p.read_bytes() for p in (tmp_path / "deploy_check_data_int").rglob("*.txt")}
    xmodels = q.dump_xmodel()
    assert [p.name for p in xmodels] == ["Lstm_StandardLstmCell_layer_0_forward_int.xmodel"]
    assert {p: p.read_bytes() for p in (tmp_path / "deploy_check_data_int").rglob("*.txt")} == before


def test_bitwidth_other_than_calibration_is_refused(vowels, tmp_path):
    """Issue 13, item 7 in the Keras flow: calibrated at 16 bits, tested at 8 (and the reverse)."""
    for calib_bits, test_bits in ((16, 8), (8, 16)):
        out = tmp_path / f"c{calib_bits}"
        q = tf_quantizer(lstm_model(0), None, "calib", str(out), bitwidth=calib_bits)
        q.quant_model(vowels[0][:10, -STEPS:])
        q.export_quant_config()
        try:
            tf_quantizer(lstm_model(0), None, "test", str(out), bitwidth=test_bits)
        except NndctError as err:
            assert err.msg_id == "QUANTIZER_TF_CALIB_BITWIDTH_MISMATCH"
            assert f"bitwidth={test_bits}" in str(err) and f"{calib_bits}-bit fix positions" in str(err)
        else:
            raise AssertionError("a test mode at another bit width than calibration must be refused")


def test_nan_in_test_mode_is_no_calibration_error(vowels, tmp_path):
    _calibrate(lstm_model(0), tmp_path, vowels[0][:10, -STEPS:])
    q = tf_quantizer(lstm_model(0), None, "test", str(tmp_path), bitwidth=16)
    x = vowels[1][:2, -STEPS:].copy()
    x[1, 0, 3] = np.nan
    with pytest.raises(NndctError) as info:
        q.quant_model(x)
    assert info.value.msg_id == "QUANTIZER_TF_TEST_DATA_NONFINITE" and "in test mode" in str(info.value)


@pytest.mark.parametrize(("value", "reason"), [
    (None, "NoneType"), (b"out", "bytes path"), (7, "a int"), ("out\0x", "NUL character"),
])
def test_output_dir_that_is_not_a_path(tmp_path, monkeypatch, value, reason):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NndctError) as info:
        tf_quantizer(lstm_model(0), None, "calib", value, bitwidth=16)
    assert info.value.msg_id == "QUANTIZER_TF_OUTPUT_DIR" and reason in str(info.value)
    assert list(tmp_path.iterdir()) == []

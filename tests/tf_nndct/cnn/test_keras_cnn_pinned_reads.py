"""Keras CNN test mode reads quant_info.json and bias_corr.npz from ONE version of output_dir
(issue 13), as the PyTorch flow does: another calibration committed between the two reads cannot
pair this quant_info.json with its bias corrections. The race is made to happen: a hook commits
the other calibration right after quant_info.json was read."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import twins
from nndct_shared.export_commit import export_unit
from nndct_shared.quant_info_store import QuantInfoStore
from tf_nndct.quantization.api import tf_quantizer

FILES = ("quant_info.json", "bias_corr.npz")


def _calibrate(model, x: np.ndarray, out) -> None:
    quantizer = tf_quantizer(model, None, "calib", str(out))  # bias correction is on by default
    quantizer.quant_model(x)
    quantizer.export_quant_config()


def _outputs(model, out, x: np.ndarray) -> np.ndarray:
    return np.asarray(tf_quantizer(model, tf.TensorSpec((1, 8, 8, 1)), "test", str(out)).quant_model(x))


def test_bias_corr_is_read_from_the_version_quant_info_came_from(tmp_path, monkeypatch):
    x_train, _, x_test, _ = twins.digits_split()
    model = twins.digits_net_keras(twins.trained_digits_net())
    out, other = tmp_path / "out", tmp_path / "other"
    _calibrate(model, x_train[:100], out)
    _calibrate(model, x_train[100:300] * 0.5, other)  # other data: other corrections
    theirs = {name: (other / name).read_bytes() for name in FILES}
    assert theirs["bias_corr.npz"] != (out / "bias_corr.npz").read_bytes()
    want = _outputs(model, out, x_test)  # no race: this calibration's model
    read = QuantInfoStore.load_record

    def read_then_another_run_commits(store):
        record = read(store)
        with export_unit(out) as unit:  # a concurrent calibration's commit, between the two reads
            for name, data in theirs.items():
                unit.write_bytes(out / name, data)
        return record

    monkeypatch.setattr(QuantInfoStore, "load_record", read_then_another_run_commits)
    got = _outputs(model, out, x_test)
    assert all((out / name).read_bytes() == theirs[name] for name in FILES)  # the race happened
    assert np.array_equal(got, want)
    monkeypatch.undo()
    # the other calibration's pair, read as a pair, gives another model: the check can fail
    assert not np.array_equal(_outputs(model, out, x_test), want)

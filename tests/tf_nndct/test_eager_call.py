"""The quant model's short eager call path gives Keras' own call path's results bit for bit
(outputs in test mode, quant_info.json after calibration), and steps aside wherever Keras' path
is needed (tf.function, symbolic inputs, training=True, NNDCT_KERAS_FAST_CALL=0)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_nndct.layers.quant_rnn import QuantRNN
from tf_nndct.quantization.api import tf_quantizer
from tf_nndct.quantization.eager_call import EagerQuantModel


def _models() -> dict[str, keras.Model]:
    keras.utils.set_random_seed(11)
    x_in = keras.Input((29, 12))
    seq, h, c = keras.layers.LSTM(16, return_sequences=True, return_state=True, name="lstm")(x_in)
    x = keras.layers.Dropout(0.3, name="drop")(seq)
    bi = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True, return_state=True), name="bi")
    out, h_fw, h_bw = bi(x, initial_state=[h[:, :8], c[:, :8]])
    head = keras.layers.Dense(5, name="head")(keras.layers.Concatenate()([out[:, -1], h_fw, h_bw]))
    functional = keras.Model(x_in, [head, h, c], name="functional")
    sequential = keras.Sequential([keras.Input((29, 12)), keras.layers.LSTM(16, name="lstm"),
                                   keras.layers.Dense(9, name="head")], name="sequential")
    return {"functional": functional, "sequential": sequential}


@pytest.fixture(scope="module")
def models() -> dict[str, keras.Model]:
    return _models()


class _Calls:
    """Counts the quantized layers' Layer.__call__ entries on real values (the short path calls
    `call` only; building the quant model calls them on symbolic KerasTensors, not counted)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = QuantRNN.__call__

        def counted(layer, *args, **kwargs):
            if not isinstance(args[0], keras.KerasTensor):
                self.count += 1
            return original(layer, *args, **kwargs)

        monkeypatch.setattr(QuantRNN, "__call__", counted)


def _as_list(outputs) -> list[np.ndarray]:
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def _run_flow(model, calib, test, out_dir, monkeypatch, fast: bool):
    monkeypatch.setenv("NNDCT_KERAS_FAST_CALL", "1" if fast else "0")
    q = tf_quantizer(model, None, "calib", str(out_dir), bitwidth=8)
    for start in range(0, len(calib), 20):
        q.quant_model(calib[start:start + 20])
    q.export_quant_config()
    q = tf_quantizer(model, None, "test", str(out_dir), bitwidth=8)
    return q, _as_list(q.quant_model(test))


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_short_path_gives_keras_path_bits(models, vowels, tmp_path, monkeypatch, kind):
    calib, test = vowels
    model = models[kind]
    calls = _Calls(monkeypatch)
    _, keras_out = _run_flow(model, calib, test, tmp_path / "keras", monkeypatch, fast=False)
    keras_calls, calls.count = calls.count, 0
    q, fast_out = _run_flow(model, calib, test, tmp_path / "fast", monkeypatch, fast=True)
    assert keras_calls > 0 and calls.count == 0  # the short path really ran
    assert isinstance(q.quant_model, EagerQuantModel)
    assert type(q.quant_model).__name__ == type(model).__name__
    assert (tmp_path / "fast" / "quant_info.json").read_bytes() == \
        (tmp_path / "keras" / "quant_info.json").read_bytes()
    assert len(fast_out) == len(keras_out)
    for got, want in zip(fast_out, keras_out):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    # An eager tensor input and training=False take the short path too, with the same bits.
    tensor_out = _as_list(q.quant_model(tf.constant(test), training=False))
    assert calls.count == 0 and all(np.array_equal(a, b) for a, b in zip(tensor_out, fast_out))
    # tf.function (symbolic tensors) and predict go through Keras' path, with the same bits.
    graph_out = _as_list(tf.function(lambda x: q.quant_model(x))(tf.constant(test)))
    assert calls.count > 0
    assert all(np.array_equal(a, b) for a, b in zip(graph_out, fast_out))


def test_short_path_steps_aside(models, vowels, tmp_path, monkeypatch):
    calib, test = vowels
    q = tf_quantizer(models["sequential"], None, "calib", str(tmp_path), bitwidth=8)
    model = q.quant_model
    model(calib[:4])
    assert model._nndct_short_path((calib[:4],), {}) is not None
    assert model._nndct_short_path((calib[:4],), {"training": True}) is None
    assert model._nndct_short_path((calib[:4],), {"mask": None}) is None
    assert model._nndct_short_path((keras.Input((29, 12)),), {}) is None
    monkeypatch.setenv("NNDCT_KERAS_FAST_CALL", "0")
    assert model._nndct_short_path((calib[:4],), {}) is None
    # A symbolic call still builds a graph of the quantized model (Keras' own path).
    symbolic = model(keras.Input((29, 12)))
    assert tuple(symbolic.shape) == (None, 9)

"""Every mistake a Keras user can make with tf_quantizer (LSTM and GRU models) gets one catalogued
QUANTIZER_TF_* error naming the problem and the fix, and leaves no partial files behind."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from nndct_shared.messages import NndctError
from tf_nndct.quantization.api import tf_quantizer


def _raises(code: str, exc_type: type, fn, *args, **kwargs) -> NndctError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    msg_id = f"QUANTIZER_TF_{code}"
    assert isinstance(info.value, NndctError) and info.value.msg_id == msg_id, info.value
    assert f"[VAIQ_ERROR][{msg_id}]" in str(info.value) and info.value.fix
    return info.value


def lstm_model(steps: int = 29, rnn: str = "LSTM", **lstm_kwargs) -> keras.Model:
    """Input -> LSTM (or GRU with rnn="GRU") named after its type in lower case."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((steps, 12))
    return keras.Model(inputs, getattr(keras.layers, rnn)(8, name=rnn.lower(), **lstm_kwargs)(inputs))


def _calibrated(tmp_path, vowels) -> keras.Model:
    model = lstm_model()
    q = tf_quantizer(model, None, "calib", str(tmp_path), bitwidth=16)
    q.quant_model(vowels[0][:10])
    q.export_quant_config()
    return model


@pytest.mark.parametrize("rnn, code", [("LSTM", "RECURRENT_ACTIVATION"), ("GRU", "GRU_ACTIVATION")])
@pytest.mark.parametrize("kwargs, which, got", [
    ({"recurrent_activation": "hard_sigmoid"}, "recurrent_activation", "hard_sigmoid"),
    ({"activation": "relu"}, "activation", "relu"),
])
def test_activations_other_than_sigmoid_and_tanh(tmp_path, kwargs, which, got, rnn, code):
    err = _raises(code, NotImplementedError, tf_quantizer, lstm_model(rnn=rnn, **kwargs), None,
                  "calib", str(tmp_path / "out"))
    assert err.fields["which"] == which and err.fields["got"] == got
    assert f"{rnn} layer '{rnn.lower()}'" in str(err)
    assert not (tmp_path / "out").exists()


def test_unsupported_lstm_features(tmp_path, vowels):
    inputs = keras.Input((29,), dtype="int32")
    x = keras.layers.Embedding(10, 12, mask_zero=True)(inputs)
    masked = keras.Model(inputs, keras.layers.LSTM(8, name="lstm")(x))
    err = _raises("UNSUPPORTED_RNN", NotImplementedError, tf_quantizer, masked, None, "calib", str(tmp_path))
    assert "mask" in str(err)
    stateful_in = keras.Input((29, 12), batch_size=1)
    stateful = keras.Model(stateful_in, keras.layers.LSTM(8, stateful=True, name="lstm")(stateful_in))
    assert "stateful" in str(_raises("UNSUPPORTED_RNN", NotImplementedError, tf_quantizer, stateful, None,
                                     "calib", str(tmp_path / "s")))


def test_unsupported_gru_features(tmp_path):
    tokens = keras.Input((29,), dtype="int32")
    masked = keras.Model(tokens, keras.layers.GRU(8)(keras.layers.Embedding(10, 12, mask_zero=True)(tokens)))
    assert "mask" in str(_raises("UNSUPPORTED_GRU", NotImplementedError, tf_quantizer, masked, None, "calib",
                                 str(tmp_path / "m")))
    stateful_in = keras.Input((29, 12), batch_size=1)
    stateful = keras.Model(stateful_in, keras.layers.GRU(8, stateful=True, name="gru")(stateful_in))
    assert "stateful" in str(_raises("UNSUPPORTED_GRU", NotImplementedError, tf_quantizer, stateful, None, "calib",
                                     str(tmp_path / "s")))
    inputs = keras.Input((29, 12))
    mixed = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True),
                                       backward_layer=keras.layers.LSTM(8, return_sequences=True, go_backwards=True))
    err = _raises("UNSUPPORTED_GRU", NotImplementedError, tf_quantizer, keras.Model(inputs, mixed(inputs)), None,
                  "calib", str(tmp_path / "b"))
    assert "go_backwards GRU" in str(err)
    assert not any((tmp_path / d).exists() for d in ("m", "s", "b"))


def test_bad_calls_of_the_quantized_gru(vowels, tmp_path):
    keras.utils.set_random_seed(9)
    x_in, h_in = keras.Input((29, 12)), keras.Input((8,))
    model = keras.Model([x_in, h_in], keras.layers.GRU(8, name="gru")(x_in, initial_state=h_in))
    q = tf_quantizer(model, None, "calib", str(tmp_path), bitwidth=16)
    layer = q.quant_model.get_layer("gru")
    _raises("INITIAL_STATES", ValueError, layer, vowels[0][:2], initial_state=[np.zeros((2, 8), np.float32)] * 2)
    bad = vowels[0][:2].copy()
    bad[0, 1, 1] = np.inf
    assert "GRU layer 'gru'" in str(_raises("CALIB_DATA_NONFINITE", ValueError, layer, bad))


def test_model_type_mode_bitwidth_and_signature(tmp_path):
    out = str(tmp_path / "out")
    _raises("MODULE_TYPE", TypeError, tf_quantizer, object(), None, "calib", out)
    _raises("MODULE_TYPE", TypeError, tf_quantizer, str(tmp_path / "missing.keras"), None, "calib", out)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.lstm = keras.layers.LSTM(4)

        def call(self, x):
            return self.lstm(x)

    sub = Subclassed()
    sub(np.zeros((1, 3, 2), np.float32))
    assert "subclassed" in str(_raises("MODULE_TYPE", TypeError, tf_quantizer, sub, None, "calib", out))
    _raises("QUANT_MODE", ValueError, tf_quantizer, lstm_model(), None, "train", out)
    _raises("ILLEGAL_BITWIDTH", ValueError, tf_quantizer, lstm_model(), None, "calib", out, bitwidth=1)
    _raises("INPUT_SIGNATURE", ValueError, tf_quantizer, lstm_model(), tf.TensorSpec((1, 29, 13)), "calib", out)
    _raises("INPUT_SIGNATURE", ValueError, tf_quantizer, lstm_model(), tf.TensorSpec((1, None, 12)), "calib", out)
    _raises("INPUT_SIGNATURE", ValueError, tf_quantizer, lstm_model(), np.zeros((1, 29, 12)), "calib", out)
    dense_only = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    # cnn=False forces the recurrent flow (without it a model with no recurrent layer runs the CNN flow)
    _raises("NO_LSTM", RuntimeError, tf_quantizer, dense_only, None, "calib", out, cnn=False)
    assert not (tmp_path / "out").exists()
    tf_quantizer(lstm_model(), tf.TensorSpec((1, 29, 12), tf.float32), "calib", out)  # a good signature


def test_test_mode_needs_a_matching_calibration(tmp_path, vowels):
    _raises("NO_CALIB_RESULT", FileNotFoundError, tf_quantizer, lstm_model(), None, "test", str(tmp_path))
    _calibrated(tmp_path, vowels)
    other = keras.Model(*(lambda i: (i, keras.layers.LSTM(8, name="other")(i)))(keras.Input((29, 12))))
    _raises("CALIB_RESULT_MISMATCH", ValueError, tf_quantizer, other, None, "test", str(tmp_path))
    (tmp_path / "quant_info.json").write_text("{not json")
    _raises("QUANT_INFO_CORRUPT", ValueError, tf_quantizer, lstm_model(), None, "test", str(tmp_path))


def test_exports_in_the_wrong_mode_or_without_data(tmp_path, vowels):
    calib = tf_quantizer(lstm_model(), None, "calib", str(tmp_path), bitwidth=16)
    _raises("NO_FORWARD", RuntimeError, calib.export_quant_config)
    _raises("EXPORT_MODE", RuntimeError, calib.dump_xmodel)
    _raises("EXPORT_MODE", RuntimeError, calib.dump_rnn_outputs_by_timestep, vowels[1][:1])
    assert not (tmp_path / "quant_info.json").exists()
    _calibrated(tmp_path, vowels)
    test = tf_quantizer(lstm_model(), None, "test", str(tmp_path), bitwidth=16)
    _raises("EXPORT_MODE", RuntimeError, test.export_quant_config)
    _raises("DUMP_BATCHSIZE", ValueError, test.dump_rnn_outputs_by_timestep, vowels[1][:2])
    assert not (tmp_path / "deploy_check_data_int").exists()


def test_nonfinite_data_is_refused(tmp_path, vowels):
    q = tf_quantizer(lstm_model(), None, "calib", str(tmp_path), bitwidth=16)
    bad = vowels[0][:4].copy()
    bad[1, 3, 2] = np.nan
    err = _raises("CALIB_DATA_NONFINITE", ValueError, q.quant_model, bad)
    assert "'lstm'" in str(err)

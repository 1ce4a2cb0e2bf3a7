"""tf_quantizer on the Keras models the issue lists: Sequential and functional, Embedding /
Conv1D / MaxPooling1D / Dropout / Dense around stacked LSTMs, return_sequences and return_state,
go_backwards, Bidirectional merge modes (LSTM and GRU), initial states, predict, and .keras /
legacy .h5 files.

Exact checks use the fact that a quantized cell's bits depend only on its weights, its fix
positions and its inputs: two flows that must agree are compared with array_equal.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared.messages import reset_warn_once
from nndct_shared.quant_info import read_quant_info
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from tf_nndct.layers import QuantLSTM
from tf_nndct.quantization.api import tf_quantizer

TOKENS = 40


def _tokens(x: np.ndarray) -> np.ndarray:
    """Real token sequences: each JapaneseVowels frame's first coefficient binned into 40 ids."""
    edges = np.quantile(x[..., 0], np.linspace(0, 1, TOKENS + 1)[1:-1])
    return np.digitize(x[..., 0], edges).astype(np.int32)


def _calibrate_then_test(model, calib, out_dir, batch=20, signature=None):
    q = tf_quantizer(model, signature, "calib", str(out_dir), bitwidth=16)
    for start in range(0, len(calib), batch):
        q.quant_model(calib[start:start + batch])
    q.export_quant_config()
    return tf_quantizer(model, signature, "test", str(out_dir), bitwidth=16)


def text_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    tokens = keras.Input((29,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(TOKENS, 12, name="embed")(tokens)
    x = keras.layers.Conv1D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.MaxPooling1D(2, name="pool")(x)
    x = keras.layers.Dropout(0.2, name="drop")(x)
    x = keras.layers.LSTM(16, return_sequences=True, name="lstm_a")(x)
    seq, h, c = keras.layers.LSTM(16, return_sequences=True, return_state=True, name="lstm_b")(x)
    logits = keras.layers.Dense(5, name="head")(keras.layers.Concatenate()([seq[:, -1], h, c]))
    return keras.Model(tokens, logits, name="text_model")


def test_functional_model_with_float_layers_around_stacked_lstms(vowels, tmp_path):
    calib, test = (_tokens(x) for x in vowels)
    model = text_model()
    q = _calibrate_then_test(model, calib, tmp_path)
    quant = q.quant_model
    for name in ("embed", "conv", "pool", "drop", "head"):
        assert quant.get_layer(name) is model.get_layer(name)  # same float layer, same weights
    assert [type(quant.get_layer(n)) for n in ("lstm_a", "lstm_b")] == [QuantLSTM, QuantLSTM]
    out, ref = np.asarray(quant(test)), np.asarray(model(test))
    assert out.shape == ref.shape == (40, 5)
    assert 0 < np.abs(out - ref).max() < 0.05
    graphs = sorted(p.name for p in q.dump_xmodel())
    assert graphs == ["LstmA_StandardLstmCell_layer_0_forward_int.xmodel",
                      "LstmB_StandardLstmCell_layer_0_forward_int.xmodel"]
    # predict runs the layers in a tf.function (the LSTMs through tf.numpy_function).
    assert np.array_equal(quant.predict(test, batch_size=len(test), verbose=0), out)
    # The cell code files the session writes next to quant_info.json.
    assert (tmp_path / "LstmA_StandardLstmCell_layer_0_forward.py").is_file()


def test_rnn_readme_signature_without_batch_and_with_int_tokens(vowels, tmp_path):
    """The RNN README's snippet as written: `tf.TensorSpec(single_batch_data.shape[1:], tf.int32)`
    (no batch dimension, the token ids' integer dtype) for a model of token ids; the whole flow
    runs and gives the files of a quantizer without a signature."""
    import tensorflow as tf

    calib, X_test = (_tokens(x) for x in vowels)
    single_batch_data = X_test[:1, ]
    input_signature = tf.TensorSpec(single_batch_data.shape[1:], tf.int32)
    model = text_model()
    q = _calibrate_then_test(model, calib, tmp_path / "readme", signature=input_signature)
    _calibrate_then_test(model, calib, tmp_path / "plain")
    info = (tmp_path / "readme" / "quant_info.json").read_bytes()
    assert info == (tmp_path / "plain" / "quant_info.json").read_bytes()
    assert np.array_equal(np.asarray(q.quant_model(X_test)),
                          np.asarray(tf_quantizer(model, None, "test", str(tmp_path / "plain"),
                                                  bitwidth=16).quant_model(X_test)))
    assert q.dump_xmodel()
    q.dump_rnn_outputs_by_timestep(single_batch_data)


def test_sequential_model_and_legacy_files_give_the_same_bits(vowels, tmp_path):
    calib, test = vowels
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((29, 12)), keras.layers.LSTM(16, name="lstm"),
                              keras.layers.Dense(9, name="head")], name="seq")
    outs = {}
    for kind in ("model", "keras", "h5"):
        source = model
        if kind != "model":
            source = tmp_path / f"float.{kind}"
            model.save(source)
            source = str(source)
        q = _calibrate_then_test(source, calib, tmp_path / kind)
        outs[kind] = np.asarray(q.quant_model(test))
    assert np.array_equal(outs["model"], outs["keras"]) and np.array_equal(outs["model"], outs["h5"])
    assert (tmp_path / "h5" / "quant_info.json").read_bytes() == (tmp_path / "model" / "quant_info.json").read_bytes()


def test_go_backwards_equals_a_forward_lstm_on_the_reversed_sequence(vowels, tmp_path):
    calib, test = vowels
    torch.manual_seed(4)
    tl = nn.LSTM(12, 16, batch_first=True)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = tl

        def forward(self, x):
            return self.lstm(x)[0]

    p = {k: v.detach().numpy() for k, v in tl.state_dict().items()}
    layer = keras.layers.LSTM(16, return_sequences=True, go_backwards=True, name="lstm")
    model = keras.Sequential([keras.Input((29, 12)), layer])
    layer.set_weights([p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"] + p["bias_hh_l0"]])
    kq = _calibrate_then_test(model, calib, tmp_path / "keras")
    tq = torch_quantizer("calib", Wrap(), bitwidth=16, lstm=True, output_dir=str(tmp_path / "torch"), device="cpu")
    for start in range(0, len(calib), 20):
        tq.quant_model(torch.from_numpy(calib[start:start + 20, ::-1].copy()))
    tq.export_quant_config()
    tq = torch_quantizer("test", Wrap(), bitwidth=16, lstm=True, output_dir=str(tmp_path / "torch"), device="cpu")
    with torch.no_grad():
        t_out = tq.quant_model(torch.from_numpy(test[:, ::-1].copy())).numpy()
    k_out = np.asarray(kq.quant_model(test))
    # Keras returns a go_backwards sequence in processing order: that of the reversed input.
    assert np.array_equal(k_out, t_out)
    k_info = read_quant_info(tmp_path / "keras" / "quant_info.json")
    t_info = read_quant_info(tmp_path / "torch" / "quant_info.json")
    assert {k.replace("backward", "forward"): v for k, v in k_info.output.items()} == t_info.output
    (xmodel,) = kq.dump_xmodel()
    assert xmodel.name == "Lstm_StandardLstmCell_layer_0_backward_int.xmodel"
    assert read_xmodel(xmodel).attrs["direction"] == "backward"


@pytest.mark.parametrize("rnn, states", [("LSTM", 2), ("GRU", 1)])
@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave", None])
def test_bidirectional_merge_modes_and_states(vowels, tmp_path, merge_mode, rnn, states):
    calib, test = vowels
    keras.utils.set_random_seed(5)
    rnn_cls = getattr(keras.layers, rnn)
    inputs = keras.Input((29, 12))
    concat_layer = keras.layers.Bidirectional(rnn_cls(8, return_sequences=True), name="bi")
    concat_model = keras.Model(inputs, concat_layer(inputs))
    other = keras.layers.Bidirectional(rnn_cls(8, return_sequences=True, return_state=True),
                                       merge_mode=merge_mode, name="bi")
    other_model = keras.Model(inputs, other(inputs))
    other.set_weights(concat_layer.get_weights())
    ref = np.asarray(_calibrate_then_test(concat_model, calib, tmp_path / "concat").quant_model(test))
    outs = _calibrate_then_test(other_model, calib, tmp_path / "other").quant_model(test)
    floats = other_model(test)
    assert len(outs) == len(floats) == (2 if merge_mode is None else 1) + 2 * states
    for got, want in zip(outs, floats):
        assert got.shape == want.shape
        assert np.abs(np.asarray(got) - np.asarray(want)).max() < 0.05  # 16-bit, 29 steps
    fw, bw = ref[..., :8], ref[..., 8:]
    expected = {"sum": fw + bw, "mul": fw * bw, "ave": (fw + bw) / 2, None: fw}[merge_mode]
    assert np.array_equal(np.asarray(outs[0]), expected)
    # States: [h_fw(, c_fw), h_bw(, c_bw)]; h_fw is the last forward output, h_bw the first backward one.
    h_fw, h_bw = np.asarray(outs[-2 * states]), np.asarray(outs[-states])
    assert np.array_equal(h_fw, fw[:, -1]) and np.array_equal(h_bw, bw[:, 0])


def test_last_output_with_states(vowels, tmp_path):
    """return_sequences=False with return_state=True: (last h, h, c), and the last h is the last
    step of the same layer's full sequence, bit for bit."""
    calib, test = vowels
    keras.utils.set_random_seed(7)
    inputs = keras.Input((29, 12))
    seq_layer = keras.layers.LSTM(8, return_sequences=True, name="lstm")
    seq_model = keras.Model(inputs, seq_layer(inputs))
    last_layer = keras.layers.LSTM(8, return_state=True, name="lstm")
    last_model = keras.Model(inputs, last_layer(inputs))
    last_layer.set_weights(seq_layer.get_weights())
    seq = np.asarray(_calibrate_then_test(seq_model, calib, tmp_path / "seq").quant_model(test))
    out, h, c = _calibrate_then_test(last_model, calib, tmp_path / "last").quant_model(test)
    assert np.asarray(out).shape == (len(test), 8)
    assert np.array_equal(np.asarray(out), seq[:, -1]) and np.array_equal(np.asarray(h), seq[:, -1])
    floats = last_model(test)
    assert np.abs(np.asarray(c) - np.asarray(floats[2])).max() < 0.05  # 16-bit, 29 steps


def test_initial_states_from_other_inputs(vowels, tmp_path):
    calib, test = (x[:, -5:] for x in vowels)  # 5 steps, so the initial state still shows
    keras.utils.set_random_seed(6)
    x_in, h_in, c_in = keras.Input((5, 12)), keras.Input((8,)), keras.Input((8,))
    out = keras.layers.LSTM(8, name="lstm")(x_in, initial_state=[h_in, c_in])
    model = keras.Model([x_in, h_in, c_in], out)
    states = np.tanh(calib[:, 0, :8]).astype(np.float32)
    q = tf_quantizer(model, None, "calib", str(tmp_path), bitwidth=16)
    q.quant_model([calib, states, states])
    q.export_quant_config()
    q = tf_quantizer(model, None, "test", str(tmp_path), bitwidth=16)
    t_states = np.tanh(test[:, 0, :8]).astype(np.float32)
    got = np.asarray(q.quant_model([test, t_states, t_states]))
    want = np.asarray(model([test, t_states, t_states]))
    zero = np.asarray(q.quant_model([test, 0 * t_states, 0 * t_states]))
    assert np.abs(got - want).max() < 0.01 < np.abs(got - zero).max()


def test_simple_rnn_stays_float_with_a_warning(vowels, tmp_path, caplog):
    calib, test = vowels
    reset_warn_once()  # FLOAT_OP is shown once per layer path and process (another test has an 'rnn')
    keras.utils.set_random_seed(7)
    inputs = keras.Input((29, 12))
    x = keras.layers.SimpleRNN(8, return_sequences=True, name="rnn")(inputs)
    model = keras.Model(inputs, keras.layers.LSTM(8, name="lstm")(x))
    with caplog.at_level("WARNING"):
        q = tf_quantizer(model, None, "calib", str(tmp_path), bitwidth=16)
    assert "QUANTIZER_TF_FLOAT_OP" in caplog.text and "rnn" in caplog.text
    assert q.quant_model.get_layer("rnn") is model.get_layer("rnn")

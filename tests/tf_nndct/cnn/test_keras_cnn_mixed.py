"""A Keras model mixing CNN and recurrent layers (`cnn=True`) runs both flows: the Conv1D /
pool / Dense layers through the CNN session, the LSTM through the recurrent session, in one
quant_model. The LSTM sees exactly the quantized CNN outputs, the CNN layers after it exactly
the quantized LSTM outputs; the CNN files stay in output_dir and the recurrent flow's go to
output_dir/recurrent/. Without cnn=True such a model keeps the recurrent flow (other layers
float), as the reference does."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import twins
from nndct_shared import kernels
from nndct_shared.cnn_export import run_reference
from nndct_shared.deploy_check import dump_file_stem
from nndct_shared.messages import reset_warn_once
from tf_nndct.cnn import KerasCnnQuantizer
from tf_nndct.cnn.layout import keras_array, torch_array
from tf_nndct.layers import QuantLSTM
from tf_nndct.quantization.api import tf_quantizer
from tf_nndct.quantization.quantizer import TFQuantizer
from twins import read_quant_info

L = keras.layers
BATCH = 20


def mixed_model() -> keras.Model:
    keras.utils.set_random_seed(7)
    frames = keras.Input((29, 12), name="frames")
    x = L.Conv1D(16, 3, padding="same", activation="relu", name="conv")(frames)
    x = L.MaxPooling1D(2, name="pool")(x)
    x = L.LSTM(16, return_sequences=True, name="lstm")(x)
    x = L.Conv1D(8, 3, activation="relu", name="conv2")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(frames, L.Dense(9, name="head")(x), name="Mixed")


def lstm_alone(model: keras.Model) -> keras.Model:
    """The mixed model's LSTM (same weights) on its own, fed what the pool produces."""
    inp = keras.Input((14, 16))
    lstm = L.LSTM(16, return_sequences=True, name="lstm")
    out = lstm(inp)
    lstm.set_weights(model.get_layer("lstm").get_weights())
    return keras.Model(inp, out, name="alone")


@pytest.fixture(scope="module")
def mixed(vowels, tmp_path_factory):
    calib, test = vowels
    model = mixed_model()
    out = tmp_path_factory.mktemp("mixed")
    quantizer = tf_quantizer(model, None, "calib", str(out), cnn=True)
    alone = tf_quantizer(lstm_alone(model), None, "calib", str(out / "alone"), bitwidth=16)
    for start in range(0, len(calib), BATCH):
        quantizer.quant_model(calib[start:start + BATCH])
        # the LSTM alone, fed what the mixed model's LSTM was fed in this batch
        alone.quant_model(keras_array(quantizer.engine.last_outputs[twins.nndct_name(quantizer, "Mixed::pool")]))
    quantizer.export_quant_config()
    alone.export_quant_config()
    tested = tf_quantizer(model, None, "test", str(out), cnn=True)
    return model, tested, out, test


def test_both_flows_write_their_files_side_by_side(mixed):
    _, quantizer, out, _ = mixed
    assert isinstance(quantizer, KerasCnnQuantizer) and isinstance(quantizer.recurrent, TFQuantizer)
    cnn_info = read_quant_info(out / "quant_info.json")
    assert "Mixed::conv.weight" in cnn_info.param and "Mixed::head.bias" in cnn_info.param
    # the LSTM's output enters the CNN graph as an input, quantized like a model input
    assert [quantizer.captured.traced_names[n] for n in cnn_info.output] == ["Mixed::input_0", "Mixed::conv/relu", "Mixed::pool", "Mixed::lstm/output_0",
                                     "Mixed::conv2/relu", "Mixed::gap/adaptive_avg_pool", "Mixed::head"]
    rnn_info = read_quant_info(out / "recurrent" / "quant_info.json")
    assert all(name.startswith("Lstm_StandardLstmCell_layer_0_forward::") for name in rnn_info.param)
    # the recurrent flow saw exactly the quantized CNN outputs
    alone = read_quant_info(out / "alone" / "quant_info.json")
    assert (rnn_info.param, rnn_info.output) == (alone.param, alone.output)
    assert (out / "bias_corr.npz").is_file() and (out / "recurrent" / "Lstm_StandardLstmCell_layer_0_forward.py").is_file()


def _as_input(quantizer: KerasCnnQuantizer, node: str, value: np.ndarray) -> np.ndarray:
    """A graph input quantized as its settings say (the `input` kind rounds with std_round;
    the reference executor would round it half up, and leaves values on the grid alone)."""
    s = quantizer.settings[node]
    return kernels.fix_neuron(torch_array(value), s.bit_width, quantizer.runtime.fix_pos[node], s.round_method)


def test_quant_model_chains_the_cnn_graph_and_the_quantized_lstm(mixed):
    """quant_model = CNN graph (reference executor) -> QuantLSTM -> CNN graph, exactly."""
    model, quantizer, _, test = mixed
    x = test[:8]
    got = np.asarray(quantizer.quant_model(x))
    assert [type(layer).__name__ for layer in quantizer.quant_model.layers] == [
        "InputLayer", "QuantCnnSegment", "QuantLSTM", "QuantCnnSegment"]
    graph = quantizer.export_graph()
    image, lstm_out = twins.nndct_name(quantizer, "Mixed::input_0"), twins.nndct_name(quantizer, "Mixed::lstm/output_0")
    feeds = {image: _as_input(quantizer, image, x), lstm_out: np.zeros((8, 16, 14), np.float32)}
    pooled = run_reference(graph, feeds)[twins.nndct_name(quantizer, "Mixed::pool")]
    lstm = quantizer.quant_model.get_layer("lstm")
    assert isinstance(lstm, QuantLSTM)
    feeds[lstm_out] = _as_input(quantizer, lstm_out, np.asarray(lstm(keras_array(pooled))))
    expected = keras_array(run_reference(graph, feeds)[twins.nndct_name(quantizer, "Mixed::head")])
    assert np.array_equal(got, expected)
    assert np.array_equal(quantizer.quant_model.predict(x, verbose=0), got)
    assert 0 < np.abs(got - np.asarray(model(x))).max() < 0.1


def test_exports_of_both_flows(mixed):
    _, quantizer, out, test = mixed
    quantizer.quant_model(test[:1])
    paths = quantizer.dump_xmodel(deploy_check=True)
    assert [p.relative_to(out).as_posix() for p in paths] == [
        "Mixed_int.xmodel", "recurrent/xmodel/Lstm_StandardLstmCell_layer_0_forward_int.xmodel"]
    lstm_out = dump_file_stem(twins.nndct_name(quantizer, "Mixed::lstm/output_0"))
    assert (out / "deploy_check_data_int" / "Mixed" / f"{lstm_out}_fix.bin").is_file()
    frames = quantizer.dump_rnn_outputs_by_timestep(test[:1])
    assert len(frames) == 14 and all(f.parent.parent.name == "deploy_check_data_int" for f in frames)
    assert frames[0].is_relative_to(out / "recurrent")


def test_without_cnn_true_the_recurrent_flow_keeps_the_other_layers_float(vowels, tmp_path, caplog):
    model = mixed_model()
    quantizer = tf_quantizer(model, None, "calib", str(tmp_path), target="DPUCZDX8G_ISA1_B4096")
    assert isinstance(quantizer, TFQuantizer)
    assert quantizer.quant_model.get_layer("conv") is model.get_layer("conv")
    assert "QUANTIZER_TF_LSTM_ARG_IGNORED" in caplog.text and "'target'" in caplog.text


def test_float_recurrent_layers_stay_float_between_quantized_cnn_layers(vowels, tmp_path, caplog):
    reset_warn_once()  # FLOAT_OP is shown once per layer path and process
    keras.utils.set_random_seed(8)
    frames = keras.Input((29, 12))
    x = L.Conv1D(8, 3, activation="relu", name="conv")(frames)
    x = L.SimpleRNN(8, name="rnn")(x)
    model = keras.Model(frames, L.Dense(4, name="head")(x), name="Simple")
    quantizer = tf_quantizer(model, None, "calib", str(tmp_path), cnn=True)
    assert quantizer.recurrent is None and "QUANTIZER_TF_FLOAT_OP" in caplog.text
    assert quantizer.quant_model.get_layer("rnn") is model.get_layer("rnn")
    quantizer.quant_model(vowels[0][:10])
    quantizer.export_quant_config()
    assert twins.nndct_name(quantizer, "Simple::rnn/output_0") in read_quant_info(tmp_path / "quant_info.json").output

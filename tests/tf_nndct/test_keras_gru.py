"""tf_quantizer on Keras GRUs: reset_after=False (its own reset-before cell) against the independent
step-by-step reference, return_sequences / return_state, go_backwards, initial_state, predict,
models mixing LSTMs and GRUs, and the dumps.

(Keras GRU(reset_after=True), the default, is the nn.GRU cell: test_cross_framework.py checks
that both front ends write the same bytes for it; the Bidirectional merge modes are tested with
the LSTM's in test_keras_models.py, the errors in test_tf_errors.py.)
"""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from helpers import reference_gru as ref
from helpers.cell_widths import widths_by_class
from nndct_shared import kernels
from nndct_shared.gru.naming import gru_definition
from nndct_shared.quant_info import read_quant_info
from nndct_shared.xmodel import read_xmodel
from tf_nndct.layers import QuantGRU, QuantLSTM
from tf_nndct.quantization.api import tf_quantizer


def _calibrate_then_test(model, calib, out_dir, batch=20, bitwidth=16, quant_config_file=None):
    q = tf_quantizer(model, None, "calib", str(out_dir), bitwidth=bitwidth, quant_config_file=quant_config_file)
    for start in range(0, len(calib), batch):
        q.quant_model(calib[start:start + batch])
    q.export_quant_config()
    return tf_quantizer(model, None, "test", str(out_dir), bitwidth=bitwidth, quant_config_file=quant_config_file)


def _torch_order(a: np.ndarray, units: int) -> np.ndarray:
    """Keras gate blocks z, r, h along the last axis -> r, z, n (written here independently of
    tf_nndct's own mapping)."""
    return np.concatenate([a[..., units:2 * units], a[..., :units], a[..., 2 * units:]], axis=-1)


def _reference_blocks(layer: keras.layers.GRU) -> dict[str, np.ndarray]:
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    units = layer.units
    w_ih, w_hh = _torch_order(kernel, units).T, _torch_order(recurrent, units).T
    bias = _torch_order(bias, units)
    if layer.cell.reset_after:
        return ref.split(w_ih, w_hh, bias[0], bias[1], True)
    return ref.split(w_ih, w_hh, bias, None, False)


def gru_model(steps=29, name="gru", **gru_kwargs) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((steps, 12))
    return keras.Model(inputs, keras.layers.GRU(8, name=name, **gru_kwargs)(inputs))


GRAPH = "Gru_StandardGruCell_layer_0_forward"
MIXED = {  # a reset-before cell at mixed widths (README "Mixed bit widths in the recurrent flow")
    "tensor_quantize_config": {"weights": {"bit_width": 8}, "bias": {"bit_width": 12}},
    "rnn_quantize_config": [{"node_class": ["nonlinearity", "sum"], "bit_width": 10},
                            {"module": "gru", "node_class": "product", "bit_width": 11}],
    "layer_quantize_config": [{"layer_name": f"{GRAPH}::it*input_1", "quantizable_data_type": ["activation"],
                               "overall_quantize_config": {"bit_width": 7}}],
}


def _mixed_widths() -> dict[str, int]:
    """MIXED resolved by hand, per tensor of the reset-before cell."""
    by_class = {"weights": 8, "bias": 12, "nonlinearity": 10, "sum": 10, "product": 11}
    return {**widths_by_class(gru_definition(False), by_class), "it*input_1": 7}


@pytest.mark.parametrize("bw", [16, 8, "mixed"])
def test_reset_before_gru_matches_the_reference(vowels, tmp_path, bw):
    calib, test = vowels
    model = gru_model(reset_after=False, return_sequences=True)
    layer = model.get_layer("gru")
    config = None
    if bw == "mixed":
        config, bw = MIXED, _mixed_widths()
    q = _calibrate_then_test(model, calib, tmp_path, bitwidth=16 if config else bw, quant_config_file=config)
    assert isinstance(q.quant_model.get_layer("gru"), QuantGRU)
    blocks = _reference_blocks(layer)
    cal = ref.CalibReference(blocks, bw, False, kernels.diffs_fix_pos)
    for start in range(0, len(calib), 20):
        cal.run(calib[start:start + 20].astype(np.float64))
    node_fp, param_fp = cal.aligned()
    graph = GRAPH
    info = read_quant_info(tmp_path / "quant_info.json")
    width = (lambda n: bw) if isinstance(bw, int) else bw.get  # noqa: E731
    assert [tuple(info.output[f"{graph}::{n}"]) for n in ref.nodes(False)] == [
        (width(n), fp) for n, fp in zip(ref.nodes(False), node_fp)]
    assert {p: tuple(info.param[f"{graph}::{p}"]) for p in ref.params(False)} == {
        p: (width(p), fp) for p, fp in param_fp.items()}
    out = np.asarray(q.quant_model(test))
    for n in range(len(test)):
        steps = ref.test_sequence(test[n].astype(np.float64), blocks, node_fp, param_fp, bw, False)
        np.testing.assert_array_equal(out[n], np.stack([s["h_next"] for s in steps]).astype(np.float32))
    assert np.abs(out - np.asarray(model(test))).max() < (0.01 if bw == 16 else 0.5)
    if config:  # the datapath clamps at the narrow widths: the reference at 16 bits differs
        assert ref.CalibReference(blocks, 16, False, kernels.diffs_fix_pos).param_fp != param_fp


def test_reset_before_files(vowels, tmp_path):
    calib, test = vowels
    q = _calibrate_then_test(gru_model(reset_after=False), calib, tmp_path)
    (xmodel,) = q.dump_xmodel()
    xg = read_xmodel(xmodel)
    assert xg.op_type_counts() == {"data": 2, "const": 9, "matmul": 6, "add": 4, "sub": 1, "mul": 3,
                                   "sigmoid": 2, "tanh": 1, "fix": 28}
    graph = "Gru_StandardGruCell_layer_0_forward"
    # the candidate's recurrent matmul reads r * h
    assert xg.op(f"{graph}__w_hg____it_input_1_").args["input"] == [f"{graph}__it_input_1_fix",
                                                                    f"{graph}__weight_hg_fix"]
    q.dump_rnn_outputs_by_timestep(test[:1])
    frames = tmp_path / "deploy_check_data_int" / graph
    assert len(list(frames.iterdir())) == 29
    assert len(list((frames / "frame_0").iterdir())) == 2 * 19 + 1 + 2 * 9
    info = json.loads((tmp_path / "quant_info.json").read_text())
    h = np.loadtxt(frames / "frame_28" / f"{graph}__h_next_fix.txt")
    out = np.asarray(q.quant_model(test[:1]))
    np.testing.assert_array_equal(h, out[0] * 2.0 ** info["output"][f"{graph}::h_next"][1])
    assert (tmp_path / f"{graph}.py").read_text().count("reset_after = False") == 1


@pytest.mark.parametrize("reset_after", [True, False])
def test_go_backwards_equals_a_forward_gru_on_the_reversed_sequence(vowels, tmp_path, reset_after):
    calib, test = vowels
    forward = gru_model(reset_after=reset_after, return_sequences=True)
    backward = gru_model(reset_after=reset_after, return_sequences=True, go_backwards=True)
    backward.set_weights(forward.get_weights())
    fq = _calibrate_then_test(forward, calib[:, ::-1].copy(), tmp_path / "fw")
    bq = _calibrate_then_test(backward, calib, tmp_path / "bw")
    # Keras returns a go_backwards sequence in processing order: that of the reversed input.
    assert np.array_equal(np.asarray(bq.quant_model(test)), np.asarray(fq.quant_model(test[:, ::-1].copy())))
    b_info = read_quant_info(tmp_path / "bw" / "quant_info.json")
    f_info = read_quant_info(tmp_path / "fw" / "quant_info.json")
    assert {k.replace("backward", "forward"): v for k, v in b_info.output.items()} == f_info.output
    (xmodel,) = bq.dump_xmodel()
    assert read_xmodel(xmodel).attrs["direction"] == "backward"


def test_last_output_with_state_and_predict(vowels, tmp_path):
    calib, test = vowels
    seq_model = gru_model(return_sequences=True)
    last_model = gru_model(return_state=True)
    last_model.set_weights(seq_model.get_weights())
    seq = np.asarray(_calibrate_then_test(seq_model, calib, tmp_path / "seq").quant_model(test))
    q = _calibrate_then_test(last_model, calib, tmp_path / "last")
    out, h = q.quant_model(test)
    assert np.asarray(out).shape == (len(test), 8)
    assert np.array_equal(np.asarray(out), seq[:, -1]) and np.array_equal(np.asarray(h), seq[:, -1])
    # predict runs the layer in a tf.function (through tf.numpy_function)
    predicted = q.quant_model.predict(test, batch_size=len(test), verbose=0)
    assert np.array_equal(predicted[0], np.asarray(out)) and np.array_equal(predicted[1], np.asarray(h))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_initial_states_from_other_inputs(vowels, tmp_path, bidirectional):
    calib, test = (x[:, -5:] for x in vowels)  # 5 steps, so the initial state still shows
    keras.utils.set_random_seed(6)
    x_in, h_fw, h_bw = keras.Input((5, 12)), keras.Input((8,)), keras.Input((8,))
    gru = keras.layers.GRU(8, name="gru")
    if bidirectional:
        out = keras.layers.Bidirectional(gru, name="gru")(x_in, initial_state=[h_fw, h_bw])
    else:
        out = gru(x_in, initial_state=h_fw)
    model = keras.Model([x_in, h_fw, h_bw], out)
    states = np.tanh(calib[:, 0, :8]).astype(np.float32)
    q = tf_quantizer(model, None, "calib", str(tmp_path), bitwidth=16)
    q.quant_model([calib, states, -states])
    q.export_quant_config()
    q = tf_quantizer(model, None, "test", str(tmp_path), bitwidth=16)
    t_states = np.tanh(test[:, 0, :8]).astype(np.float32)
    got = np.asarray(q.quant_model([test, t_states, -t_states]))
    want = np.asarray(model([test, t_states, -t_states]))
    zero = np.asarray(q.quant_model([test, 0 * t_states, 0 * t_states]))
    assert np.abs(got - want).max() < 0.01 < np.abs(got - zero).max()
    q.dump_rnn_outputs_by_timestep([test[:1], t_states[:1], -t_states[:1]])
    first = tmp_path / "deploy_check_data_int" / "Gru_StandardGruCell_layer_0_forward" / "frame_0"
    np.testing.assert_array_equal(np.loadtxt(first / "Gru_StandardGruCell_layer_0_forward__input_1_fix.txt"),
                                  np.floor(t_states[0].astype(np.float64) * 2 ** 12))


def test_a_model_mixing_lstms_and_grus(vowels, tmp_path):
    calib, test = vowels
    keras.utils.set_random_seed(8)
    inputs = keras.Input((29, 12))
    x = keras.layers.LSTM(16, return_sequences=True, name="lstm")(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True), name="bigru")(x)
    x = keras.layers.GRU(8, reset_after=False, name="gru_rb")(x)
    model = keras.Model(inputs, keras.layers.Dense(9, name="head")(x))
    q = _calibrate_then_test(model, calib, tmp_path)
    quant = q.quant_model
    assert [type(quant.get_layer(n)) for n in ("lstm", "bigru", "gru_rb")] == [QuantLSTM, QuantGRU, QuantGRU]
    assert quant.get_layer("head") is model.get_layer("head")
    assert np.abs(np.asarray(quant(test)) - np.asarray(model(test))).max() < 0.05
    graphs = sorted(p.name for p in q.dump_xmodel())
    assert graphs == ["Bigru_StandardGruCell_layer_0_backward_int.xmodel", "Bigru_StandardGruCell_layer_0_forward_int.xmodel",
                      "GruRb_StandardGruCell_layer_0_forward_int.xmodel", "Lstm_StandardLstmCell_layer_0_forward_int.xmodel"]
    q.dump_rnn_outputs_by_timestep(test[:1])
    dumped = sorted(p.name for p in (tmp_path / "deploy_check_data_int").iterdir())
    assert dumped == sorted(g[:-len("_int.xmodel")] for g in graphs)

"""The same LSTM or GRU quantized by torch_quantizer(lstm=True) and by tf_quantizer gives the same
bits: quant_info.json, quant_model outputs, xmodels and per-frame dumps.

The Keras model gets the PyTorch weights (LSTM: kernel = W_ih^T, recurrent_kernel = W_hh^T, bias =
b_ih + b_hh in float32; GRU (reset_after=True): the same transposes with the gates regrouped from
PyTorch's r, z, n to Keras' z, r, h, and bias = [b_ih; b_hh]), both are calibrated on the same
JapaneseVowels sequences, and every file is compared after mapping the graph names (a PyTorch
module path and a Keras layer name give different prefixes; a 2-layer nn.LSTM / nn.GRU is two
Keras layers).
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared.quant_info import read_quant_info
from nndct_shared.xmodel import format_xgraph, read_xmodel
from pytorch_nndct.apis import torch_quantizer
from tf_nndct.quantization.api import tf_quantizer

HIDDEN = 16


KINDS = {"lstm": (nn.LSTM, keras.layers.LSTM, "StandardLstmCell"),
         "gru": (nn.GRU, keras.layers.GRU, "StandardGruCell")}


class TorchRnn(nn.Module):
    def __init__(self, kind: str, num_layers: int, bidirectional: bool) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.rnn = KINDS[kind][0](12, HIDDEN, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


def _keras_gates(a: np.ndarray) -> np.ndarray:
    """PyTorch GRU rows r, z, n -> Keras' z, r, h (along the first axis)."""
    return np.concatenate([a[HIDDEN:2 * HIDDEN], a[:HIDDEN], a[2 * HIDDEN:]])


def _keras_weights(rnn: nn.Module, layer: int, suffix: str) -> list[np.ndarray]:
    p = {k: v.detach().numpy() for k, v in rnn.state_dict().items()}
    w_ih, w_hh = p[f"weight_ih_l{layer}{suffix}"], p[f"weight_hh_l{layer}{suffix}"]
    b_ih, b_hh = p[f"bias_ih_l{layer}{suffix}"], p[f"bias_hh_l{layer}{suffix}"]
    if isinstance(rnn, nn.LSTM):
        return [w_ih.T, w_hh.T, b_ih + b_hh]
    return [_keras_gates(w_ih).T, _keras_gates(w_hh).T, np.stack([_keras_gates(b_ih), _keras_gates(b_hh)])]


def keras_twin(torch_model: TorchRnn, kind: str) -> tuple[keras.Model, dict[str, str]]:
    """The Keras model with the same weights, and torch graph prefix -> Keras graph prefix
    (`Lstm_StandardLstmCell_layer_1` -> `Bi1_StandardLstmCell_layer_0`)."""
    rnn = torch_model.rnn
    _, keras_cls, cell_kind = KINDS[kind]
    torch_prefix = "Rnn"  # the PyTorch module path `rnn`
    inputs = keras.Input((None, 12))
    x, names = inputs, {}
    for layer in range(rnn.num_layers):
        if rnn.bidirectional:
            wrapper = keras.layers.Bidirectional(keras_cls(HIDDEN, return_sequences=True), name=f"bi{layer}")
            x = wrapper(x)
            wrapper.forward_layer.set_weights(_keras_weights(rnn, layer, ""))
            wrapper.backward_layer.set_weights(_keras_weights(rnn, layer, "_reverse"))
            names[f"{torch_prefix}_{cell_kind}_layer_{layer}"] = f"Bi{layer}_{cell_kind}_layer_0"
        else:
            layer_obj = keras_cls(HIDDEN, return_sequences=True, name="rnn")
            x = layer_obj(x)
            layer_obj.set_weights(_keras_weights(rnn, layer, ""))
            names[f"{torch_prefix}_{cell_kind}_layer_0"] = f"{torch_prefix}_{cell_kind}_layer_0"
    return keras.Model(inputs, x), names


def _rename(text: str, names: dict[str, str]) -> str:
    for torch_prefix, keras_prefix in names.items():
        text = text.replace(torch_prefix, keras_prefix)
    return text


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=[("lstm", 1, False), ("lstm", 2, True), ("gru", 1, False), ("gru", 2, True)],
                ids=["lstm-1-layer", "lstm-2-layer-bidirectional", "gru-1-layer", "gru-2-layer-bidirectional"])
def both_flows(request, vowels, tmp_path_factory):
    """Calibrate and test both flows; return (torch dir, keras dir, torch out, keras out, names)."""
    calib, test = vowels
    kind, num_layers, bidirectional = request.param
    torch_model = TorchRnn(kind, num_layers, bidirectional).eval()
    keras_model, names = keras_twin(torch_model, kind)
    with torch.no_grad():
        np.testing.assert_allclose(torch_model(torch.from_numpy(test)).numpy(), keras_model(test).numpy(),
                                   atol=2e-6)
    tmp_path = tmp_path_factory.mktemp("flows")
    tdir, kdir = tmp_path / "torch", tmp_path / "keras"
    tq = torch_quantizer("calib", torch_model, bitwidth=16, lstm=True, output_dir=str(tdir), device="cpu")
    kq = tf_quantizer(keras_model, None, "calib", str(kdir), bitwidth=16)
    for start in range(0, len(calib), 20):
        tq.quant_model(torch.from_numpy(calib[start:start + 20]))
        kq.quant_model(calib[start:start + 20])
    tq.export_quant_config()
    kq.export_quant_config()
    tq = torch_quantizer("test", torch_model, bitwidth=16, lstm=True, output_dir=str(tdir), device="cpu")
    kq = tf_quantizer(keras_model, None, "test", str(kdir), bitwidth=16)
    with torch.no_grad():
        t_out = tq.quant_model(torch.from_numpy(test[:1])).numpy()
        t_out = np.concatenate([t_out, tq.quant_model(torch.from_numpy(test[1:])).numpy()])
    k_out = np.asarray(kq.quant_model(test))
    tq.export_xmodel(str(tdir), deploy_check=True)
    kq.dump_xmodel()
    kq.dump_rnn_outputs_by_timestep(test[:1])
    return tdir, kdir, t_out, k_out, names


def test_quant_info_fix_positions_are_identical(both_flows):
    tdir, kdir, _, _, names = both_flows
    t_info, k_info = read_quant_info(tdir / "quant_info.json"), read_quant_info(kdir / "quant_info.json")
    for section in ("param", "output", "input"):
        t_sec = {_rename(k, names): v for k, v in getattr(t_info, section).items()}
        assert t_sec == getattr(k_info, section)
    assert len(k_info.param) == 12 * len(list((kdir / "xmodel").iterdir()))


def test_quant_model_outputs_are_array_equal(both_flows):
    _, _, t_out, k_out, _ = both_flows
    assert t_out.dtype == k_out.dtype == np.float32
    assert np.array_equal(t_out, k_out)


def test_xmodels_have_identical_ops_and_constants(both_flows):
    tdir, kdir, _, _, names = both_flows
    t_files, k_files = _files(tdir / "xmodel"), _files(kdir / "xmodel")
    assert sorted(_rename(n, names) for n in t_files) == sorted(k_files)
    for name, path in t_files.items():
        t_graph, k_graph = read_xmodel(path), read_xmodel(k_files[_rename(name, names)])
        assert _rename(format_xgraph(t_graph, all_attrs=True), names) == format_xgraph(k_graph, all_attrs=True)
        t_consts = {_rename(op.name, names): op.attrs["data"] for op in t_graph.ops_of_type("const")}
        k_consts = {op.name: op.attrs["data"] for op in k_graph.ops_of_type("const")}
        assert t_consts == k_consts and len(k_consts) == 12


def test_per_frame_dumps_are_identical(both_flows):
    tdir, kdir, _, _, names = both_flows
    t_files = _files(tdir / "deploy_check_data_int")
    k_files = _files(kdir / "deploy_check_data_int")
    assert sorted(_rename(n, names) for n in t_files) == sorted(k_files)
    frames = {Path(n).parts[1] for n in k_files}
    assert frames == {f"frame_{t}" for t in range(29)}  # one frame per time step, no extra one
    for name, path in t_files.items():
        assert _rename(path.read_text(), names) == k_files[_rename(name, names)].read_text(), name


def _mixed_config(cell_kind: str) -> dict:
    """8-bit weights, 10-bit tables and products, a 12-bit state in the backward cell and one
    9-bit tensor of the forward cell, selected by the names both flows give the model."""
    return {
        "tensor_quantize_config": {"weights": {"bit_width": 8}},
        "rnn_quantize_config": [
            {"node_class": ["nonlinearity", "product"], "bit_width": 10},
            {"module": "rnn", "direction": "backward", "node_class": "hidden_state", "bit_width": 12},
        ],
        "layer_quantize_config": [
            {"layer_name": f"Rnn_{cell_kind}_layer_0_forward::y_f", "quantizable_data_type": ["activation"],
             "overall_quantize_config": {"bit_width": 9}},
        ],
    }


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_mixed_width_config_gives_byte_identical_files_in_both_flows(kind, vowels, tmp_path):
    """The same quant_config_file in torch_quantizer(lstm=True) and tf_quantizer: the same
    per-tensor widths and fix positions, byte for byte, and the same outputs (a bidirectional
    layer that both frameworks name `rnn`, so that every graph name agrees)."""
    calib, test = vowels
    torch_model = TorchRnn(kind, 1, True).eval()
    _, keras_cls, cell_kind = KINDS[kind]
    inputs = keras.Input((None, 12))
    wrapper = keras.layers.Bidirectional(keras_cls(HIDDEN, return_sequences=True), name="rnn")
    keras_model = keras.Model(inputs, wrapper(inputs))
    wrapper.forward_layer.set_weights(_keras_weights(torch_model.rnn, 0, ""))
    wrapper.backward_layer.set_weights(_keras_weights(torch_model.rnn, 0, "_reverse"))
    config = tmp_path / "widths.json"
    config.write_text(json.dumps(_mixed_config(cell_kind)))
    tdir, kdir = tmp_path / "torch", tmp_path / "keras"
    tq = torch_quantizer("calib", torch_model, bitwidth=16, lstm=True, output_dir=str(tdir), device="cpu",
                         quant_config_file=str(config))
    kq = tf_quantizer(keras_model, None, "calib", str(kdir), 16, str(config))
    for start in range(0, len(calib), 30):
        tq.quant_model(torch.from_numpy(calib[start:start + 30]))
        kq.quant_model(calib[start:start + 30])
    tq.export_quant_config()
    kq.export_quant_config()
    info = read_quant_info(kdir / "quant_info.json")
    assert {w for w, _ in info.output.values()} == {16, 10, 12, 9}
    assert {w for w, _ in info.param.values()} == {8, 16}  # 8-bit weights, 16-bit biases
    assert (tdir / "quant_info.json").read_bytes() == (kdir / "quant_info.json").read_bytes()
    tq = torch_quantizer("test", torch_model, bitwidth=16, lstm=True, output_dir=str(tdir), device="cpu",
                         quant_config_file=str(config))
    kq = tf_quantizer(keras_model, None, "test", str(kdir), bitwidth=16, quant_config_file=str(config))
    with torch.no_grad():
        t_out = tq.quant_model(torch.from_numpy(test)).numpy()
    k_out = np.asarray(kq.quant_model(test))
    assert np.array_equal(t_out, k_out)
    tq.export_xmodel(str(tdir), deploy_check=True)
    kq.dump_xmodel()
    kq.dump_rnn_outputs_by_timestep(test[:1])
    t_files, k_files = _files(tdir / "xmodel"), _files(kdir / "xmodel")
    assert sorted(t_files) == sorted(k_files) and len(k_files) == 2
    for name, path in t_files.items():
        assert path.read_bytes() == k_files[name].read_bytes(), name
    t_dumps, k_dumps = _files(tdir / "deploy_check_data_int"), _files(kdir / "deploy_check_data_int")
    assert sorted(t_dumps) == sorted(k_dumps)
    for name, path in t_dumps.items():
        assert path.read_bytes() == k_dumps[name].read_bytes(), name

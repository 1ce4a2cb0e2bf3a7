"""tf_quantizer(...).report(): the Keras flow's report equals the PyTorch flow's for the same
weights and data (the same cells, so the same numbers; LSTM and GRU), its files are written, and
Keras-only GRU forms (reset_after=False, Bidirectional) are reported."""
from __future__ import annotations

from html.parser import HTMLParser

import keras
import numpy as np
import pytest
import torch
from torch import nn

from pytorch_nndct.apis import torch_quantizer
from tf_nndct.quantization.api import tf_quantizer


class _Torch(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.lstm = nn.LSTM(12, 16, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def _keras_twin(model: _Torch) -> keras.Model:
    p = {k: v.detach().numpy() for k, v in model.lstm.state_dict().items()}
    inputs = keras.Input((None, 12))
    layer = keras.layers.LSTM(16, return_sequences=True, name="lstm")
    out = layer(inputs)
    layer.set_weights([p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"] + p["bias_hh_l0"]])
    return keras.Model(inputs, out)


def _assert_same_report(ours_t: dict, ours_k: dict) -> None:
    """The Keras report of a model is the PyTorch report of its twin (same cells, same numbers)."""
    assert ours_k["framework"] == "keras" and ours_t["framework"] == "pytorch"
    for key in ("tensors", "cells"):
        assert ours_k[key] == ours_t[key]
    assert ours_k["suggestion"]["keep"] == ours_t["suggestion"]["keep"]
    rows_t = [(r["name"], r["only_error"]) for r in ours_t["sensitivity"]["rows"]]
    rows_k = [(r["name"], r["only_error"]) for r in ours_k["sensitivity"]["rows"]]
    assert [n for n, _ in rows_k] == [n for n, _ in rows_t]
    np.testing.assert_allclose([e for _, e in rows_k], [e for _, e in rows_t], rtol=1e-6)


def test_keras_report_matches_the_pytorch_report(vowels, tmp_path):
    calib, test = vowels
    torch_model = _Torch().eval()
    tq = torch_quantizer("calib", torch_model, bitwidth=8, lstm=True, output_dir=str(tmp_path / "t"),
                         device=torch.device("cpu"))
    tq.quant_model(torch.from_numpy(calib))
    kq = tf_quantizer(_keras_twin(torch_model), None, "calib", str(tmp_path / "k"), bitwidth=8)
    kq.quant_model(calib)
    _assert_same_report(tq.report(torch.from_numpy(test[:20])).data, kq.report(test[:20]).data)
    page = (tmp_path / "k" / "quant_report.html").read_text()
    plots = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "svg":
                plots.append(dict(attrs).get("data-plot"))

    Parser().feed(page)
    assert sorted(plots) == ["cell-drift", "cell-node-overall", "cell-node-sqnr", "sensitivity"]


class _TorchGru(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.gru = nn.GRU(12, 16, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


def _keras_gru_twin(model: _TorchGru) -> keras.Model:
    p = {k: v.detach().numpy() for k, v in model.gru.state_dict().items()}
    regroup = lambda a: np.concatenate([np.split(a, 3)[i] for i in (1, 0, 2)])  # noqa: E731  r, z, n -> z, r, n
    inputs = keras.Input((None, 12))
    layer = keras.layers.GRU(16, return_sequences=True, name="gru")
    out = layer(inputs)
    layer.set_weights([regroup(p["weight_ih_l0"]).T, regroup(p["weight_hh_l0"]).T,
                       np.stack([regroup(p["bias_ih_l0"]), regroup(p["bias_hh_l0"])])])
    return keras.Model(inputs, out)


def test_keras_gru_report_matches_the_pytorch_report(vowels, tmp_path):
    calib, test = vowels
    torch_model = _TorchGru().eval()
    tq = torch_quantizer("calib", torch_model, bitwidth=8, lstm=True, output_dir=str(tmp_path / "t"),
                         device=torch.device("cpu"))
    tq.quant_model(torch.from_numpy(calib))
    kq = tf_quantizer(_keras_gru_twin(torch_model), None, "calib", str(tmp_path / "k"), bitwidth=8)
    kq.quant_model(calib)
    ours_k = kq.report(test[:20]).data
    _assert_same_report(tq.report(torch.from_numpy(test[:20])).data, ours_k)
    (cell,) = ours_k["cells"]
    assert cell["graph"] == "Gru_StandardGruCell_layer_0_forward" and cell["states"] == ["h"]
    assert cell["evaluation_matches_datapath"] and len(ours_k["sensitivity"]["rows"]) == 31


def test_keras_reset_before_and_bidirectional_gru_report(vowels, tmp_path):
    """Keras reset_after=False (its own graph) and a Bidirectional GRU, in one model: every cell
    reported, the graph evaluation equal to the datapath, the h_next SQNR of the last layer's
    forward cell computed here from the float and quantized sequences."""
    calib, test = vowels
    keras.utils.set_random_seed(4)
    inputs = keras.Input((None, 12))
    seq = keras.layers.Bidirectional(keras.layers.GRU(8, return_sequences=True), name="bi")(inputs)
    before = keras.layers.GRU(10, return_sequences=True, reset_after=False, name="gru_before")
    model = keras.Model(inputs, before(seq))
    kq = tf_quantizer(model, None, "calib", str(tmp_path), bitwidth=16)
    kq.quant_model(calib)
    kq.export_quant_config()
    tester = tf_quantizer(model, None, "test", str(tmp_path), bitwidth=16)
    doc = tester.report(test[:20], sensitivity=False).data
    cells = {c["graph"]: c for c in doc["cells"]}
    assert sorted(cells) == ["Bi_StandardGruCell_layer_0_backward", "Bi_StandardGruCell_layer_0_forward",
                             "GruBefore_StandardGruCell_layer_0_forward"]
    assert cells["GruBefore_StandardGruCell_layer_0_forward"]["variant"] == "reset_before"
    assert cells["Bi_StandardGruCell_layer_0_forward"]["variant"] == "reset_after"
    assert all(c["evaluation_matches_datapath"] and list(c["drift"]) == ["h"] for c in cells.values())
    # the last GRU fed the quantized Bidirectional output: float and quantized cell side by side
    seq_q = np.asarray(keras.Model(tester.quant_model.inputs[0], tester.quant_model.layers[1].output)(test[:20]),
                       dtype=np.float64)
    before_float = keras.Sequential([keras.Input((None, 16)), keras.layers.GRU(10, return_sequences=True,
                                                                                reset_after=False)])
    before_float.layers[0].set_weights(before.get_weights())
    h_float = np.asarray(before_float(seq_q.astype(np.float32)), dtype=np.float64)
    h_quant = np.asarray(tester.quant_model(test[:20]), dtype=np.float64)
    rows = {r["name"]: r for r in doc["tensors"]}
    expected = 10 * np.log10(np.sum(h_float ** 2) / np.sum((h_quant - h_float) ** 2))
    assert rows["GruBefore_StandardGruCell_layer_0_forward::h_next"]["sqnr_db"] == pytest.approx(expected, abs=0.05)

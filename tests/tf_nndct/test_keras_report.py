"""tf_quantizer(...).report(): the Keras flow's report equals the PyTorch flow's for the same
weights and data (the same cells, so the same numbers), and its files are written."""
from __future__ import annotations

from html.parser import HTMLParser

import keras
import numpy as np
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


def test_keras_report_matches_the_pytorch_report(vowels, tmp_path):
    calib, test = vowels
    torch_model = _Torch().eval()
    tq = torch_quantizer("calib", torch_model, bitwidth=8, lstm=True, output_dir=str(tmp_path / "t"),
                         device=torch.device("cpu"))
    tq.quant_model(torch.from_numpy(calib))
    kq = tf_quantizer(_keras_twin(torch_model), None, "calib", str(tmp_path / "k"), bitwidth=8)
    kq.quant_model(calib)
    ours_t = tq.report(torch.from_numpy(test[:20])).data
    ours_k = kq.report(test[:20]).data
    assert ours_k["framework"] == "keras" and ours_t["framework"] == "pytorch"
    for key in ("tensors", "cells"):
        assert ours_k[key] == ours_t[key]
    assert ours_k["suggestion"]["keep"] == ours_t["suggestion"]["keep"]
    rows_t = [(r["name"], r["only_error"]) for r in ours_t["sensitivity"]["rows"]]
    rows_k = [(r["name"], r["only_error"]) for r in ours_k["sensitivity"]["rows"]]
    assert [n for n, _ in rows_k] == [n for n, _ in rows_t]
    np.testing.assert_allclose([e for _, e in rows_k], [e for _, e in rows_t], rtol=1e-6)
    page = (tmp_path / "k" / "quant_report.html").read_text()
    plots = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "svg":
                plots.append(dict(attrs).get("data-plot"))

    Parser().feed(page)
    assert sorted(plots) == ["cell-drift", "cell-node-overall", "cell-node-sqnr", "sensitivity"]

"""quantizer.report() of the CNN flow: the suggested config, passed back as quant_config_file,
recovers the accuracy that plain 4-bit quantization loses on a CNN trained on digits."""
from __future__ import annotations

import json

import torch

import models
from nndct_shared.config import default_config
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")


def _flow(model, x_train, config, out):
    q = torch_quantizer("calib", model, x_train[:100], output_dir=str(out), device=CPU, quant_config_file=str(config))
    with torch.no_grad():
        for i in range(0, 300, 100):
            q.quant_model(x_train[i:i + 100])
    q.export_quant_config()
    return torch_quantizer("test", model, x_train[:100], output_dir=str(out), device=CPU, quant_config_file=str(config))


def test_suggested_config_recovers_the_accuracy_4_bits_lose(ds_model, digits, tmp_path):
    """`ds_model`: the depthwise-separable CNN of conftest.py, trained on digits."""
    x_train, y_train, x_test, y_test = digits
    model = ds_model
    float_accuracy = models.accuracy(model, x_test, y_test)
    data = default_config(4, "CPU").to_dict()
    data["include_cle"] = data["include_bias_corr"] = False
    config = tmp_path / "w4.json"
    config.write_text(json.dumps(data))
    plain = _flow(model, x_train, config, tmp_path / "plain")
    plain_accuracy = models.accuracy(plain.quant_model, x_test, y_test)
    assert float_accuracy - plain_accuracy > 2.0  # plain 4-bit loses more than 2 points
    # the report's metric is measured on held-out training images, not on the test set
    val_x, val_y = x_train[1000:1400], y_train[1000:1400]
    result = plain.report(x_train[:200], eval_fn=lambda m: models.accuracy(m, val_x, val_y), max_metric_drop=1.0)
    s = result.data["suggestion"]
    assert s["reached"] and 0 < len(s["keep"]) < len(result.data["tensors"])
    rows = result.data["sensitivity"]["rows"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(rows[i]["only_error"] >= rows[i + 1]["only_error"] for i in range(len(rows) - 1))
    suggested = _flow(model, x_train, result.config, tmp_path / "suggested")
    widths = {name: s.bit_width for name, s in suggested.settings.items()}
    assert {n for n, w in widths.items() if w == 16} == set(s["keep"])
    assert all(w == 4 for n, w in widths.items() if n not in s["keep"])
    recovered = models.accuracy(suggested.quant_model, x_test, y_test)
    assert float_accuracy - recovered < 2.0 and recovered - plain_accuracy > 2.0
    # the report ran the model on 200 images; the quantizer still exports as after its own batch
    plain.quant_model(x_test[:1])
    assert plain.runtime.last_batch_size == 1
    assert plain.export_onnx_model(str(tmp_path / "plain")).is_file()
    # the config file targets the CPU: no xmodel, with the guide's XMODEL_DEVICE warning (issue 17)
    assert plain.export_xmodel(str(tmp_path / "plain"), deploy_check=False) is None

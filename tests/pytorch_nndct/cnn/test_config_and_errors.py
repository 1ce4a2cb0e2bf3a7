"""The JSON config changes results; unsupported options and wrong calibration files fail clearly."""
from __future__ import annotations

import json

import pytest
import torch

from nndct_shared.config import default_config
from nndct_shared.messages import MissingFileError, QuantInfoError
from quant_flow import calibrate, quant_info, test_quantizer


def _config_file(tmp_path, name="config.json", target="CPU", weights=None, **overall):
    data = default_config(8, target).to_dict()
    data["overall_quantize_config"].update(overall)
    if weights:
        data.setdefault("tensor_quantize_config", {})["weights"] = weights
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _run(model, digits, out, config=None):
    calibrate(model, digits[0][:200], out, quant_config_file=config)
    quantizer = test_quantizer(model, digits[2], out, quant_config_file=config)
    return quant_info(out), quantizer.quant_model(digits[2][:50])


def test_config_changes_results(digits_mlp, digits, tmp_path):
    base_info, base = _run(digits_mlp, digits, tmp_path / "base")
    info4, out4 = _run(digits_mlp, digits, tmp_path / "bw4", _config_file(tmp_path, "bw4.json", bit_width=4))
    assert all(v[0] == 4 for v in info4["param"].values()) and not torch.equal(out4, base)
    infom, outm = _run(digits_mlp, digits, tmp_path / "maxmin", _config_file(tmp_path, "maxmin.json", method="maxmin"))
    assert infom["output"] != base_info["output"] or not torch.equal(outm, base)
    infoc, outc = _run(digits_mlp, digits, tmp_path / "pc", _config_file(tmp_path, "pc.json", weights={"per_channel": True}))
    assert "DigitsMLP::l1.weight[0]" in infoc["param"] and len(
        [k for k in infoc["param"] if k.startswith("DigitsMLP::l1.weight[")]) == 32
    per_tensor = base_info["param"]["DigitsMLP::l1.weight"][1]
    per_channel = [v[1] for k, v in infoc["param"].items() if k.startswith("DigitsMLP::l1.weight[")]
    assert min(per_channel) == per_tensor and max(per_channel) > per_tensor  # finer grids per channel


# Every other option of the guide: test_config_options.py (and test_float_scale.py).


def test_test_mode_without_calibration_result(digits_mlp, digits, tmp_path):
    with pytest.raises(MissingFileError, match="NO_CALIB_RESULT"):
        test_quantizer(digits_mlp, digits[2], tmp_path)


def test_test_mode_with_foreign_calibration_result(digits_mlp, digits_cnn, digits, tmp_path):
    calibrate(digits_cnn, digits[0][:100], tmp_path)
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH"):
        test_quantizer(digits_mlp, digits[2], tmp_path)


def test_export_quant_config_needs_a_forward(digits_mlp, digits, tmp_path):
    from pytorch_nndct.apis import torch_quantizer

    quantizer = torch_quantizer("calib", digits_mlp, digits[0][:4], output_dir=str(tmp_path), device="cpu")
    with pytest.raises(Exception, match="NO_CALIBRATION"):
        quantizer.export_quant_config()

"""Behaviours the guide documents, each with its catalogued message, and the tutorial's
export_quant_model(): DataParallel is unwrapped, torch.jit.script models are refused, no
xmodel for a CPU/GPU config, ReLU6 / SiLU replacement and affine-less BatchNorm are named.
(NaN in calibration data: test_cnn_output_safety.py.)"""
from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models
from nndct_shared.config import default_config
from nndct_shared.messages import ModelTypeError
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.qproc.codegen import load_generated
from quant_flow import calibrate, test_quantizer

CPU = torch.device("cpu")


def test_data_parallel_is_unwrapped(digits_mlp, digits, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="nndct"):
        calibrate(nn.DataParallel(digits_mlp), digits[0][:200], tmp_path / "dp")
    assert ("[QUANTIZER_TORCH_DATA_PARALLEL]: The model is wrapped in torch.nn.DataParallel; the wrapper "
            "was removed and its inner module is quantized.") in caplog.text
    calibrate(digits_mlp, digits[0][:200], tmp_path / "plain")
    assert (tmp_path / "dp" / "quant_info.json").read_bytes() == (tmp_path / "plain" / "quant_info.json").read_bytes()


@pytest.mark.parametrize("lstm", [False, True])
def test_scripted_model_is_refused(digits_mlp, digits, tmp_path, lstm):
    model = torch.jit.script(nn.LSTM(4, 8) if lstm else digits_mlp)
    with pytest.raises(ModelTypeError) as info:
        torch_quantizer("calib", model, digits[0][:4], output_dir=str(tmp_path), device=CPU, lstm=lstm)
    assert "[QUANTIZER_TORCH_TRACED_NOT_SUPPORT]" in str(info.value)
    assert "is a TorchScript module; scripted models are not supported" in str(info.value)
    assert not tmp_path.joinpath("quant_info.json").exists()


def test_no_xmodel_for_a_cpu_config(digits_mlp, digits, tmp_path, caplog):
    """XMODEL_DEVICE: a config file for a CPU (or GPU) target writes no xmodel. Without a file
    the default configuration, adapted to the DPU, writes one at any bitwidth."""
    config = tmp_path / "cpu.json"
    config.write_text(default_config(8, "CPU").to_json())
    quantizer = _test_quantizer(digits_mlp, digits, tmp_path / "cpu", quant_config_file=str(config))
    with caplog.at_level(logging.WARNING, logger="nndct"):
        assert quantizer.export_xmodel(str(tmp_path / "cpu_out"), deploy_check=True) is None
    assert ("[QUANTIZER_TORCH_XMODEL_DEVICE]: The xmodel is not dumped because target_device is 'CPU', "
            "not a DPU.") in caplog.text
    assert not (tmp_path / "cpu_out").exists()
    sixteen = _test_quantizer(digits_mlp, digits, tmp_path / "b16", bitwidth=16)
    assert sixteen.export_xmodel(str(tmp_path / "b16_out")).is_file()


def _test_quantizer(model, digits, out, **kwargs):
    calibrate(model, digits[0][:200], out, **kwargs)
    quantizer = test_quantizer(model, digits[2], out, **kwargs)
    quantizer.quant_model(digits[2][:1])
    return quantizer


class Relu6Net(nn.Module):
    """A module ReLU6, a functional relu6 and (only captured when converted) a SiLU."""

    def __init__(self, silu: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.act = nn.ReLU6()
        self.silu = nn.SiLU() if silu else nn.Identity()
        self.fc = nn.Linear(8 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.silu(F.relu6(self.act(self.conv(x)) - 3.0))
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize("convert", [False, True])
def test_relu6_and_silu_replacement_is_named(digits, tmp_path, caplog, convert):
    model = models.train(Relu6Net(silu=convert), digits[0], digits[1], epochs=3)
    data = default_config().to_dict()
    data["convert_relu6_to_relu"] = data["convert_silu_to_hswish"] = convert
    (tmp_path / "c.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="nndct"):
        q = torch_quantizer("calib", model, digits[0][:4], output_dir=str(tmp_path), device=CPU,
                            quant_config_file=str(tmp_path / "c.json"))
    ops = [n.op_type for n in q.graph]
    replaced = [line for line in caplog.text.splitlines() if "REPLACE_" in line]
    if not convert:
        assert ops.count("relu6") == 2 and replaced == []
        return
    assert "relu6" not in ops and ops.count("relu") == 2 and "hardswish" in ops
    assert len(replaced) == 3
    assert "[QUANTIZER_TORCH_REPLACE_RELU6]: ReLU6 'Relu6Net::Relu6Net/ReLU6[act]/act' has been replaced by ReLU." in caplog.text
    assert "[QUANTIZER_TORCH_REPLACE_RELU6]: ReLU6 'Relu6Net::Relu6Net/relu6' has been replaced by ReLU." in caplog.text
    assert "[QUANTIZER_TORCH_REPLACE_SILU]: SiLU 'Relu6Net::Relu6Net/SiLU[silu]/silu' has been replaced by Hardswish." in caplog.text


class AffineLessBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, affine=False)
        self.fc = nn.Linear(8 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.relu(self.bn(self.conv(x))), 1))


def test_batchnorm_without_affine_is_named_and_folded(digits, tmp_path, caplog):
    model = models.train(AffineLessBN(), digits[0], digits[1], epochs=3)
    with caplog.at_level(logging.WARNING, logger="nndct"):
        q = torch_quantizer("calib", model, digits[0][:4], output_dir=str(tmp_path), device=CPU)
    assert ("[QUANTIZER_TORCH_BATCHNORM_AFFINE]: BatchNorm 'AffineLessBN::AffineLessBN/BatchNorm2d[bn]/bn' has "
            "affine=False; it was parsed as affine=True (weight 1, bias 0).") in caplog.text
    x = digits[2][:16]
    from pytorch_nndct.optim.layer_data import run_with  # the converted model, float

    with torch.no_grad(), run_with(q.quant_model, None):
        assert torch.allclose(q.quant_model(x), model(x), atol=1e-5)


def test_tutorial_export_quant_model(digits_cnn, digits, tmp_path):
    """The tutorial: calib, export_quant_config(), export_quant_model(). <Model>.pth loads (with
    weights_only=True) into the generated <Model> and holds the parameters on their grids, as
    test mode computes with them (bias correction included)."""
    quantizer = calibrate(digits_cnn, digits[0][:200], tmp_path)
    path = quantizer.export_quant_model()
    assert path == tmp_path / "DigitsCNN.pth"
    state = torch.load(path, weights_only=True)
    model = load_generated(tmp_path / "DigitsCNN.py", "DigitsCNN")()
    model.load_state_dict(state, strict=True)
    test = test_quantizer(digits_cnn, digits[2], tmp_path)
    test.quant_model(digits[2][:1])
    for child_name, module in test.quant_model.named_children():
        for role, name in module.param_names.items():
            want = test.runtime.param(name, getattr(module, role)).detach()
            assert torch.equal(state[f"{child_name}.{role}"], want), name
            if name in test.settings:  # on the grid: integer codes at the fix position
                codes = want.double() * 2.0 ** test.runtime.fix_pos[name]
                assert torch.equal(codes, codes.round())
    assert test.export_quant_model(str(tmp_path / "again")).read_bytes() == path.read_bytes()

"""Hardware-aware quantization: `torch_quantizer(..., target=...)` quantizes what the DPU runs.

The model has one op of each kind of change: a LeakyReLU(0.2) (the DPU only has 26/256), a
17x17 conv (the DPU's kernels go up to 16) whose output a DPU ReLU reads, and a sigmoid (no DPU
engine) at the end. Its exact fix placement is compared with and without the target.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

import models
from quant_flow import calibrate, plain_config, test_quantizer

from nndct_shared.cnn_export import evaluate_xmodel
from nndct_shared.graph import to_op_name
from nndct_shared.messages import ArgumentError, QuantConfigError, QuantInfoError
from nndct_shared.quant_info_v3 import read_record
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.nn import DeQuantStub, QuantStub

B4096 = "DPUCZDX8G_ISA1_B4096"
DPU_SLOPE = 0.1015625


class HwNet(nn.Module):
    """conv-BN-LeakyReLU(0.2), a 17x17 conv + ReLU, pool, linear, sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.leaky = nn.LeakyReLU(0.2)
        self.big = nn.Conv2d(8, 8, 17, padding=8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.leaky(self.bn1(self.conv1(x)))
        x = self.relu(self.big(x))
        return torch.sigmoid(self.fc(torch.flatten(self.pool(x), 1)))


def name(op: str) -> str:
    return f"HwNet::nndct_{op}"


# input, conv1 (+BN), leaky, big, relu, pool, flatten, fc, sigmoid
INPUT, CONV1 = name("input_0"), name("conv2d_1")
LEAKY, BIG, RELU = name("leaky_relu_2"), name("conv2d_3"), name("relu_4")
POOL, FC, SIGMOID = name("adaptive_avg_pool2d_5"), name("dense_7"), name("sigmoid_8")


@pytest.fixture(scope="module")
def hw_net(digits):
    torch.manual_seed(0)
    return models.train(HwNet(), digits[0], digits[1], epochs=40)  # ~99 % float


@pytest.fixture(scope="module")
def hw_flow(hw_net, digits, tmp_path_factory):
    """calib (with the warnings it logs) -> test with target=B4096, plain PTQ config."""
    out = tmp_path_factory.mktemp("hardware_aware")
    config = plain_config(out / "config")
    handler = _Records()
    logging.getLogger("nndct").addHandler(handler)
    try:
        calib = calibrate(hw_net, digits[0][:300], out, quant_config_file=config, target=B4096)
    finally:
        logging.getLogger("nndct").removeHandler(handler)
    test = test_quantizer(hw_net, digits[2], out, quant_config_file=config, target=B4096)
    return calib, test, out, config, handler.messages


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_unknown_target_is_a_catalogued_error_before_anything_is_written(hw_net, digits, tmp_path):
    for bad in ("DPUCZDX8G_ISA1_B9999", "0x7f00000000000001"):
        out = tmp_path / "never"
        with pytest.raises(ArgumentError) as info:
            torch_quantizer("calib", hw_net, digits[0][:2], output_dir=str(out), device="cpu", target=bad)
        assert info.value.msg_id == "QUANTIZER_TORCH_UNKNOWN_TARGET"
        assert B4096 in str(info.value)
        assert not out.exists()


def test_quant_info_has_fixes_only_where_the_dpu_needs_them(hw_flow, hw_net, digits, tmp_path):
    _, _, out, config, _ = hw_flow
    ours = read_record(out / "quant_info.json").info
    # conv1 is fused into the LeakyReLU (fix after it); big runs on the CPU in float: no param
    # fix, but its output is a DPU input (the ReLU reads it); the sigmoid's output stays float
    assert list(ours.param) == ["HwNet::conv1.weight", "HwNet::conv1.bias", "HwNet::fc.weight",
                                "HwNet::fc.bias"]
    assert list(ours.output) == [INPUT, LEAKY, BIG, RELU, POOL, FC]
    assert {bw for bw, _ in [*ours.param.values(), *ours.output.values()]} == {8}
    # the same model without a target: big's params quantized, big fused into the ReLU, sigmoid fixed
    plain = calibrate(hw_net, digits[0][:300], tmp_path, quant_config_file=config)
    theirs = read_record(tmp_path / "quant_info.json").info
    assert list(theirs.param) == ["HwNet::conv1.weight", "HwNet::conv1.bias", "HwNet::big.weight",
                                  "HwNet::big.bias", "HwNet::fc.weight", "HwNet::fc.bias"]
    assert list(theirs.output) == [INPUT, LEAKY, RELU, POOL, FC, SIGMOID]
    assert plain.graph.node(LEAKY).attrs["alpha"] == 0.2


def test_cpu_node_read_by_the_dpu_is_quantized_as_an_input(hw_flow):
    calib = hw_flow[0]
    settings = calib.settings[BIG]
    assert (settings.kind, settings.search_range, settings.round_method) == ("input", 1, "std_round")
    assert calib.settings[RELU].kind == "activation"


def test_leaky_relu_slope_becomes_the_dpus_with_the_guides_warning(hw_flow, hw_net):
    calib, test, out, _, messages = hw_flow
    warnings = [m for m in messages if "QUANTIZER_TORCH_LEAKYRELU" in m]
    assert len(warnings) == 1 and f"'{LEAKY}' was changed from 0.2 to {DPU_SLOPE}" in warnings[0]
    assert "negative_slope=0.1015625" in (out / "HwNet.py").read_text()
    for quantizer in (calib, test):
        assert quantizer.graph.node(LEAKY).attrs["alpha"] == DPU_SLOPE
        slopes = [m.negative_slope for m in quantizer.quant_model.modules() if hasattr(m, "negative_slope")]
        assert slopes == [DPU_SLOPE]
    assert hw_net.leaky.negative_slope == 0.2                 # the user's model is not touched
    summary = [m for m in messages if "Hardware-aware quantization for" in m]
    # input, conv1 (+BN), leaky, relu, pool, flatten, fc
    assert summary == [
        f"[VAIQ_NOTE]: =>Hardware-aware quantization for {B4096}: 7 node(s) quantized for the DPU, 2 kept in "
        f"float on the CPU: {BIG} ('kernel'(17 x 17) is not in DPU supported range([1-16]).); "
        f"{SIGMOID} (DPU does not support sigmoid.)."]


def test_calib_test_and_xmodel_with_target(hw_flow, hw_net, digits):
    _, test, out, _, _ = hw_flow
    x_test, y_test = digits[2], digits[3]
    float_acc = models.accuracy(hw_net, x_test, y_test)
    quant_acc = models.accuracy(test.quant_model, x_test, y_test)
    print(f"\nfloat {float_acc:.2f} %, hardware-aware quantized {quant_acc:.2f} %")
    assert float_acc > 95.0 and quant_acc >= float_acc - 2.0, (float_acc, quant_acc)
    x = x_test[:1]
    with torch.no_grad():
        expected = test.quant_model(x).numpy()
    path = test.export_xmodel(str(out / "xmodel"))
    xgraph = read_xmodel(path)
    fixed = {op.input_ops[0]: op.fix for op in xgraph.ops_of_type("fix")}
    assert set(fixed) == {to_op_name(n) for n in (INPUT, LEAKY, BIG, RELU, POOL, FC)} | {
        to_op_name(f"HwNet::{p}") for p in ("conv1.weight", "conv1.bias", "fc.weight", "fc.bias")}
    assert all(bw == 8 for bw, _ in fixed.values())
    assert xgraph.op(to_op_name("HwNet::big.weight")).type == "const"       # float weights
    assert xgraph.op(to_op_name(BIG)).type == "conv2d"
    assert [op.attrs["alpha"] for op in xgraph.ops_of_type("leaky-relu")] == [DPU_SLOPE]
    assert xgraph.op(to_op_name(SIGMOID)).type == "sigmoid"
    assert not xgraph.consumers(to_op_name(SIGMOID))                        # no fix after it
    got = evaluate_xmodel(path, {to_op_name(INPUT): x.numpy()})[to_op_name(SIGMOID)]
    np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=1e-5)


def test_test_mode_needs_the_same_target_as_calibration(hw_flow, hw_net, digits):
    _, _, out, config, _ = hw_flow
    with pytest.raises(QuantInfoError) as info:
        test_quantizer(hw_net, digits[2], out, quant_config_file=config)
    assert info.value.msg_id == "QUANTIZER_TORCH_CALIB_RESULT_MISMATCH"


def test_bit_widths_are_forced_to_the_targets_eight(hw_net, digits, tmp_path):
    q4 = torch_quantizer("calib", hw_net, digits[0][:8], output_dir=str(tmp_path / "b4"),
                         bitwidth=4, device="cpu")
    assert {s.bit_width for s in q4.settings.values()} == {4}
    hw = torch_quantizer("calib", hw_net, digits[0][:8], output_dir=str(tmp_path / "hw"),
                         bitwidth=4, device="cpu", target=B4096)
    assert {s.bit_width for s in hw.settings.values()} == {8}
    assert {s.max_fix_pos for s in hw.settings.values()} == {12}


def test_fingerprint_selects_the_same_plan(hw_flow, hw_net, digits, tmp_path):
    calib = hw_flow[0]
    by_print = torch_quantizer("calib", hw_net, digits[0][:8], output_dir=str(tmp_path), device="cpu",
                               quant_config_file=hw_flow[3], target="0x0101000056010407")
    assert list(by_print.plan.params) == list(calib.plan.params)
    assert list(by_print.plan.outputs) == list(calib.plan.outputs)


def test_config_for_another_device_must_still_fit_the_dpu(hw_net, digits, tmp_path):
    import json

    from nndct_shared.config import default_config

    data = default_config(8, "CPU").to_dict()
    data["tensor_quantize_config"]["weights"] = {"per_channel": True}
    path = tmp_path / "cpu_per_channel.json"
    path.write_text(json.dumps(data))
    torch_quantizer("calib", hw_net, digits[0][:2], output_dir=str(tmp_path / "ok"), device="cpu",
                    quant_config_file=str(path))                      # fine without a target
    with pytest.raises(QuantConfigError) as info:
        torch_quantizer("calib", hw_net, digits[0][:2], output_dir=str(tmp_path / "no"), device="cpu",
                        quant_config_file=str(path), target=B4096)
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG_TARGET"
    assert "per_channel" in str(info.value) and B4096 in str(info.value)
    assert not (tmp_path / "no").exists()


class Partial(nn.Module):
    """QuantStub region conv -> ReLU; after the DeQuantStub a LeakyReLU(0.2) and a linear."""

    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.leaky = nn.LeakyReLU(0.2)
        self.fc = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dequant(self.relu(self.conv(self.quant(x))))
        return self.fc(torch.flatten(self.leaky(x), 1))


def test_quantstub_regions_still_bound_what_is_quantized(digits, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="nndct"):
        q = torch_quantizer("calib", Partial().eval(), digits[0][:4], output_dir=str(tmp_path),
                            device="cpu", target=B4096)
    assert list(q.plan.params) == ["Partial::conv.weight", "Partial::conv.bias"]
    assert list(q.plan.outputs) == ["Partial::nndct_input_0", "Partial::nndct_relu_2"]
    # the float LeakyReLU outside the region keeps its slope: no warning, no change
    assert q.graph.node("Partial::nndct_leaky_relu_3").attrs["alpha"] == 0.2
    assert not any("LEAKYRELU" in r.getMessage() for r in caplog.records)


def test_cle_pairs_only_layers_the_target_quantizes(hw_net, digits, tmp_path):
    """conv1 -> LeakyReLU -> big qualifies for cross-layer equalization with this project's
    extensions (the reference does not equalize through LeakyReLU), but with the target the
    17x17 conv runs in float on the CPU: equalizing it with a DPU layer would only move range
    into the float side, so the pair is dropped."""
    import json

    from nndct_shared.config import default_config

    config = tmp_path / "extensions.json"
    config.write_text(json.dumps(dict(default_config().to_dict(), cle_extensions=True)))

    def pairs(target, out, config_file=str(config)):
        q = torch_quantizer("calib", hw_net, digits[0][:4], output_dir=str(out), device="cpu", target=target,
                            quant_config_file=config_file)
        return [(p.first, p.second) for p in q.post_training.cle_pairs]

    assert pairs(None, tmp_path / "reference", None) == []
    assert pairs(None, tmp_path / "plain") == [(CONV1, BIG)]
    assert pairs(B4096, tmp_path / "target") == []

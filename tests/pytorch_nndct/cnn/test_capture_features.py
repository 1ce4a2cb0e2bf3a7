"""QuantStub regions, custom ops, the LeakyReLU rule and the unsupported-op error."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.messages import NndctError
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.nn import DeQuantStub, QuantStub
from pytorch_nndct.utils import register_custom_op
from quant_flow import by_traced, calibrate, quant_info, test_quantizer


class PartlyQuantized(nn.Module):
    """subm0 quantized, subm1 float, subm2 quantized (the guide's example)."""

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.subm0, self.subm1, self.subm2 = mlp.l1, mlp.l2, mlp.l3
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.quant2, self.dequant2 = QuantStub(), DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x.view(x.size(0), -1))
        h = self.dequant(F.relu(self.subm0(x)))
        h = F.relu(self.subm1(h))
        h = self.quant2(h)
        return self.dequant2(self.subm2(h))


def test_quant_stub_regions(digits_mlp, digits, tmp_path):
    model = PartlyQuantized(digits_mlp).eval()
    n = by_traced(calibrate(model, digits[0][:200], tmp_path))
    info = quant_info(tmp_path)
    assert set(info["param"]) == {"PartlyQuantized::subm0.weight", "PartlyQuantized::subm0.bias",
                                  "PartlyQuantized::subm2.weight", "PartlyQuantized::subm2.bias"}
    # region 1 starts at the input (after view, a shape op); region 2 at the float relu's output
    assert list(info["output"]) == [n["PartlyQuantized::PartlyQuantized/view"], n["PartlyQuantized::PartlyQuantized/relu"],
                                    n["PartlyQuantized::PartlyQuantized/relu_1"],
                                    n["PartlyQuantized::PartlyQuantized/Linear[subm2]/subm2"]]
    assert list(info["output"]) == ["PartlyQuantized::nndct_reshape_1", "PartlyQuantized::nndct_relu_3",
                                    "PartlyQuantized::nndct_relu_5", "PartlyQuantized::nndct_dense_6"]
    quantizer = test_quantizer(model, digits[2], tmp_path)
    x = digits[2][:8]
    out = quantizer.quant_model(x)
    float_h = quantizer.runtime.last_outputs[n["PartlyQuantized::PartlyQuantized/Linear[subm1]/subm1"]]
    fp = info["output"][n["PartlyQuantized::PartlyQuantized/relu"]][1]
    h0 = quantizer.runtime.last_outputs[n["PartlyQuantized::PartlyQuantized/relu"]]
    # subm1 runs in float on quantized data: its params are float, its output not on a grid
    expected = F.linear(h0, digits_mlp.l2.weight, digits_mlp.l2.bias)
    assert torch.equal(float_h, expected)
    assert torch.equal(h0 * 2.0 ** fp, (h0 * 2.0 ** fp).round())
    assert out.shape == (8, 10)


def test_view_before_quant_stub_is_quantized_as_input(digits_mlp, digits, tmp_path):
    model = PartlyQuantized(digits_mlp).eval()
    quantizer = calibrate(model, digits[0][:100], tmp_path)
    planned = quantizer.plan.outputs[by_traced(quantizer)["PartlyQuantized::PartlyQuantized/view"]]
    assert planned.kind == "input"
    assert quantizer.settings[planned.name].search_range == 1


@register_custom_op(op_type="ScaledSum", attrs_list=["scale_1", "scale_2"])
def scaled_sum(ctx, x: torch.Tensor, y: torch.Tensor, scale_1: float, scale_2: float) -> torch.Tensor:
    return scale_1 * x + scale_2 * y


class WithCustomOp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_sum(self.a(x), self.b(x), scale_1=2.0, scale_2=0.5)


def test_custom_op_captured_run_and_exported(tmp_path):
    torch.manual_seed(0)
    model = WithCustomOp().eval()
    x = torch.randn(32, 4)
    quantizer = calibrate(model, x, tmp_path, batch=8)
    node = next(n for n in quantizer.graph if n.op_type == "custom")
    assert node.attrs == {"op_name": "ScaledSum", "scale_1": 2.0, "scale_2": 0.5}
    assert "py_nndct.nn.Custom(op_type='ScaledSum'" in (tmp_path / "WithCustomOp.py").read_text()
    quantizer = test_quantizer(model, x, tmp_path)
    out = quantizer.quant_model(x[:1])
    n = by_traced(quantizer)
    a = quantizer.runtime.last_outputs[n["WithCustomOp::WithCustomOp/Linear[a]/a"]]
    b = quantizer.runtime.last_outputs[n["WithCustomOp::WithCustomOp/Linear[b]/b"]]
    assert node.name == "WithCustomOp::ScaledSum_3"  # a custom node is named by its own op type
    fp = quantizer.runtime.fix_pos[node.name]
    assert torch.equal(out, torch.from_numpy(__import__("reference").np_fix((2.0 * a + 0.5 * b).numpy(), 8, fp,
                                                                          "half_up")))
    path = quantizer.export_xmodel(str(tmp_path))
    assert path.stat().st_size > 0


def test_leaky_relu_slope_0_1_becomes_dpu_slope(tmp_path, caplog):
    model = nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(0.1)).eval()
    quantizer = torch_quantizer("calib", model, torch.randn(2, 3), output_dir=str(tmp_path), device="cpu")
    node = next(n for n in quantizer.graph if n.op_type == "leaky_relu")
    assert node.attrs["alpha"] == 0.1015625
    assert "QUANTIZER_TORCH_LEAKYRELU" in caplog.text


class Unsupported(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        return torch.sin(y)  # the unsupported op


def test_unsupported_op_names_op_and_source_line(tmp_path):
    with pytest.raises(NndctError) as info:
        torch_quantizer("calib", Unsupported(), torch.randn(2, 3), output_dir=str(tmp_path), device="cpu")
    text = str(info.value)
    assert "QUANTIZER_TORCH_CNN_UNSUPPORTED_OP" in text
    assert "torch.sin" in text
    assert "test_capture_features.py:" in text and "return torch.sin(y)" in text


class Untraceable(nn.Module):
    """Neither torch.fx (control flow on a tensor value) nor torch.jit.trace (a Python number
    as output) can capture it."""

    def forward(self, x: torch.Tensor):
        if x.sum() > 0:
            return x.sum().item()
        return x


def test_untraceable_model_raises_trace_error(tmp_path):
    with pytest.raises(NndctError, match="PYTORCH_TRACE") as info:
        torch_quantizer("calib", Untraceable(), torch.ones(2, 3), output_dir=str(tmp_path), device="cpu")
    text = str(info.value)   # both captures' reasons, and the guide's hint (jit.trace did fail)
    assert "TraceError" in text and "torch.jit.trace failed too" in text
    assert "pass torch.jit.trace" in text


def test_generated_model_file_has_one_module_per_node_named_in_a_comment(digits_mlp, digits, tmp_path):
    """`<Model>.py` as the reference 3.x writes it: `self.module_<i> = py_nndct.nn.<Op>(...)
    #<traced name>(<nndct name>)`, one per graph node in topological order, and a forward that
    chains them."""
    import re

    quantizer = torch_quantizer("calib", digits_mlp, digits[0][:4], output_dir=str(tmp_path), device="cpu")
    source = (tmp_path / "DigitsMLP.py").read_text()
    assert source.startswith("# GENERATED BY pytorch_nndct")
    declared = re.findall(r"self\.module_(\d+) = py_nndct\.nn\.(\w+)\(.*\) #(\S+)", source)
    nodes = list(quantizer.graph.topological_order())
    assert [int(i) for i, _, _ in declared] == list(range(len(nodes)))
    traced = quantizer.captured.traced_names
    assert [name for _, _, name in declared] == [f"{traced[node.name]}({node.name})" for node in nodes]
    assert declared[2][2] == "DigitsMLP::DigitsMLP/Linear[l1]/l1(DigitsMLP::nndct_dense_2)"
    assert [op for _, op, _ in declared][:4] == ["Input", "Reshape", "Linear", "ReLU"]  # x.view(x.size(0), -1)
    assert "output_module_0 = self.module_0(input=args[0])" in source
    assert f"return output_module_{len(nodes) - 1}" in source

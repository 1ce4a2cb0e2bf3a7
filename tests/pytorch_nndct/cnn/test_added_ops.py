"""The ops added for users' models, through the PyTorch front end: every torch form (module,
function, Tensor method) captured onto its registry entry, the converted model equal to the
float model, the whole model quantized and exported (the xmodel evaluated equal to quant_model,
TorchScript, ONNX), the ops with no quantized form kept float with FLOAT_OP, and all of them
inside a region QuantStub/DeQuantStub leave float."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.cnn_export import evaluate_xmodel
from nndct_shared.graph import to_op_name
from nndct_shared.messages import NndctError
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.nn import DeQuantStub, QuantStub
from quant_flow import calibrate, test_quantizer

CPU = torch.device("cpu")


class AddedOps(nn.Module):
    """Every added op in one model, in its module, function and method forms."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.prelu = nn.PReLU(8)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.pad = nn.ZeroPad2d((1, 1, 1, 1))
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.inorm_bn = nn.InstanceNorm2d(8, affine=True, track_running_stats=True)   # folded
        self.hsig = nn.Hardsigmoid()
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8)
        self.elu = nn.ELU(0.5)
        self.ln = nn.LayerNorm(16)
        self.gelu = nn.GELU()
        self.silu = nn.SiLU()
        self.hardtanh = nn.Hardtanh(-2.0, 2.0)
        self.w = nn.Parameter(torch.randn(16, 16) * 0.3)
        self.slope = nn.Parameter(torch.full((8,), 0.2))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.conv(x))                                   # 8 x 8 x 8
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.conv2(self.pad(self.up(x)))                           # 8 x 32 x 32
        x = torch.clamp(F.relu6(self.inorm_bn(x)).clamp(0, 6), max=5.0)
        x = F.max_pool2d(x, 4)                                          # 8 x 8 x 8
        a, b = torch.chunk(x, 2, dim=1)
        c, _ = b.split([1, 3], 1)
        x = torch.cat([self.hsig(a) * c, self.elu(b)], 1)
        x = F.prelu(self.gn(x) + self.inorm(x), self.slope)
        t = x.flatten(2).permute(0, 2, 1)                              # N x 64 x 8
        t = torch.cat([t, t.transpose(1, 2).transpose(2, 1)], dim=2)   # N x 64 x 16
        t = self.gelu(self.ln(t)) @ self.w
        att = torch.softmax(torch.bmm(t, t.transpose(1, 2)) * 0.25, dim=-1)
        t = self.hardtanh(torch.matmul(att, t))
        t = self.silu(t).sum(dim=1)                                    # N x 16
        m = torch.max(t.unsqueeze(1), dim=1).values + torch.amax(t.unsqueeze(-1), dim=-1)
        return self.fc(F.elu(m) + F.gelu(m, approximate="tanh"))


@pytest.fixture(scope="module")
def added_ops():
    torch.manual_seed(0)
    model = AddedOps()
    model.inorm_bn.running_mean.uniform_(-0.3, 0.3)
    model.inorm_bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _ops(quantizer) -> list[str]:
    return [n.op_type for n in quantizer.graph.topological_order()]


def test_every_form_is_captured(added_ops, tmp_path, caplog):
    q = torch_quantizer("calib", added_ops, torch.rand(2, 1, 8, 8), output_dir=str(tmp_path), device=CPU)
    ops = _ops(q)
    for op in ("prelu", "resize", "pad", "clamp", "chunk", "split", "hardsigmoid", "group_norm",
               "instance_norm", "elu", "permute", "transpose", "layer_norm", "gelu", "matmul", "silu",
               "sum", "unsqueeze", "max"):
        assert op in ops, op
    graph = q.graph
    resize = [n for n in graph.topological_order() if n.op_type == "resize"]
    assert [(n.attrs["mode"], n.attrs.get("scale")) for n in resize] == [("bilinear", (2.0, 2.0)),
                                                                          ("nearest", (2.0, 2.0))]
    clamps = [n.attrs for n in graph.topological_order() if n.op_type == "clamp"]
    assert clamps == [{"min": 0.0, "max": 6.0}, {"min": None, "max": 5.0}, {"min": -2.0, "max": 2.0}]
    assert ops.count("relu6") == 1 and ops.count("conv2d") == 2      # InstanceNorm(running stats) folded
    pieces = [(n.op_type, n.attrs["start"], n.attrs["end"]) for n in graph.topological_order()
              if n.op_type in ("chunk", "split")]
    assert pieces == [("chunk", 0, 4), ("chunk", 4, 8), ("split", 0, 1)]
    matmuls = [n for n in graph.topological_order() if n.op_type == "matmul"]
    assert [sorted(n.params) for n in matmuls] == [["other"], [], []]
    np.testing.assert_array_equal(matmuls[0].params["other"].data, added_ops.w.detach().numpy())
    assert sorted(n.attrs["dims"] for n in graph.topological_order() if n.op_type == "max") == [(1,), (2,)]
    assert "QUANTIZER_TORCH_FLOAT_OP" in caplog.text and "(layer_norm)" in caplog.text
    floats = set(q.session.float_nodes)
    assert {graph.node(n).op_type for n in floats} == {"group_norm", "instance_norm", "elu", "layer_norm",
                                                       "gelu", "silu", "sum", "max"}
    assert all(q.settings[n].kind == "input" for n in floats & set(q.settings))  # read by quantized ops
    assert not {t.name for n in floats for t in graph.node(n).params.values()} & set(q.settings)


def test_converted_model_is_the_float_model(added_ops, tmp_path):
    q = torch_quantizer("calib", added_ops, torch.rand(2, 1, 8, 8), output_dir=str(tmp_path), device=CPU)
    model = q.quant_model
    for module in model.modules():
        if hasattr(module, "quant_runtime"):
            module.quant_runtime = None
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(model(x), added_ops(x), rtol=1e-5, atol=1e-5)


def test_quantize_and_export_every_added_op(added_ops, tmp_path):
    torch.manual_seed(1)
    x = torch.rand(48, 1, 8, 8)
    calibrate(added_ops, x, tmp_path, batch=16)
    q = test_quantizer(added_ops, x, tmp_path)
    with torch.no_grad():
        out = q.quant_model(x[:16])
        assert (out - added_ops(x[:16])).abs().max() < 0.5 * added_ops(x[:16]).abs().max()
        want = q.quant_model(x[:1]).numpy()
    path = q.export_xmodel(str(tmp_path), deploy_check=True)
    graph = q.graph
    got = evaluate_xmodel(path, {to_op_name(graph.inputs[0].name): x[:1].numpy()})
    last = graph.outputs[0]
    step = 2.0 ** -q.runtime.fix_pos[last.name]
    value = got[to_op_name(last.name) + "_fix"]
    # the float ops compute in float32 in torch, float64 in the evaluator: a value within a few
    # ulps of a rounding boundary of the next fix can land one step apart
    assert np.max(np.abs(value - want)) <= step
    scripted = torch.jit.load(str(q.export_torch_script(str(tmp_path))))
    assert torch.equal(scripted(x[:3]), q.quant_model(x[:3]))
    assert q.export_onnx_model(str(tmp_path)).stat().st_size > 0


class FloatRegion(nn.Module):
    """Only the conv block is quantized; every added op runs in the float region after it."""

    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.ops = AddedOpsTail()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ops(self.dequant(torch.relu(self.conv(self.quant(x)))))


class AddedOpsTail(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.prelu, self.ln, self.gn = nn.PReLU(), nn.LayerNorm(16), nn.GroupNorm(2, 4)
        self.w = nn.Parameter(torch.randn(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.prelu(x), scale_factor=2, mode="nearest")      # 4 x 16 x 16
        x = F.pad(F.hardsigmoid(self.gn(x)), (0, 0, 0, 0))
        a, b = x.chunk(2, 1)
        t = (a * torch.clamp(b, -1, 1)).mean(1).permute(0, 2, 1)            # 16 x 16
        t = F.silu(F.gelu(F.elu(self.ln(t)))) @ self.w
        return torch.amax(t.sum(1, keepdim=True), dim=1)


def test_added_ops_in_a_float_region(tmp_path):
    torch.manual_seed(2)
    model = FloatRegion().eval()
    x = torch.rand(16, 1, 8, 8)
    calibrate(model, x, tmp_path, batch=8)
    q = test_quantizer(model, x, tmp_path)
    graph = q.graph
    assert {graph.node(n).op_type for n in q.captured.quantized} == {"conv2d", "relu"}
    relu = next(n.name for n in graph if n.op_type == "relu")
    assert list(q.plan.outputs) == [graph.inputs[0].name, relu]          # conv fused into relu
    quantized_params = {t.name for n in q.captured.quantized for t in graph.node(n).params.values()}
    assert set(q.settings) == quantized_params | {graph.inputs[0].name, relu}
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(q.quant_model(x), ref, atol=0.1 * float(ref.abs().max()), rtol=0.1)


@pytest.mark.parametrize("forward,detail", [
    (lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), "mode 'bicubic'"),
    (lambda x: torch.max(x, dim=1)[1].float(), "its indices"),
    (lambda x: torch.max(x, x * 2), "the elementwise maximum of two tensors"),
    (lambda x: x.flatten(1) @ x.flatten(1)[0], "an operand of rank < 2"),
    (lambda x: F.pad(x, (1, 1, 1, 1), mode="circular"), "mode 'circular'"),
    (lambda x: x.sum(), "a reduction of every axis to a scalar"),
])
def test_unsupported_forms_are_named(forward, detail, tmp_path):
    class One(nn.Module):
        def forward(self, x):
            return forward(x)

    with pytest.raises(NndctError, match="CNN_UNSUPPORTED_OP") as info:
        torch_quantizer("calib", One(), torch.rand(1, 3, 4, 4), output_dir=str(tmp_path), device=CPU)
    assert detail in str(info.value)

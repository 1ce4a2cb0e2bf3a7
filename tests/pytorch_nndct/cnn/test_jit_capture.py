"""Capture falls back to torch.jit.trace (the reference's capture) when torch.fx cannot trace:
a model that passes the guide's jit trace test but branches on tensor sizes captures and
quantizes end to end, and for fx-traceable models the jit capture gives the same neutral graph
as fx (names, ops, attrs, params, edges, shapes, quantized regions)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import models
from nndct_shared.cnn_export import evaluate_xmodel
from nndct_shared.graph import to_op_name
from nndct_shared.messages import NndctError
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.parse import capture_model
from quant_flow import calibrate, test_quantizer
from test_added_ops import AddedOps, FloatRegion
from test_ops import AllOps

CPU = torch.device("cpu")


def assert_same_capture(a, b) -> None:
    """Two captures of one model are the same neutral graph."""
    ga, gb = a.graph, b.graph
    order_a, order_b = ga.topological_order(), gb.topological_order()
    assert [n.name for n in order_a] == [n.name for n in order_b]
    for x, y in zip(order_a, order_b):
        assert (x.op_type, x.attrs, x.inputs, x.outputs) == (y.op_type, y.attrs, y.inputs, y.outputs), x.name
        assert sorted(x.params) == sorted(y.params), x.name
        for role, t in x.params.items():
            assert t.name == y.params[role].name
            np.testing.assert_array_equal(t.data, y.params[role].data, err_msg=f"{x.name}.{role}")
        assert ga.tensor(x.outputs[0]).shape == gb.tensor(y.outputs[0]).shape, x.name
    assert [n.name for n in ga.outputs] == [n.name for n in gb.outputs]
    assert (a.quantized, a.quant_inputs, a.layer_types) == (b.quantized, b.quant_inputs, b.layer_types)


def _seeded(cls):
    torch.manual_seed(0)
    return cls().eval()


@pytest.mark.parametrize("cls,shape", [
    (models.DigitsCNN, (2, 1, 8, 8)), (models.DigitsMLP, (2, 1, 8, 8)), (models.ResidualNet, (2, 1, 8, 8)),
    (models.Conv1dNet, (2, 1, 8, 8)), (AllOps, (2, 3, 8, 8)), (AddedOps, (2, 1, 8, 8)), (FloatRegion, (2, 1, 8, 8)),
])
def test_jit_capture_is_the_fx_capture(cls, shape):
    model = _seeded(cls)
    x = torch.rand(shape)
    assert_same_capture(capture_model(model, (x,), trace="fx"), capture_model(model, (x,), trace="jit"))


class SizeBranch(nn.Module):
    """Passes the jit trace test, not torch.fx: Python branches and a loop on tensor sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.convs = nn.ModuleList([nn.Conv2d(16, 16, 3, padding=1) for _ in range(2)])
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        if x.shape[-1] > 4:                              # fx: "symbolically traced variables ..."
            x = F.max_pool2d(x, 2)
        for conv in self.convs[: x.size(1) // 8]:
            x = x + F.relu(conv(x))
        return self.fc(x.view(x.size(0), -1))


@pytest.fixture(scope="module")
def size_branch(digits):
    torch.manual_seed(0)
    return models.train(SizeBranch(), digits[0], digits[1], epochs=10)


def test_a_size_branching_model_is_captured_with_jit_trace(size_branch, digits, tmp_path, caplog):
    with pytest.raises(NndctError, match="PYTORCH_TRACE"):
        capture_model(size_branch, (digits[0][:2],), trace="fx")
    calibrate(size_branch, digits[0][:300], tmp_path)
    assert "torch.fx could not trace 'SizeBranch'" in caplog.text and "torch.jit.trace" in caplog.text
    q = test_quantizer(size_branch, digits[2], tmp_path)
    ops = [n.op_type for n in q.graph.topological_order()]
    assert ops == ["input", "conv2d", "relu", "max_pool2d", "conv2d", "relu", "add", "conv2d", "relu",
                   "add", "reshape", "linear"]
    traced = set(q.captured.traced_names.values())  # the nodes are named nndct_<op>_<index>
    assert "SizeBranch::SizeBranch/Conv2d[0]/convs_0" in traced and "SizeBranch::SizeBranch/Conv2d[1]/convs_1" in traced
    float_acc = models.accuracy(size_branch, digits[2], digits[3])
    quant_acc = models.accuracy(q.quant_model, digits[2], digits[3])
    assert float_acc > 90 and quant_acc > float_acc - 3
    with torch.no_grad():
        want = q.quant_model(digits[2][:1]).numpy()
    path = q.export_xmodel(str(tmp_path), deploy_check=True)
    got = evaluate_xmodel(path, {to_op_name(q.graph.inputs[0].name): digits[2][:1].numpy()})
    np.testing.assert_array_equal(got[to_op_name(q.graph.outputs[0].name) + "_fix"], want)
    scripted = torch.jit.load(str(q.export_torch_script(str(tmp_path))))
    assert torch.equal(scripted(digits[2][:5]), q.quant_model(digits[2][:5]))


class SinAfterBranch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = x * 2
        return torch.sin(x)  # no capture rule


def test_an_op_without_capture_rule_is_named_in_the_jit_capture(tmp_path):
    with pytest.raises(NndctError, match="CNN_UNSUPPORTED_OP") as info:
        torch_quantizer("calib", SinAfterBranch(), torch.ones(2, 3), output_dir=str(tmp_path), device=CPU)
    text = str(info.value)
    assert "aten::sin" in text and "test_jit_capture.py:" in text and "return torch.sin(x)" in text

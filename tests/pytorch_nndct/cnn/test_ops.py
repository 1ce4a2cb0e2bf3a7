"""Every supported op: captured as the contract says, float-equivalent before quantization,
quantized in test mode and exported to xmodel and ONNX."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.graph.cnn_ops import CNN_OPS, required_attrs
from pytorch_nndct.apis import torch_quantizer
from quant_flow import calibrate, test_quantizer


class AllOps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.bn_alone = nn.BatchNorm2d(4)
        self.relu6 = nn.ReLU6()
        self.hs = nn.Hardswish()
        self.avg = nn.AvgPool2d(2)
        self.conv1d = nn.Conv1d(4, 4, 3, padding=1)
        self.pool1d = nn.MaxPool1d(2)
        self.gap1d = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(8 + 4, 5)
        self.flat = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu6(self.bn(self.conv(x)))                      # 6 x 4 x 4
        b = torch.sigmoid(self.dw(a)) * torch.tanh(a) - 0.25 * a   # mul, sub, const mul
        u = self.hs(self.up(b))                                    # 4 x 8 x 8
        u = F.leaky_relu(self.bn_alone(u), 0.2)                    # standalone BN -> scale
        p = self.avg(u) + F.max_pool2d(u, 2)                       # 4 x 4 x 4
        s = p.reshape(p.shape[0], 4, 16)
        s = self.gap1d(self.pool1d(torch.relu(self.conv1d(s))))   # 4 x 1
        m = torch.mean(p, dim=(2, 3), keepdim=False)               # 4
        c = torch.cat([self.flat(s), m, F.adaptive_avg_pool2d(p, 1).flatten(1)], dim=1)
        return F.softmax(self.fc(c), dim=-1)


@pytest.fixture(scope="module")
def all_ops():
    torch.manual_seed(0)
    model = AllOps()
    for bn in (model.bn, model.bn_alone):  # non-trivial statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_capture_follows_the_contract(all_ops, tmp_path):
    quantizer = torch_quantizer("calib", all_ops, torch.randn(2, 3, 8, 8), output_dir=str(tmp_path), device="cpu")
    ops = [n.op_type for n in quantizer.graph]
    for expected in ("conv2d", "conv_transpose2d", "scale", "relu6", "hardswish", "sigmoid", "tanh", "mul",
                     "sub", "leaky_relu", "avg_pool2d", "max_pool2d", "add", "reshape", "conv1d",
                     "max_pool1d", "adaptive_avg_pool1d", "mean", "concat", "flatten",
                     "adaptive_avg_pool2d", "linear", "softmax"):
        assert expected in ops, expected
    assert "batch_norm" not in ops and ops.count("scale") == 1  # bn folded into conv, bn_alone kept
    for node in quantizer.graph:
        assert node.op_type in CNN_OPS
        for attr in required_attrs(node.op_type):
            assert attr in node.attrs, (node.name, attr)
    assert quantizer.graph.node("AllOps::AllOps/softmax").attrs["dim"] == 1


def test_generated_model_is_float_equivalent(all_ops, tmp_path):
    quantizer = torch_quantizer("calib", all_ops, torch.randn(2, 3, 8, 8), output_dir=str(tmp_path), device="cpu")
    model = quantizer.quant_model
    for module in model.modules():
        if hasattr(module, "quant_runtime"):
            module.quant_runtime = None  # the plain float ops of <Model>.py
    x = torch.randn(5, 3, 8, 8)
    torch.testing.assert_close(model(x), all_ops(x), rtol=1e-5, atol=1e-6)


def test_all_ops_quantize_and_export(all_ops, tmp_path):
    torch.manual_seed(1)
    x = torch.randn(64, 3, 8, 8)
    calibrate(all_ops, x, tmp_path, batch=16)
    quantizer = test_quantizer(all_ops, x, tmp_path)
    out = quantizer.quant_model(x[:16])
    assert (out - all_ops(x[:16])).abs().max() < 0.05
    quantizer.quant_model(x[:1])
    assert quantizer.export_xmodel(str(tmp_path), deploy_check=True).stat().st_size > 0
    assert quantizer.export_onnx_model(str(tmp_path)).stat().st_size > 0
    scripted = torch.jit.load(str(quantizer.export_torch_script(str(tmp_path))))
    assert torch.equal(scripted(x[:3]), quantizer.quant_model(x[:3]))

"""Every supported op: captured as the contract says, float-equivalent before quantization,
quantized in test mode and exported to xmodel and ONNX."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.graph.ops import CNN_OPS, required_attrs
from pytorch_nndct.apis import torch_quantizer
from quant_flow import by_traced, calibrate, quant_info, test_quantizer


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
    softmax = by_traced(quantizer)["AllOps::AllOps/softmax"]
    assert softmax == f"AllOps::nndct_softmax_{len(quantizer.graph) - 1}"
    assert quantizer.graph.node(softmax).attrs["dim"] == 1


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


# --- adaptive max pooling ----------------------------------------------------------------------


class AdaptiveMax(nn.Module):
    """nn.AdaptiveMaxPool2d((2, 2)), then F.adaptive_max_pool1d over the flattened map."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveMaxPool2d((2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool1d(self.pool(x).flatten(2), 2)   # C x 4 -> C x 2


def _np_fix(x, fix):
    import numpy as np
    from reference import np_fix
    return torch.from_numpy(np_fix(np.asarray(x), fix[0], fix[1], "half_up"))


@pytest.mark.parametrize("hw", [4, 5])
def test_adaptive_max_pool_quantizes_and_exports(hw, tmp_path):
    import numpy as np

    from nndct_shared.cnn_export import evaluate_xmodel
    from nndct_shared.graph import to_op_name
    from nndct_shared.messages import NndctError
    from nndct_shared.xmodel import read_xmodel

    torch.manual_seed(2)
    model = AdaptiveMax().eval()
    x = torch.randn(32, 3, hw, hw)
    calibrate(model, x, tmp_path, batch=16)
    quantizer = test_quantizer(model, x, tmp_path)
    ops = [n.op_type for n in quantizer.graph]
    assert ops == ["input", "adaptive_max_pool2d", "flatten", "adaptive_max_pool1d"]
    assert [n.attrs.get("output_size") for n in quantizer.graph][1::2] == [(2, 2), (2,)]
    # test mode equals an independent computation: fix the input, max over torch's windows
    # [floor(i*L/out), ceil((i+1)*L/out)) by hand, fix the pool outputs
    info = quant_info(tmp_path)["output"]
    names = [n.name for n in quantizer.graph]
    assert list(info) == [names[0], names[1], names[3]]
    fin, fp2, fp1 = (list(info[n]) for n in (names[0], names[1], names[3]))

    def windows(size, out):
        return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]

    xq = _np_fix(x[:8], fin)
    p2 = torch.stack([torch.stack([xq[:, :, a:b, c:d].amax(dim=(2, 3)) for c, d in windows(hw, 2)], -1)
                      for a, b in windows(hw, 2)], -2)
    p2 = _np_fix(p2, fp2).flatten(2)
    p1 = torch.stack([p2[:, :, a:b].amax(-1) for a, b in windows(4, 2)], -1)
    expected = _np_fix(p1, fp1)
    with torch.no_grad():
        got = quantizer.quant_model(x[:8])
    assert torch.equal(got, expected)
    quantizer.quant_model(x[:1])
    if hw == 5:   # windows of different sizes: no maxpool2d form
        with pytest.raises(NndctError) as info_err:
            quantizer.export_xmodel(str(tmp_path / "xm"))
        assert info_err.value.msg_id == "QUANTIZER_TORCH_EXPORT_UNSUPPORTED"
        assert "adaptive max pool from [5, 5] to [2, 2]" in str(info_err.value)
        return
    path = quantizer.export_xmodel(str(tmp_path / "xm"), deploy_check=True)
    xgraph = read_xmodel(path)
    pool2d, pool1d = xgraph.op(to_op_name(names[1])), xgraph.op(to_op_name(names[3]))
    assert (pool2d.type, pool2d.attrs["kernel"], pool2d.attrs["stride"]) == ("maxpool2d", [2, 2], [2, 2])
    assert (pool1d.type, pool1d.attrs["kernel"], pool1d.attrs["stride"]) == ("maxpool1d", [2], [2])
    assert not xgraph.ops_of_type("mul")          # max pooling has no dpu_scale
    with torch.no_grad():
        want = quantizer.quant_model(x[:1]).numpy()
    outs = evaluate_xmodel(path, {to_op_name(names[0]): x[:1].numpy()})
    got_x = outs[to_op_name(names[3]) + "_fix"]                   # NLC
    np.testing.assert_array_equal(got_x, np.transpose(want, (0, 2, 1)))
    assert quantizer.export_onnx_model(str(tmp_path / "onnx")).stat().st_size > 0


@pytest.mark.parametrize("use_module", [True, False])
def test_adaptive_max_pool_with_indices_is_refused(use_module, tmp_path):
    from nndct_shared.messages import NndctError

    class WithIndices(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AdaptiveMaxPool2d(2, return_indices=True)

        def forward(self, x: torch.Tensor):
            if use_module:
                return self.pool(x)[0]
            return F.adaptive_max_pool2d(x, 2, return_indices=True)[0]

    with pytest.raises(NndctError) as info:
        torch_quantizer("calib", WithIndices(), torch.randn(1, 3, 4, 4), output_dir=str(tmp_path),
                        device="cpu")
    assert info.value.msg_id == "QUANTIZER_TORCH_CNN_UNSUPPORTED_OP"
    assert "adaptive_max_pool2d" in str(info.value) and "return_indices=True" in str(info.value)

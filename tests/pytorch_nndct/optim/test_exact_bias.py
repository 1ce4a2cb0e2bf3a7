"""Bias correction's shortcut (`optim.exact_bias`): a quantized layer's outputs for two biases
from one bias-free product, bit for bit the layer's own forward, and only when that is proven.

The layers are those of real calibrated models (the trained digits depthwise-separable net, and
a model with a grouped transposed convolution and a linear layer on [N, L, features] inputs),
their quantized inputs taken from the quantized model on digits images.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.step_configs import step_config
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.optim import correct_bias
from pytorch_nndct.optim.exact_bias import ExactProducts
from pytorch_nndct.optim.layer_data import fixed_runtime, layer_io, record_inputs, run_with, weighted_modules

CPU = torch.device("cpu")


class UpAndAcross(nn.Module):
    """conv, grouped transposed conv (8x8 -> 16x16), grouped conv, linear over the rows."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2, groups=2)
        self.c2 = nn.Conv2d(8, 4, 3, padding=1, groups=4)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.c2(F.relu(self.up(F.relu(self.c1(x))))))
        return self.fc(x.mean(dim=1))  # [N, 16 rows, 16 features]


def _calibrated(model, images, out, bit_width):
    q = torch_quantizer("calib", model, images[:50], output_dir=str(out), bitwidth=bit_width, device=CPU,
                        quant_config_file=step_config(out, cle=False, bias_corr=False, bit_width=bit_width))
    with torch.no_grad():
        q.quant_model(images[:200])
    return q


def _layers(q, images):
    """(module, quantized input, quantized output) of every weighted layer with a bias."""
    runtime = fixed_runtime(q.runtime.settings, q.runtime.calibrated())
    found = []
    with run_with(q.quant_model, runtime):
        for module in weighted_modules(q.quant_model):
            if module.bias is not None:
                x, y = layer_io(q.quant_model, module, (images[:64],))
                found.append((module, x, y))
    return runtime, found


@pytest.fixture(scope="module")
def up_model(digits):
    torch.manual_seed(3)
    return UpAndAcross().eval()


@pytest.mark.parametrize("bit_width", [4, 8])
@pytest.mark.parametrize("which", ["ds_model", "up_model"])
def test_outputs_for_two_biases_are_the_forward_bit_for_bit(request, digits, tmp_path, which, bit_width):
    model = request.getfixturevalue(which)
    q = _calibrated(model, digits[0], tmp_path, bit_width)
    runtime, layers = _layers(q, digits[0])
    assert {type(m).__name__ for m, _, _ in layers} >= ({"Conv2d", "Linear"} | ({"ConvTranspose2d"} if which == "up_model" else set()))
    for module, x, y in layers:
        exact = ExactProducts.of(module, runtime, [(x,)])
        assert exact is not None, module.node_name
        (first,) = exact.outputs()
        assert torch.equal(first, y) and first.data_ptr() != y.data_ptr(), module.node_name
        # a corrected bias (a shift of a few steps per channel): still the forward's bits
        with torch.no_grad():
            module.bias.add_(torch.linspace(-0.3, 0.3, module.bias.numel()))
        with run_with(q.quant_model, runtime), torch.no_grad():
            expected = module(x)  # the layer's forward on the same quantized input
        (second,) = exact.outputs(reuse=True)
        assert torch.equal(second, expected) and not torch.equal(second, first), module.node_name
        assert exact.products == []  # reused: handed over, not kept


def test_what_cannot_be_proven_exact_takes_the_forward(ds_model, digits, tmp_path):
    q = _calibrated(ds_model, digits[0], tmp_path / "q16", 16)
    runtime, layers = _layers(q, digits[0])
    fc, x_fc = next((m, x) for m, x, _ in layers if type(m).__name__ == "Linear")
    # 16-bit codes over 512 inputs: the sums need more than float32's 24 bits
    assert ExactProducts.of(fc, runtime, [(x_fc,)]) is None

    q8 = _calibrated(ds_model, digits[0], tmp_path / "q8", 8)
    runtime, layers = _layers(q8, digits[0])
    conv, x, _ = layers[0]
    assert ExactProducts.of(conv, runtime, [(x,)]) is not None
    off_grid = x + 1e-3 * torch.rand_like(x)  # inputs on no power-of-two grid of any use
    assert ExactProducts.of(conv, runtime, [(x,), (off_grid,)]) is None
    with_nan = x.clone()
    with_nan[0, 0, 0, 0] = float("nan")
    assert ExactProducts.of(conv, runtime, [(with_nan,)]) is None
    assert ExactProducts.of(conv, runtime, [(x.double(),)]) is None  # another dtype than the weight
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # reduced-precision products allowed
    try:
        assert ExactProducts.of(conv, runtime, [(x,)]) is None
    finally:
        torch.set_float32_matmul_precision(saved)
    # a bias on a grid too fine for exact sums (fix position 40): the outputs are refused, the
    # caller runs the forward
    exact = ExactProducts.of(conv, runtime, [(x,)])
    assert exact.outputs() is not None
    runtime.fix_pos[conv.param_names["bias"]] = 40
    assert exact.outputs() is None


def test_the_walk_takes_the_shortcut_and_gives_the_recomputed_results(ds_model, digits, tmp_path, monkeypatch):
    """At 8 bits every corrected layer of the digits model is proven exact, so correct_bias
    computes one quantized product per layer; its results are those of recomputing each layer
    through the model's forward (`_correct_bias_by_recomputing`)."""
    from pytorch_nndct.optim.bias_correction import _correct_bias_by_recomputing

    taken = []
    original = ExactProducts.outputs

    def spy(self, reuse=False):
        out = original(self, reuse)
        taken.append((self.module.node_name, out is not None))
        return out

    monkeypatch.setattr(ExactProducts, "outputs", spy)
    results = {}
    for how in ("walk", "recompute"):
        q = _calibrated(ds_model, digits[0], tmp_path / how, 8)
        batches = record_inputs(q.quant_model, lambda m: m(digits[0][:300]), (q.quant_model,), max_samples=300)
        found = (correct_bias(q, batches) if how == "walk"
                 else _correct_bias_by_recomputing(q, batches, dict(q.runtime.calibrated())))
        results[how] = (found, {m.node_name: m.bias.detach().clone() for m in weighted_modules(q.quant_model)},
                        q.runtime.calibrated())
    assert len(taken) == 2 * 4 and all(ok for _, ok in taken)  # before and after, 4 layers
    (walk, walk_biases, walk_fix), (again, again_biases, again_fix) = results["walk"], results["recompute"]
    for a, b in zip(walk, again, strict=True):
        assert a.error_before.tobytes() == b.error_before.tobytes()
        assert a.error_after.tobytes() == b.error_after.tobytes()
    assert all(torch.equal(walk_biases[k], again_biases[k]) for k in walk_biases)
    assert walk_fix == again_fix

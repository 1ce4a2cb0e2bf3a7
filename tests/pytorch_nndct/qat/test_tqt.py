"""TQT fake quantization: forward value, straight-through gradients, fix-position mapping."""
from __future__ import annotations

import math

import pytest
import torch

from pytorch_nndct.qat.tqt import fix_pos_of, log2_threshold_for, tqt_fake_quant
from pytorch_nndct.quantization.fix_torch import fix_neuron_torch, method_code

STD_ROUND = method_code("std_round")
HALF_UP = method_code("half_up")


def test_fix_position_is_bitwidth_minus_one_minus_ceil_of_threshold():
    assert fix_pos_of(0.0, 8, 12) == 7
    assert fix_pos_of(0.01, 8, 12) == 6
    assert fix_pos_of(1.0, 8, 12) == 6
    assert fix_pos_of(-2.5, 8, 12) == 9
    assert fix_pos_of(-20.0, 8, 12) == 12  # the flow's cap
    for fp in range(-3, 13):
        assert fix_pos_of(log2_threshold_for(fp, 8), 8, 12) == fp


@pytest.mark.parametrize("log2_t", [-1.3, 0.2, 2.7])
@pytest.mark.parametrize("code", [STD_ROUND, HALF_UP])
def test_forward_value_is_fix_neuron(log2_t, code):
    x = torch.randn(1000, generator=torch.Generator().manual_seed(1)) * 3
    x.requires_grad_(True)
    t = torch.tensor(log2_t, requires_grad=True)
    out = tqt_fake_quant(x, t, 8, code, 12)
    assert torch.equal(out.detach(), fix_neuron_torch(x.detach(), 8, fix_pos_of(t, 8, 12), code))


def test_straight_through_gradients_match_tqt():
    # 4 bits, log2 t = 0.3 -> ceil 1 -> scale 2**(1-3) = 0.25, fix_pos 2, grid [-8, 7]
    x = torch.tensor([-3.0, -0.3, 0.26, 0.7, 5.0], requires_grad=True)
    t = torch.tensor(0.3, requires_grad=True)
    out = tqt_fake_quant(x, t, 4, STD_ROUND, 12)
    assert out.tolist() == [-2.0, -0.25, 0.25, 0.75, 1.75]
    out.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # zero where it saturates
    scaled = [-12.0, -1.2, 1.04, 2.8, 20.0]
    q = [-8, -1, 1, 3, 7]
    expected = math.log(2) * 0.25 * sum(qi - (si if -8 <= si <= 7 else 0.0) for qi, si in zip(q, scaled))
    assert float(t.grad) == pytest.approx(expected, rel=1e-6)


def test_no_grad_returns_the_quantized_value_without_graph():
    x = torch.randn(10)
    t = torch.tensor(0.5, requires_grad=True)
    with torch.no_grad():
        out = tqt_fake_quant(x, t, 8, STD_ROUND, 12)
    assert not out.requires_grad
    assert torch.equal(out, fix_neuron_torch(x, 8, 6, STD_ROUND))

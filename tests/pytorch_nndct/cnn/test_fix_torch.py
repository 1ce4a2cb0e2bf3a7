"""Both paths of fix_neuron_torch (the C++ kernel on plain CPU tensors, pure torch otherwise)
equal the C++ kernel for every rounding method, ties included."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nndct_shared import kernels
from pytorch_nndct.quantization.fix_torch import fix_neuron_torch, fix_neuron_torch_reference, method_code


@pytest.mark.parametrize("method", ["dpu_round", "std_round", "floor", "half_down", "ceil", "half_even"])
@pytest.mark.parametrize("fix_pos", [-2, 0, 3, 7])
def test_equals_kernel(method, fix_pos):
    rng = np.random.default_rng(fix_pos + 10)
    x = (rng.standard_normal(20000) * 4).astype(np.float32)
    x[:2000] = (np.round(x[:2000] * 2.0 ** fix_pos) + 0.5) * 2.0 ** -fix_pos  # exact ties
    x[2000:2009] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 0.49999997, -0.49999997, 1e30, -1e30]
    want = kernels.fix_neuron(x, 8, fix_pos, method)
    for fn in (fix_neuron_torch, fix_neuron_torch_reference):
        got = fn(torch.from_numpy(x), 8, fix_pos, method_code(method)).numpy()
        assert np.array_equal(got, want, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(want))  # +0.0, never -0.0


def test_autograd_and_tracing_take_the_pure_torch_path():
    x = torch.linspace(-3, 3, 101, requires_grad=True)
    y = fix_neuron_torch(x, 8, 4, method_code("dpu_round"))
    assert y.grad_fn is not None  # expressions autograd can see (QAT builds its STE on them)
    traced = torch.jit.trace(lambda t: fix_neuron_torch(t, 8, 4, method_code("dpu_round")), (x.detach(),))
    assert "aten::floor" in str(traced.graph)  # the fix op is in the traced graph, not a numpy call
    assert torch.equal(traced(x.detach()), y.detach())


def test_per_channel_fix_pos():
    x = torch.tensor([[0.3, 0.3], [0.3, 0.3]])
    fp = torch.tensor([[1.0], [3.0]])
    got = fix_neuron_torch(x, 8, fp, method_code("std_round"))
    assert torch.equal(got, torch.tensor([[0.5, 0.5], [0.25, 0.25]]))

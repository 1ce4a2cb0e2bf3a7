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


def test_in_place_quantizes_an_owned_tensor_in_its_own_memory():
    x = torch.linspace(-3, 3, 1001)
    want = fix_neuron_torch(x, 8, 4, method_code("dpu_round"))
    owned = x.clone()
    got = fix_neuron_torch(owned, 8, 4, method_code("dpu_round"), in_place=True)
    assert got is owned and torch.equal(got, want)
    # a strided view cannot be written in place: a new tensor, the view's base untouched
    base = x.clone()
    view = base[::2]
    got = fix_neuron_torch(view, 8, 4, method_code("dpu_round"), in_place=True)
    assert got.data_ptr() != view.data_ptr() and torch.equal(base, x) and torch.equal(got, want[::2])


@pytest.mark.parametrize("mode", ["calib", "test"])
def test_quant_model_in_place_outputs_change_nothing(residual_net, digits, tmp_path, monkeypatch, mode):
    """The runtime fake-quantizes the new outputs of the modules that own them in place
    (`NodeModule.owns_output`): the same outputs, node by node, as with a copy each time, and the
    data given to quant_model (read by the input node, which does not own it) is left alone."""
    from pytorch_nndct.apis import torch_quantizer
    from pytorch_nndct.quantization.runtime import QuantRuntime

    x = digits[0][:64]
    cpu = torch.device("cpu")
    if mode == "test":  # a real calibration first
        q = torch_quantizer("calib", residual_net, x, output_dir=str(tmp_path), device=cpu)
        q.quant_model(digits[0][:200])
        q.export_quant_config()
    seen = {}
    for in_place in (True, False):
        monkeypatch.setattr(QuantRuntime, "quantize_outputs_in_place", in_place)
        out_dir = tmp_path / f"calib_{in_place}" if mode == "calib" else tmp_path
        q = torch_quantizer(mode, residual_net, x, output_dir=str(out_dir), device=cpu)
        data = digits[0][:64] * 0.93 + 0.01  # off the input's grid: fixing it would change it
        given = data.clone()
        with torch.no_grad():
            out = q.quant_model(given)
        assert torch.equal(given, data)
        seen[in_place] = (out, {k: v.clone() for k, v in q.runtime.last_outputs.items()},
                          dict(q.runtime.calibrated()) if mode == "calib" else None)
    (out_a, nodes_a, fix_a), (out_b, nodes_b, fix_b) = seen[True], seen[False]
    assert torch.equal(out_a, out_b) and fix_a == fix_b
    assert nodes_a.keys() == nodes_b.keys() and all(torch.equal(nodes_a[k], nodes_b[k]) for k in nodes_a)

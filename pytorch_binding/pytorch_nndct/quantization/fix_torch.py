"""Fake quantization (`fix_neuron`) in pure torch, bit-exact with `nndct_shared.kernels`.

Why a torch version next to the C++ kernel: the quantized model must run on any device, be
traceable into TorchScript and keep autograd-free tensors on the GPU; the C++ kernel takes
numpy arrays. The arithmetic is done in float64: `x * 2**fix_pos` is exact there for float32
inputs, and so is `r + 0.5`, which keeps the tie detection exact (in float32,
`0.49999997 + 0.5` rounds to 1.0). A test checks equality with the C++ kernel for every method.
"""
from __future__ import annotations

import torch

from nndct_shared.kernels import resolve_method

__all__ = ["fix_neuron_torch", "method_code"]

_DPU_ROUND, _STD_ROUND, _FLOOR, _HALF_DOWN, _CEIL, _HALF_EVEN = 2, 3, 4, 6, 7, 8


def method_code(method: int | str) -> int:
    """The kernel code of a rounding method (name or reference code); ValueError otherwise."""
    code = resolve_method(method)
    if code not in (_DPU_ROUND, _STD_ROUND, _FLOOR, _HALF_DOWN, _CEIL, _HALF_EVEN):
        raise ValueError(f"rounding method {method!r} has no torch implementation")
    return code


def _round(r: torch.Tensor, code: int) -> torch.Tensor:
    if code == _DPU_ROUND:
        return torch.floor(r + 0.5)
    if code == _STD_ROUND:
        return torch.sign(r) * torch.floor(torch.abs(r) + 0.5)
    if code == _FLOOR:
        return torch.floor(r)
    if code == _HALF_DOWN:  # ties toward zero
        return torch.sign(r) * torch.ceil(torch.abs(r) - 0.5)
    if code == _CEIL:
        return torch.ceil(r)
    return torch.round(r)  # half to even


def fix_neuron_torch(x: torch.Tensor, bit_width: int, fix_pos: int | torch.Tensor, method: int) -> torch.Tensor:
    """`clamp(round(x * 2**fix_pos)) * 2**-fix_pos` in x's dtype.

    `fix_pos` is an int (per tensor) or an int tensor broadcastable to x (per channel).
    `method` is a kernel code from `method_code`. NaN stays NaN; +-inf saturate.
    """
    qmin = -(2 ** (bit_width - 1))
    qmax = 2 ** (bit_width - 1) - 1
    if isinstance(fix_pos, torch.Tensor):
        scale = torch.pow(2.0, fix_pos.to(device=x.device, dtype=torch.float64))
    else:
        scale = 2.0 ** int(fix_pos)
    r = x.to(torch.float64) * scale
    q = _round(torch.clamp(r, qmin, qmax), method)
    out = q / scale
    return (out + 0.0).to(x.dtype)  # + 0.0 turns -0.0 into +0.0, as the kernel does

"""Fake quantization (`fix_neuron`) of torch tensors, bit-exact with `nndct_shared.kernels`.

`fix_neuron_torch` sends a plain CPU float tensor (no autograd, not being traced) with one fix
position to the C++ kernel, which reads and writes it without a copy and is several times
faster than the tensor expressions below; everything else (GPU tensors, autograd for QAT and
fast finetune, TorchScript tracing, per-channel fix positions) goes through
`fix_neuron_torch_reference`, in pure torch.

The pure-torch arithmetic is done in float64: `x * 2**fix_pos` is exact there for float32
inputs, and so is `r + 0.5`, which keeps the tie detection exact (in float32,
`0.49999997 + 0.5` rounds to 1.0). A test checks both paths against the C++ kernel for every
method.
"""
from __future__ import annotations

import torch

from nndct_shared import kernels
from nndct_shared.kernels._args import MAX_FIX_POS, MIN_FIX_POS
from nndct_shared.kernels.methods import CEIL, CODE_NAMES, DPU_ROUND, FLOOR, HALF_DOWN, STD_ROUND, method_code

__all__ = ["fix_neuron_torch", "fix_neuron_torch_reference", "method_code"]



def _round(r: torch.Tensor, code: int) -> torch.Tensor:
    if code == DPU_ROUND:
        return torch.floor(r + 0.5)
    if code == STD_ROUND:
        return torch.sign(r) * torch.floor(torch.abs(r) + 0.5)
    if code == FLOOR:
        return torch.floor(r)
    if code == HALF_DOWN:  # ties toward zero
        return torch.sign(r) * torch.ceil(torch.abs(r) - 0.5)
    if code == CEIL:
        return torch.ceil(r)
    return torch.round(r)  # half to even


def _kernel_applies(x: torch.Tensor, fix_pos: int | torch.Tensor) -> bool:
    return (not isinstance(fix_pos, torch.Tensor) and MIN_FIX_POS <= int(fix_pos) <= MAX_FIX_POS
            and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and not x.requires_grad and not torch.jit.is_tracing() and not torch.jit.is_scripting())


def fix_neuron_torch(x: torch.Tensor, bit_width: int, fix_pos: int | torch.Tensor, method: int,
                     in_place: bool = False) -> torch.Tensor:
    """`clamp(round(x * 2**fix_pos)) * 2**-fix_pos` in x's dtype (see the module docstring).

    `fix_pos` is an int (per tensor) or an int tensor broadcastable to x (per channel).
    `method` is a kernel code from `method_code`. NaN stays NaN; +-inf saturate.
    `in_place`: the caller owns `x` and lets it be overwritten; a contiguous tensor the C++
    kernel takes is then quantized in its own memory and returned (the same bits either way).
    """
    if _kernel_applies(x, fix_pos):
        array = x.detach().contiguous().numpy()
        if in_place and x.is_contiguous():
            kernels.fix_neuron(array, bit_width, int(fix_pos), CODE_NAMES[method], out=array)
            return x
        return torch.from_numpy(kernels.fix_neuron(array, bit_width, int(fix_pos), CODE_NAMES[method]))
    return fix_neuron_torch_reference(x, bit_width, fix_pos, method)


def fix_neuron_torch_reference(x: torch.Tensor, bit_width: int, fix_pos: int | torch.Tensor,
                               method: int) -> torch.Tensor:
    """The same in pure torch: any device, differentiable expressions, traceable."""
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

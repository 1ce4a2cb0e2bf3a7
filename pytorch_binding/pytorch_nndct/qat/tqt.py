"""TQT fake quantization: power-of-two quantization with a learnable log2 threshold.

Why TQT (Jain et al., "Trained Quantization Thresholds", the scheme the reference QAT uses):
the DPU needs power-of-two scales, i.e. integer fix positions, which have no gradient. TQT
learns a real log2 threshold `t` instead; the scale is `s = 2**ceil(t) / 2**(b-1)`, so the
fix position is `fp = b - 1 - ceil(t)` (capped at the flow's `max_fix_pos`). Gradients use
straight-through estimators for `ceil` and for rounding:

- d out / d x = 1 inside the grid range, 0 where the value saturates;
- d out / d t = ln2 * s * (q - x/s) inside the range (q the rounded integer), and
  ln2 * s * q_min|q_max where it saturates.

The forward VALUE is computed by `fix_neuron_torch` (the same op, rounding method and float64
arithmetic as the test-mode quantizer), so a trained model and the deployable model built
from its fix positions give bit-identical outputs; the gradient path is a zero-valued
surrogate added on top.
"""
from __future__ import annotations

import math

import torch

from ..quantization.fix_torch import fix_neuron_torch

__all__ = ["fix_pos_of", "log2_threshold_for", "tqt_fake_quant"]


def _ceil_ste(t: torch.Tensor) -> torch.Tensor:
    return t + (torch.ceil(t) - t).detach()


def fix_pos_of(log2_t: torch.Tensor | float, bit_width: int, max_fix_pos: int) -> int:
    """The integer fix position a learned log2 threshold stands for."""
    value = float(log2_t.detach()) if isinstance(log2_t, torch.Tensor) else float(log2_t)
    return min(bit_width - 1 - math.ceil(value), max_fix_pos)


def log2_threshold_for(fix_pos: int, bit_width: int) -> float:
    """An initial log2 threshold for `fix_pos`: the middle of the interval whose ceil gives it,
    so small early updates do not flip the fix position."""
    return float(bit_width - 1 - fix_pos) - 0.5


def tqt_fake_quant(x: torch.Tensor, log2_t: torch.Tensor, bit_width: int, round_code: int,
                   max_fix_pos: int) -> torch.Tensor:
    """Fake-quantize `x` at the fix position of `log2_t`, with TQT gradients for both."""
    fix_pos = fix_pos_of(log2_t, bit_width, max_fix_pos)
    fixed = fix_neuron_torch(x.detach(), bit_width, fix_pos, round_code)
    if not (x.requires_grad or log2_t.requires_grad) or not torch.is_grad_enabled():
        return fixed
    qmin, qmax = -(2 ** (bit_width - 1)), 2 ** (bit_width - 1) - 1
    exponent = torch.clamp(_ceil_ste(log2_t), min=float(bit_width - 1 - max_fix_pos))
    scale = torch.pow(2.0, exponent - (bit_width - 1)).to(x.dtype)
    clamped = torch.clamp(x / scale, qmin, qmax)
    q_int = fixed * (2.0 ** fix_pos)  # exact: fixed is an integer times 2**-fix_pos
    surrogate = (clamped + (q_int - clamped).detach()) * scale
    return fixed + (surrogate - surrogate.detach())

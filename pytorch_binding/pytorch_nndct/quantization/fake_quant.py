"""Fake quantization of one tensor by its settings and calibration result, in torch.

One function for the runtime (calibration and test mode), bias correction and fast finetune, so
every place that quantizes a tensor does it the same way. The result kinds:

- an int: a power-of-two fix position (`fix_neuron_torch`);
- a `FloatQParams`: a float scale and zero point (`fake_quant_float_torch`);
- a tuple of either, one per output channel along `settings.axis` (per-channel weights).

`narrow_range` with power-of-two positions drops the most negative code: the grid is
[-(2^(b-1) - 1), 2^(b-1) - 1], i.e. the fix op's result is raised to the narrow grid's lowest
value (the same as clamping the integer code to the narrow range before scaling).
"""
from __future__ import annotations

from typing import Any

import torch

from nndct_shared.calibration import FloatQParams

from .fix_float_torch import fake_quant_float_torch
from .fix_torch import fix_neuron_torch

__all__ = ["channel_shape", "fake_quantize", "fix_position_tensor"]


def channel_shape(x: torch.Tensor, axis: int, channels: int) -> list[int]:
    """The shape that broadcasts one value per channel along `axis` of `x`."""
    shape = [1] * x.dim()
    shape[axis] = channels
    return shape


def fix_position_tensor(fix_pos: tuple[int, ...], x: torch.Tensor, axis: int) -> torch.Tensor:
    """Per-channel fix positions as a float64 tensor broadcastable to `x`."""
    values = torch.tensor(fix_pos, dtype=torch.float64, device=x.device)
    return values.reshape(channel_shape(x, axis, len(fix_pos)))


def _narrow(y: torch.Tensor, bit_width: int, fix_pos: int | torch.Tensor) -> torch.Tensor:
    lowest = -(2 ** (bit_width - 1) - 1)
    if isinstance(fix_pos, torch.Tensor):
        bound = (lowest * torch.pow(2.0, -fix_pos)).to(y.dtype)
        return torch.maximum(y, bound)
    return torch.clamp(y, min=lowest * 2.0 ** -int(fix_pos))


def fake_quantize(s: Any, x: torch.Tensor, fix_pos: Any,
                  channel_fix: torch.Tensor | None = None, in_place: bool = False) -> torch.Tensor:
    """`x` on the grid of settings `s` (a `TensorSettings`) and result `fix_pos` (None: `x`).

    `channel_fix`: the per-channel fix positions already as a tensor (`fix_position_tensor`),
    which callers that quantize the same weight often keep to save rebuilding it.
    `in_place`: `x` may be overwritten with the result (done where the C++ kernel applies).
    """
    if fix_pos is None:
        return x
    if isinstance(fix_pos, FloatQParams):
        spec = s.float_spec
        return fake_quant_float_torch(x, spec.qmin, spec.qmax, fix_pos.scale, fix_pos.zero_point,
                                      s.round_code)
    if isinstance(fix_pos, tuple) and fix_pos and isinstance(fix_pos[0], FloatQParams):
        spec = s.float_spec
        shape = channel_shape(x, s.axis, len(fix_pos))
        scale = torch.tensor([q.scale for q in fix_pos], dtype=torch.float64, device=x.device)
        zero = torch.tensor([q.zero_point for q in fix_pos], dtype=torch.float64, device=x.device)
        return fake_quant_float_torch(x, spec.qmin, spec.qmax, scale.reshape(shape),
                                      zero.reshape(shape), s.round_code)
    if isinstance(fix_pos, tuple):
        fp = channel_fix if channel_fix is not None else fix_position_tensor(fix_pos, x, s.axis)
    else:
        fp = int(fix_pos)
    y = fix_neuron_torch(x, s.bit_width, fp, s.round_code, in_place)
    return _narrow(y, s.bit_width, fp) if s.narrow_range else y

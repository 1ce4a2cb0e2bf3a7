"""Float-scale fake quantization in pure torch, equal to `nndct_shared.calibration.float_scale`.

`q = clamp(round(x / scale) + zero_point, qmin, qmax)`, `x' = (q - zero_point) * scale`, in
float64 like `fix_neuron_torch` (same rounding functions, same -0.0 -> +0.0), so it matches the
numpy reference `fake_quant_float_numpy` bit for bit and traces into TorchScript with the scale
and zero point as constants. NaN stays NaN; +-inf saturate to the end codes.
"""
from __future__ import annotations

import torch

from .fix_torch import _round

__all__ = ["fake_quant_float_torch"]


def fake_quant_float_torch(x: torch.Tensor, qmin: int, qmax: int, scale: float | torch.Tensor,
                           zero_point: int | torch.Tensor, method: int) -> torch.Tensor:
    """Fake-quantize `x` on the grid [qmin, qmax] with a float `scale` and int `zero_point`
    (or float64 tensors of them broadcastable to `x`: one per channel); `method` is a kernel
    code from `fix_torch.method_code`."""
    if not isinstance(scale, torch.Tensor):
        scale, zero_point = float(scale), int(zero_point)
    r = x.to(torch.float64) / scale
    q = torch.clamp(_round(r, method) + zero_point, qmin, qmax)
    out = (q - zero_point) * scale
    return (out + 0.0).to(x.dtype)

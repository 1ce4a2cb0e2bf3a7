"""Bias correction's shortcut for layers whose quantized arithmetic is exact in float.

Why: correcting a layer needs its quantized outputs twice, with the old bias (to measure the
error) and with the corrected one (for the layers after it): two convolutions that differ only
in the bias. In general float convolution with a bias is not `conv(x, W) + b` bit for bit
(oneDNN starts its sums from the bias), so the second cannot be derived from the first. It can
when every product and partial sum is exact: x, W and b on power-of-two grids (the quantized
side: fix positions), and every sum representable in the output's float type. Then any order of
the additions gives the same, exact, result, so `bias_free(x) + b` is bit for bit what the
layer's own forward computes with bias b, for every b that keeps the sums exact.

`ExactProducts.of` proves it from the data: `kernels.grid_extent` of the inputs and of the
quantized weight (fraction bits F_x, F_w and largest magnitudes), the per-channel L1 norm of the
weight, and each bias checked when it is used (`admits`): every partial sum of channel c is a
multiple of 2^-F with F = max(F_x + F_w, F_b) and at most max|x| * L1_c + |b_c| in magnitude,
which must stay within half the float type's exact integer range (2^23 steps for float32). It
gives up (None) whenever it cannot prove exactness: 16-bit codes with long sums, inputs off any
grid or not finite, GPU tensors, reduced-precision float settings (TF32/BF16 matmul or conv).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from nndct_shared.kernels import grid_extent

from .layer_data import module_with

__all__ = ["ExactProducts"]

#: Exact float range (in steps) kept for the sums: half of the significand's, a margin for the
#: float64 rounding of the bound itself.
_EXACT_STEPS = {torch.float32: 2.0 ** 23, torch.float64: 2.0 ** 52}
#: Finest grid whose multiples the float type still represents (subnormals included).
_FINEST_BITS = {torch.float32: 149, torch.float64: 1074}


def _full_precision() -> bool:
    """True when torch computes float32 matmuls and convolutions in full precision on the CPU."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    mkldnn = torch.backends.mkldnn
    for part in ("conv", "matmul"):
        precision = getattr(getattr(mkldnn, part, None), "fp32_precision", "none")
        if precision not in ("none", "ieee"):
            return False
    return True


def _extent(t: torch.Tensor) -> tuple[int, float, bool]:
    return grid_extent(t.detach().contiguous().numpy())


class ExactProducts:
    """The bias-free quantized products of one layer on every batch, proven exact."""

    def __init__(self, module: Any, runtime: Any, products: list[torch.Tensor], fraction_bits: int,
                 max_abs_x: float, l1: torch.Tensor, dtype: torch.dtype) -> None:
        self.module, self.runtime, self.products = module, runtime, products
        self._bits_xw, self._max_x, self._l1, self._dtype = fraction_bits, max_abs_x, l1, dtype

    @classmethod
    def of(cls, module: Any, runtime: Any, inputs: Sequence[tuple[torch.Tensor, ...]]) -> "ExactProducts | None":
        """The products of `module` (quantized with `runtime`) on `inputs` (one tuple per batch),
        or None when exactness cannot be proven (see the module docstring)."""
        if not hasattr(module, "bias_free") or module.bias is None or not inputs or not _full_precision():
            return None
        xs = [x[0] for x in inputs]
        dtype = xs[0].dtype
        if dtype not in _EXACT_STEPS or any(x.dtype != dtype or x.device.type != "cpu" or x.requires_grad
                                            for x in xs):
            return None
        with module_with(module, runtime), torch.no_grad():
            weight = module.param("weight")
            if weight.dtype != dtype:
                return None
            bits_w, _, finite_w = _extent(weight)
            bits_x, max_x = 0, 0.0
            for x in xs:
                bits, largest, finite = _extent(x)
                if not finite:
                    return None
                bits_x, max_x = max(bits_x, bits), max(max_x, largest)
            if not finite_w or bits_x + bits_w > _FINEST_BITS[dtype]:
                return None
            l1 = module.output_l1(weight)
            if float(l1.max()) * max_x * 2.0 ** (bits_x + bits_w) > _EXACT_STEPS[dtype]:
                return None
            products = [module.bias_free(x) for x in xs]
        return cls(module, runtime, products, bits_x + bits_w, max_x, l1, dtype)

    def _bias(self) -> torch.Tensor:
        with module_with(self.module, self.runtime), torch.no_grad():
            return self.module.param("bias")

    def admits(self, bias: torch.Tensor) -> bool:
        """True when the sums stay exact with `bias` (the runtime's quantized bias) added."""
        bits_b, _, finite = _extent(bias)
        bits = max(self._bits_xw, bits_b)
        if not finite or bits > _FINEST_BITS[self._dtype] or bias.dtype != self._dtype:
            return False
        bound = self._l1 * self._max_x + bias.detach().abs().to(torch.float64)
        return float(bound.max()) * 2.0 ** bits <= _EXACT_STEPS[self._dtype]

    def outputs(self, reuse: bool = False) -> list[torch.Tensor] | None:
        """The layer's quantized outputs with its current bias, bit for bit its forward's; None
        when that bias would break exactness (compute them with the forward then). `reuse`:
        the products are not needed again and are overwritten (no copies)."""
        bias = self._bias()
        if not self.admits(bias):
            return None
        runtime, name = self.runtime, self.module.node_name
        in_place = getattr(runtime, "quantize_outputs_in_place", False)
        outs = []
        for z in self.products:
            shape = [1] * z.dim()
            shape[self.module.bias_axis] = -1
            y = z.add_(bias.view(shape)) if reuse else z + bias.view(shape)
            outs.append(runtime.output(name, y, in_place=True) if in_place else runtime.output(name, y))
        if reuse:
            self.products = []
        return outs

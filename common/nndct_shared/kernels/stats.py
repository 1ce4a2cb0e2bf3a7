"""Output statistics of the accuracy tools (C++, multi-threaded, results independent of threads).

`channel_difference_sums` is bias correction's per-channel error sum, read from the outputs' own
layout (NCHW, NHWC, [N, features]) with the channel axis named, so that no one-row-per-channel
copy of two large activations is made. The order of the float64 additions is fixed
(`csrc/include/nndct/output_stats.h`), so the sums do not depend on the number of threads.

`grid_extent` says which power-of-two grid a tensor lies on and how far it reaches: enough to
prove that a quantized layer's float32 products and sums are exact (bias correction then
computes a layer's outputs for two biases from one bias-free product).
"""
from __future__ import annotations

import numpy as np

from ._args import FLOAT_DTYPES, as_float_array, channel_layout, normalize_axis
from ._core import core


def channel_difference_sums(a: np.ndarray, b: np.ndarray, axis: int = 1) -> np.ndarray:
    """Per-channel sums over every axis but `axis` of (a - b), each difference taken in float64,
    in the order of `output_stats.h` (per slice before `axis`: the slice's run summed in 8 lanes;
    the slices' sums added in order). Float32 or float64 inputs of one shape (mixed dtypes are
    compared in float64, which is exact); returns float64 [channels]."""
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise ValueError(f"output shapes differ: {x.shape} vs {y.shape}")
    if x.dtype != y.dtype and x.dtype in FLOAT_DTYPES and y.dtype in FLOAT_DTYPES:
        x, y = x.astype(np.float64), y.astype(np.float64)
    x, y = as_float_array(x, "a"), as_float_array(y, "b")
    outer, channels, inner = channel_layout(x.shape, normalize_axis(axis, x.ndim))
    return core.channel_difference_sums(x, y, outer, channels, inner)


def grid_extent(x: np.ndarray) -> tuple[int, float, bool]:
    """(F, max_abs, finite): the fewest fraction bits F with every value an integer multiple of
    2^-F (0 for integers and zeros), the largest magnitude, and whether every value is finite
    (F and max_abs then describe the finite values)."""
    arr = as_float_array(x)
    bits, max_abs, finite = core.grid_extent(arr)
    return int(bits), float(max_abs), bool(finite)

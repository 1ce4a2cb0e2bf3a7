"""Cross-layer equalization (CLE) math, as vai_q_pytorch 3.x computes it (spec:
reference-cnn-flow-3x.md, "Cross-layer equalization").

Why: with per-tensor weight quantization, a layer whose output channels have very different
weight ranges wastes most of its grid on the widest channel. When layer A's output channel c
feeds layer B's input channel c through functions that commute with a positive per-channel scale
(f(x / s) = f(x) / s: ReLU, max / average pooling), dividing channel c of A (weights and bias)
by s(c) and multiplying input channel c of B by s(c) leaves the float function unchanged; a
ReLU6 between them stays exact when its clip level of channel c becomes 6 / s(c).

The reference's scale (DFQ, Nagel et al. 2019, with its bias-aware range of A):

- r_A(c) = max |row c of A's weights, extended by A's bias(c) / shrink|, with the shrink factor
  of `bias_shrink_factor` (no bias: the weights alone);
- r_B(c) = max |B's weights of input channel c|;
- s(c) = r_A(c) / sqrt(r_A(c) r_B(c)), 1 where that root is 0, and 1 where r_A(c) + r_B(c) < 0.5.

Every step runs in float32, as the reference's numpy code does, so the equalized weights are the
reference's bit for bit.

Weight layouts (torch / neutral IR): `out_axis` is the axis of a weight's output channels (0 for
conv / linear `[O, I/groups, *k]`, 1 for a transposed conv `[I, O/groups, *k]`, which CLE only
takes with groups 1). A conv B's input channel c sits at axis 1 index c % (I/groups) of the
output channels of group c // (I/groups) (for a depthwise B, rows c*m .. c*m + m - 1).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "bias_shrink_factor",
    "equalization_scales",
    "first_layer_ranges",
    "input_channel_ranges",
    "output_channel_ranges",
    "output_channel_rows",
    "scale_input_channels",
    "scale_output_channels",
]

_F32 = np.float32
_TINY = _F32(1e-7)
_SMALL_RANGES = _F32(0.5)


def output_channel_rows(weight: np.ndarray, out_axis: int = 0) -> np.ndarray:
    """The weights as one row per output channel, `[C_out, K]` (float32)."""
    w = np.asarray(weight, dtype=_F32)
    return np.moveaxis(w, out_axis, 0).reshape(w.shape[out_axis], -1)


def output_channel_ranges(weight: np.ndarray, out_axis: int = 0) -> np.ndarray:
    """max|W| per output channel."""
    return np.abs(output_channel_rows(weight, out_axis)).max(axis=1)


def _group_layout(weight: np.ndarray, groups: int) -> tuple[int, int]:
    out_channels, per_group = weight.shape[0], weight.shape[1]
    if groups < 1 or out_channels % groups:
        raise ValueError(f"groups={groups} does not divide the {out_channels} output channels")
    return out_channels // groups, per_group


def _input_factor_index(weight: np.ndarray, out_axis: int, groups: int) -> np.ndarray:
    """For each element of `weight`, the index of the input channel it reads (broadcastable)."""
    if out_axis == 1:  # transposed conv, groups 1: input channels on axis 0
        if groups != 1:
            raise ValueError("a transposed conv takes part in CLE with groups 1 only")
        return np.arange(weight.shape[0]).reshape((-1,) + (1,) * (weight.ndim - 1))
    out_per_group, per_group = _group_layout(weight, groups)
    group = np.arange(weight.shape[0]) // out_per_group
    index = group[:, None] * per_group + np.arange(per_group)[None, :]
    return index.reshape(index.shape + (1,) * (weight.ndim - 2))


def input_channel_ranges(weight: np.ndarray, groups: int = 1, out_axis: int = 0) -> np.ndarray:
    """max|W| per input channel of a (grouped) conv, linear or (groups 1) transposed conv weight."""
    w = np.abs(np.asarray(weight, dtype=_F32))
    index = np.broadcast_to(_input_factor_index(w, out_axis, groups), w.shape)
    count = int(index.max()) + 1
    ranges = np.zeros(count, dtype=_F32)
    np.maximum.at(ranges, index.reshape(-1), w.reshape(-1))
    return ranges


def bias_shrink_factor(rows: np.ndarray, bias: np.ndarray) -> tuple[int, np.ndarray]:
    """(shrink factor, bias with 0 for all-zero channels) of layer A: the reference's heuristic.

    Zero weights are replaced by the smallest non-zero magnitude of their row (an all-zero row
    by 1e-7, its bias by 0), magnitudes below 1e-7 by 1e-7; with the ratios |bias(c)| / |w| of
    every weight: small biases (max |bias| < 10 and max |bias| / max |w| < 20) shrink by 5 when
    the ratios' median > 100 or their mean > 1000, else by 2; other biases by 20 (median > 30 or
    mean > 500), 10 (median > 15 or mean > 100) or 5."""
    rows = np.asarray(rows, dtype=_F32)
    bias = np.asarray(bias, dtype=_F32).reshape(-1)
    clamped_bias = bias.copy()
    w = rows.copy()
    if np.count_nonzero(w) != w.size:
        for c in range(w.shape[0]):
            nonzero = w[c] != 0
            if not nonzero.any():
                clamped_bias[c] = 0
                w[c] = _TINY
            elif not nonzero.all():
                w[c] = np.where(nonzero, w[c], np.abs(w[c][nonzero]).min())
    w = np.where(np.abs(w) < _TINY, _TINY, w)
    ratios = np.abs(clamped_bias)[:, None] / np.abs(w)
    median, mean = np.median(ratios), ratios.mean(dtype=_F32)
    top_bias = np.abs(bias).max()
    if top_bias < 10 and top_bias / np.abs(w).max() < 20:
        shrink = 5 if median > 100 or mean > 1000 else 2
    elif median > 30 or mean > 500:
        shrink = 20
    elif median > 15 or mean > 100:
        shrink = 10
    else:
        shrink = 5
    return shrink, clamped_bias


def first_layer_ranges(rows: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """r_A: max |row c, extended by bias(c) / shrink| (the weights alone without a bias)."""
    rows = np.asarray(rows, dtype=_F32)
    if bias is None:
        return np.abs(rows).max(axis=1)
    shrink, clamped = bias_shrink_factor(rows, bias)
    extended = np.concatenate([rows, (clamped / _F32(shrink))[:, None]], axis=1)
    return np.abs(extended).max(axis=1)


def equalization_scales(r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
    """s = r_A / sqrt(r_A r_B) per channel; 1 where the root is 0 or r_A + r_B < 0.5 (float32)."""
    r_a, r_b = np.asarray(r_a, dtype=_F32), np.asarray(r_b, dtype=_F32)
    if r_a.shape != r_b.shape:
        raise ValueError(f"range shapes differ: {r_a.shape} vs {r_b.shape}")
    root = np.sqrt(r_a * r_b)
    scales = np.ones_like(r_a)
    np.divide(r_a, root, out=scales, where=root != 0)
    return np.where(r_a + r_b < _SMALL_RANGES, _F32(1), scales).astype(_F32)


def scale_output_channels(weight: np.ndarray, scales: np.ndarray, out_axis: int = 0) -> np.ndarray:
    """W / s per output channel (float32)."""
    w = np.asarray(weight, dtype=_F32)
    shape = [1] * w.ndim
    shape[out_axis] = -1
    return w / np.asarray(scales, dtype=_F32).reshape(shape)


def scale_input_channels(weight: np.ndarray, scales: np.ndarray, groups: int = 1,
                         out_axis: int = 0) -> np.ndarray:
    """W * s per input channel (float32)."""
    w = np.asarray(weight, dtype=_F32)
    factor = np.asarray(scales, dtype=_F32)[_input_factor_index(w, out_axis, groups)]
    return w * factor

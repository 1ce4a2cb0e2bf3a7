"""Cross-layer equalization (CLE) math: per-channel scales that equalize two layers' ranges.

Why: with per-tensor weight quantization, a layer whose output channels have very different
weight ranges wastes most of its grid on the widest channel. When layer 1's output channel i
feeds layer 2's input channel i through a positively homogeneous function f (f(x/s) = f(x)/s
for s > 0: identity, ReLU, LeakyReLU, max/avg pooling), dividing channel i of layer 1 (weight
and bias) by s_i and multiplying input channel i of layer 2 by s_i leaves the float function
unchanged. With r1_i = max|W1[i]| and r2_i = max|W2[:, i]|, the choice
s_i = sqrt(r1_i * r2_i) / r2_i makes both ranges equal to sqrt(r1_i * r2_i) (DFQ, eq. 9).

Weight layouts (torch / neutral IR): layer 1 is (out, in/groups, *kernel) or (out, in) and its
output channels are axis 0; layer 2's input channel c sits at axis 1 index c % (in/groups) of the
output channels of group c // (in/groups) (for a depthwise layer 2, at W2[c, 0]).
"""
from __future__ import annotations

import numpy as np

__all__ = ["equalization_scales", "input_channel_ranges", "output_channel_ranges", "scale_pair"]


def output_channel_ranges(weight: np.ndarray) -> np.ndarray:
    """max|W[o, ...]| per output channel o (axis 0)."""
    w = np.abs(np.asarray(weight, dtype=np.float64))
    return w.reshape(w.shape[0], -1).max(axis=1)


def _group_layout(weight: np.ndarray, groups: int) -> tuple[int, int]:
    out_channels, per_group = weight.shape[0], weight.shape[1]
    if groups < 1 or out_channels % groups:
        raise ValueError(f"groups={groups} does not divide the {out_channels} output channels")
    return out_channels // groups, per_group


def input_channel_ranges(weight: np.ndarray, groups: int = 1) -> np.ndarray:
    """max|W[:, c]| per input channel c of a (grouped) conv or linear weight."""
    w = np.abs(np.asarray(weight, dtype=np.float64))
    out_per_group, per_group = _group_layout(w, groups)
    ranges = np.empty(per_group * groups)
    for c in range(per_group * groups):
        g, k = divmod(c, per_group)
        ranges[c] = w[g * out_per_group:(g + 1) * out_per_group, k].max()
    return ranges


def equalization_scales(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """s_i = sqrt(r1_i * r2_i) / r2_i; 1 where either range is 0 (a dead channel stays as is)."""
    r1 = np.asarray(r1, dtype=np.float64)
    r2 = np.asarray(r2, dtype=np.float64)
    if r1.shape != r2.shape:
        raise ValueError(f"range shapes differ: {r1.shape} vs {r2.shape}")
    scales = np.ones_like(r1)
    live = (r1 > 0) & (r2 > 0) & np.isfinite(r1) & np.isfinite(r2)
    scales[live] = np.sqrt(r1[live] * r2[live]) / r2[live]
    return scales


def scale_pair(w1: np.ndarray, b1: np.ndarray | None, w2: np.ndarray, groups2: int,
               scales: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(W1 / s per output channel, b1 / s, W2 * s per input channel), in the inputs' dtypes."""
    s = np.asarray(scales, dtype=np.float64)
    shape1 = (-1,) + (1,) * (w1.ndim - 1)
    new_w1 = (w1.astype(np.float64) / s.reshape(shape1)).astype(w1.dtype)
    new_b1 = None if b1 is None else (b1.astype(np.float64) / s).astype(b1.dtype)
    out_per_group, per_group = _group_layout(w2, groups2)
    factor = np.ones((w2.shape[0], per_group), dtype=np.float64)
    for c in range(per_group * groups2):
        g, k = divmod(c, per_group)
        factor[g * out_per_group:(g + 1) * out_per_group, k] = s[c]
    factor = factor.reshape(factor.shape + (1,) * (w2.ndim - 2))
    new_w2 = (w2.astype(np.float64) * factor).astype(w2.dtype)
    return new_w1, new_b1, new_w2

"""BatchNorm folding in numpy, as the DPU needs it: inference BatchNorm is an affine map per
channel, so it merges into the preceding conv/linear (or becomes a standalone `scale` op).

For running statistics (mean, var), eps and affine (gamma, beta):
`s = gamma / sqrt(var + eps)`, folded weight `w * s` along the output-channel axis, folded bias
`(b - mean) * s + beta`. Computed in float64, returned as float32 (the model's dtype).
"""
from __future__ import annotations

import numpy as np

__all__ = ["bn_as_scale", "fold_bn"]


def _bn_scale(mean: np.ndarray, var: np.ndarray, eps: float, gamma: np.ndarray | None,
              beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, np.float64)
    var = np.asarray(var, np.float64)
    gamma = np.ones_like(mean) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros_like(mean) if beta is None else np.asarray(beta, np.float64)
    scale = gamma / np.sqrt(var + float(eps))
    return scale, beta - mean * scale


def fold_bn(weight: np.ndarray, bias: np.ndarray | None, out_axis: int, mean: np.ndarray,
            var: np.ndarray, eps: float, gamma: np.ndarray | None,
            beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(folded weight, folded bias) of a conv/linear followed by BatchNorm.

    `out_axis` is the weight's output-channel axis (0 for linear/conv, 1 for a transposed conv
    with groups=1). A missing bias counts as zeros (folding always creates one).
    """
    scale, shift = _bn_scale(mean, var, eps, gamma, beta)
    w = np.asarray(weight, np.float64)
    shape = [1] * w.ndim
    shape[out_axis] = -1
    folded_w = w * scale.reshape(shape)
    b = np.zeros_like(scale) if bias is None else np.asarray(bias, np.float64)
    folded_b = b * scale + shift
    return folded_w.astype(np.float32), folded_b.astype(np.float32)


def bn_as_scale(mean: np.ndarray, var: np.ndarray, eps: float, gamma: np.ndarray | None,
                beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of the `scale` op equal to a standalone BatchNorm: `x * weight + bias`."""
    scale, shift = _bn_scale(mean, var, eps, gamma, beta)
    return scale.astype(np.float32), shift.astype(np.float32)

"""Independent numpy versions of the fix rule and the diffs search, for exact checks.

Written from the spec (reference-rnn-quantizer-torch.md section 1), not from the kernels: the
tests compare the quantizer's fix positions and outputs with these.
"""
from __future__ import annotations

import numpy as np


def np_round(r: np.ndarray, method: str) -> np.ndarray:
    if method == "half_up":  # DPU round: ties toward +inf
        return np.floor(r + 0.5)
    if method == "std_round":  # C round: ties away from zero
        return np.sign(r) * np.floor(np.abs(r) + 0.5)
    raise ValueError(method)


def np_fix(x: np.ndarray, bw: int, fp: int, method: str) -> np.ndarray:
    r = np.asarray(x, np.float64) * 2.0 ** fp
    q = np_round(np.clip(r, -(2 ** (bw - 1)), 2 ** (bw - 1) - 1), method)
    return (q * 2.0 ** -fp).astype(np.float32) + np.float32(0.0)


def np_diffs(x: np.ndarray, bw: int, search_range: int, method: str, cap: int = 12) -> int:
    x = np.asarray(x, np.float32)
    lb, ub = np.float32(-(2 ** (bw - 1)) - 0.5), np.float32(2 ** (bw - 1) - 0.5)
    step = max(x.min() / lb, x.max() / ub)
    max_scale = int(np.floor(np.log2(np.float32(1) / step)))
    best, best_err = max_scale, None
    for fp in range(max_scale, max_scale + search_range):
        err = float(np.sum((x.astype(np.float64) - np_fix(x, bw, fp, method)) ** 2))
        if best_err is None or err < best_err:
            best, best_err = fp, err
    return min(best, cap)


def np_mode(values: list[int]) -> int:
    """Most frequent value, smallest on ties (scipy.stats.mode)."""
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)

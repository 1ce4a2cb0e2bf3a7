"""Straightforward re-statements of the calibration rules, written for the tests only.

They follow the spec text (reference-rnn-quantizer-torch.md §1, and the docstrings of
``nndct_shared.calibration.histogram_selection``) with plain loops and numpy, sharing no code
with the package, so that agreement means the package implements the stated rule.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


def fake_quantize(x: np.ndarray, bit_width: int, fix_pos: int, method: int) -> np.ndarray:
    """The reference's fix neuron for methods 2 (DPU round), 3 (half away) and 4 (floor)."""
    top = 2 ** (bit_width - 1)
    r = np.asarray(x, dtype=np.float64) * 2.0**fix_pos
    if method == 4:
        q = np.clip(np.floor(r), -top, top - 1)
    elif method == 2:
        r = np.clip(r, -top, top - 1)
        q = np.floor(r + 0.5)  # every tie goes up
    elif method == 3:
        r = np.clip(r, -top, top - 1)
        q = np.sign(r) * np.floor(np.abs(r) + 0.5)
    else:
        raise ValueError(method)
    return q / 2.0**fix_pos


def diffs_fix_pos(x, bit_width, search_range=5, method=2, cap=12):
    """Reference diffs: start at max_scale, keep the first smallest squared error, cap."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    lb = -(2 ** (bit_width - 1)) - 0.5
    ub = 2 ** (bit_width - 1) - 0.5
    step = max(x.min() / lb, x.max() / ub)
    max_scale = math.floor(math.log2(1.0 / step))
    best, best_error = None, None
    for fp in range(max_scale, max_scale + search_range):
        error = float(np.sum((x - fake_quantize(x, bit_width, fp, method)) ** 2))
        if best_error is None or error < best_error:
            best, best_error = fp, error
    return best if cap is None else min(best, cap)


def maxmin_fix_pos(low: float, high: float, bit_width: int, cap=12) -> int:
    lb = -(2 ** (bit_width - 1)) - 0.5
    ub = 2 ** (bit_width - 1) - 0.5
    fp = math.floor(math.log2(1.0 / max(low / lb, high / ub)))
    return fp if cap is None else min(fp, cap)


def modal(values) -> int:
    return int(stats.mode(np.asarray(values), keepdims=False).mode)


def abs_histogram(x: np.ndarray, num_bins: int) -> tuple[np.ndarray, float]:
    """Counts over [0, R), R the smallest power of two above max|x|, bin = floor(|x|*N/R)."""
    a = np.abs(np.asarray(x, dtype=np.float64).reshape(-1))
    exponent = 0
    while 2.0**exponent <= a.max():
        exponent += 1
    while 2.0 ** (exponent - 1) > a.max():
        exponent -= 1
    r = 2.0**exponent
    bins = np.floor(a * num_bins / r).astype(np.int64)
    return np.bincount(bins, minlength=num_bins), r


def fits(magnitude: float, bit_width: int) -> int:
    """Largest fp with magnitude * 2^fp <= 2^(bw-1) - 0.5, by counting."""
    bound = 2 ** (bit_width - 1) - 0.5
    fp = -200
    while magnitude * 2.0 ** (fp + 1) <= bound:
        fp += 1
    return fp


def percentile_fix_pos(counts, r, percentage, bit_width, cap=12) -> int:
    total = counts.sum()
    running = 0
    for i, c in enumerate(counts):
        running += c
        if running * 100 >= percentage * total:
            break
    fp = fits((i + 1) * r / len(counts), bit_width)
    return min(fp, cap)


def kl_divergences(counts, r, bit_width, cap=12, eps=1e-4) -> dict[int, float]:
    """TensorRT-style: P = first n bins + outliers in the last, Q = n bins merged to L levels."""
    n_total = len(counts)
    levels = 2 ** (bit_width - 1)
    result = {}
    for fp in range(-60, 60):
        if fp > cap:
            break
        clip = levels * 2.0**-fp
        n = clip / (r / n_total)
        if n > n_total or n < levels or n != int(n) or int(n) % levels:
            continue
        n = int(n)
        p = [float(c) for c in counts[:n]]
        p[-1] += float(sum(counts[n:]))
        group = n // levels
        q = [0.0] * n
        for level in range(levels):
            members = range(level * group, (level + 1) * group)
            mass = sum(float(counts[j]) for j in members)
            nonzero = [j for j in members if p[j] != 0]
            for j in nonzero:
                q[j] = mass / len(nonzero)
        if sum(q) == 0:
            result[fp] = math.inf
            continue
        q = np.array(q) / sum(q)
        empty = q == 0
        if empty.any():
            q = np.where(empty, eps / empty.sum(), q * (1 - eps))
        result[fp] = float(stats.entropy(np.array(p), q))
    return result


def quantization_mse(x: np.ndarray, bit_width: int, fix_pos: int) -> float:
    """Mean squared error of round-to-nearest quantization of the raw data."""
    return float(np.mean((x - fake_quantize(x, bit_width, fix_pos, 3)) ** 2))

"""Independent reference models of the fixed-point kernels, written from the spec.

Two flavours, both sharing no code with nndct_shared.kernels:
* exact scalar models with fractions.Fraction (rounding of an exact rational, no floating point);
* vectorized NumPy models structured differently from the C++ code ("nearest unless tie, then the
  method's tie rule"), for large random arrays.
Method codes: 2 dpu (ties up), 3 std (ties away), 4 floor, 5 old_rnn, 6 half_down, 7 ceil,
8 half_even.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

ALL_METHODS = (2, 3, 4, 5, 6, 7, 8)
METHOD_NAME_TO_CODE = {
    "dpu_round": 2, "half_up": 2, "std_round": 3, "floor": 4, "old_rnn": 5,
    "half_down": 6, "ceil": 7, "half_even": 8, "py3_round": 8,
}
HALF = Fraction(1, 2)


def qrange(bw: int) -> tuple[int, int]:
    return -(2 ** (bw - 1)), 2 ** (bw - 1) - 1


def exact_code(x: float, bw: int, fp: int, method: int) -> int | None:
    """The code of x (None for NaN), by exact rational arithmetic."""
    lo, hi = qrange(bw)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return hi if x > 0 else lo
    r = Fraction(x) * Fraction(2) ** fp
    fl = math.floor(r)
    d = r - fl
    if method == 4:
        q = fl
    elif method == 7:
        q = math.ceil(r)
    elif d < HALF:
        q = fl
    elif d > HALF:
        q = fl + 1
    elif method == 2:
        q = fl + 1
    elif method == 3:
        q = fl + 1 if r > 0 else fl
    elif method == 6:
        q = fl if r > 0 else fl + 1
    elif method == 8:
        q = fl if fl % 2 == 0 else fl + 1
    elif method == 5:
        q = fl + 1 if r < 0 else (fl if fl % 2 == 0 else fl + 1)
    else:
        raise ValueError(method)
    return min(max(q, lo), hi)


def exact_value(x: float, bw: int, fp: int, method: int, dtype) -> float:
    """fix_neuron of one value: code * 2^-fp rounded once to dtype (NaN for NaN)."""
    q = exact_code(x, bw, fp, method)
    if q is None:
        return float("nan")
    v = float(Fraction(q) * Fraction(2) ** (-fp))  # exact: |q| <= 2^31 and |fp| <= 126
    with np.errstate(over="ignore"):  # float32 overflows to inf, as IEEE conversion does
        return float(np.float64(v).astype(dtype))


def np_codes(x: np.ndarray, bw: int, fp: int, method: int) -> np.ndarray:
    """Codes as float64 (NaN for NaN). Requires x * 2^fp not to underflow (true for float32)."""
    r = np.ldexp(x.astype(np.float64), fp)
    nearest = np.rint(r)
    with np.errstate(invalid="ignore"):
        tie = (r - np.floor(r)) == 0.5
    if method == 4:
        q = np.floor(r)
    elif method == 7:
        q = np.ceil(r)
    else:
        tie_value = {
            2: np.ceil(r),
            3: np.sign(r) * np.ceil(np.abs(r)),
            6: np.sign(r) * np.floor(np.abs(r)),
            8: nearest,
            5: np.where(r < 0, np.ceil(r), nearest),
        }[method]
        q = np.where(tie, tie_value, nearest)
    lo, hi = qrange(bw)
    return np.clip(q, lo, hi)


def np_fix_neuron(x: np.ndarray, bw: int, fp: int, method: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.ldexp(np_codes(x, bw, fp, method), -fp).astype(x.dtype)


def np_fix_codes(x: np.ndarray, bw: int, fp: int, method: int) -> np.ndarray:
    q = np_codes(x, bw, fp, method)
    return np.where(np.isnan(q), 0, q).astype(np.int64)


def np_diffs_fix_pos(x: np.ndarray, bw: int, search_range: int = 5, method: int = 2,
                     max_fix_pos: int | None = 12) -> int:
    """The spec's diffs search: step/max_scale in x's dtype, error in float64 over finite values."""
    dt = x.dtype.type
    fin = x[np.isfinite(x)]
    lb = dt(-(2.0 ** (bw - 1)) - 0.5)
    ub = dt(2.0 ** (bw - 1) - 0.5)
    step = max(dt(fin.min() / lb), dt(fin.max() / ub))
    if step < 2.0**-126:
        return max_fix_pos if max_fix_pos is not None else 18
    max_scale = int(np.floor(np.log2(dt(1) / step)))
    if search_range == 1:
        best = max_scale
    else:
        errors = []
        for fp in range(max_scale, max_scale + search_range):
            fq = np_fix_neuron(fin, bw, fp, method)
            errors.append(math.fsum(((fin.astype(np.float64) - fq.astype(np.float64)) ** 2).tolist()))
        best = max_scale + int(np.argmin(errors))  # argmin returns the first minimum
    return best if max_fix_pos is None else min(best, max_fix_pos)


def np_histogram(values: np.ndarray, num_bins: int) -> tuple[np.ndarray, int | None]:
    """(counts, exponent) of |values| over finite values, range [0, 2^e) from the max."""
    a = np.abs(values[np.isfinite(values)].astype(np.float64))
    counts = np.zeros(num_bins, dtype=np.int64)
    if a.size == 0:
        return counts, None
    m = float(a.max())
    if m == 0.0:
        counts[0] = a.size
        return counts, None
    e = math.frexp(m)[1]
    bins = np.floor(np.ldexp(a, -e) * num_bins).astype(np.int64)
    np.add.at(counts, bins, 1)
    return counts, e


def sigmoid_table_ref() -> np.ndarray:
    return np.array([math.floor(32768.0 / (1.0 + math.exp(-(i - 1024) / 128.0)) + 0.5) for i in range(2048)])


def tanh_table_ref() -> np.ndarray:
    def round_half_away(v: float) -> int:
        return int(math.copysign(math.floor(abs(v) + 0.5), v))

    return np.array([round_half_away(32768.0 * math.tanh((i - 1024) / 256.0)) for i in range(2048)])

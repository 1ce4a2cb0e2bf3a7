"""The numbers of the report: SQNR, clipped and flushed shares, ranges, output error.

Definitions (the README and the HTML report repeat them):

- SQNR (dB) of a quantized tensor q against its reference r: 10 log10(sum r^2 / sum (q - r)^2).
  Exact agreement is +inf, written "inf" in quant_report.json (and "-inf" for a reference that
  is all zero while q is not), so `float(value)` reads every entry.
- clipped share: the share of values whose code, before the clamp, lies outside the grid's
  [qmin, qmax] (floor rounding: value >= (qmax + 1) step or < qmin step; nearest rounding: half
  a step further), i.e. values the code limits cut off.
- flushed share: the share of values that are not zero but quantize to zero.
- output error: the relative squared error of the model outputs, sum (y - y_float)^2 /
  sum y_float^2 (output SQNR = -10 log10 of it).

`TensorStats` accumulates these over calls and time steps without keeping the data.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .quant import FLOOR, TensorQuant

__all__ = ["TensorStats", "db", "json_number", "output_error", "sqnr_db"]


def db(signal: float, noise: float) -> float:
    """10 log10(signal / noise), +inf for no noise, -inf for noise without signal."""
    if noise <= 0.0:
        return math.inf
    if signal <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float:
    """SQNR (dB) of `quantized` against `reference` (see the module docstring)."""
    r = np.asarray(reference, dtype=np.float64)
    q = np.asarray(quantized, dtype=np.float64)
    return db(float(np.sum(r * r)), float(np.sum((q - r) ** 2)))


def output_error(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Relative squared error of `outputs` against `reference` over all output arrays."""
    num = den = 0.0
    for r, y in zip(reference, outputs):
        r64, y64 = np.asarray(r, dtype=np.float64), np.asarray(y, dtype=np.float64)
        num += float(np.sum((y64 - r64) ** 2))
        den += float(np.sum(r64 * r64))
    if num == 0.0:
        return 0.0
    return num / den if den > 0 else math.inf


def json_number(value: float | None) -> Any:
    """A float for JSON: infinities become the strings "inf" / "-inf", NaN becomes None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def clipped_mask(pre: np.ndarray, quant: TensorQuant) -> np.ndarray:
    """Values whose unclamped code lies outside [qmin, qmax]."""
    scaled = pre / quant.steps(pre.shape) + quant.zero_point
    if quant.rounding == FLOOR:
        return (scaled >= quant.qmax + 1) | (scaled < quant.qmin)
    return (scaled >= quant.qmax + 0.5) | (scaled < quant.qmin - 0.5)


class TensorStats:
    """Running statistics of one tensor: its float reference, the value before and after its
    quantization in the quantized model, over any number of calls."""

    def __init__(self) -> None:
        self.count = 0
        self.clipped = 0
        self.flushed = 0
        self.float_min = math.inf
        self.float_max = -math.inf
        self.signal = 0.0
        self.noise = 0.0
        self.local_signal = 0.0
        self.local_noise = 0.0

    def add(self, reference: np.ndarray, pre: np.ndarray, post: np.ndarray, quant: TensorQuant) -> None:
        """`reference`: the float model's values; `pre`/`post`: the quantized model's values
        before and after this tensor's quantization (same shape)."""
        r = np.asarray(reference, dtype=np.float64)
        a = np.asarray(pre, dtype=np.float64)
        q = np.asarray(post, dtype=np.float64)
        if r.size == 0:
            return
        self.count += r.size
        self.clipped += int(np.count_nonzero(clipped_mask(a, quant)))
        self.flushed += int(np.count_nonzero((a != 0) & (q == 0)))
        self.float_min = min(self.float_min, float(r.min()))
        self.float_max = max(self.float_max, float(r.max()))
        self.signal += float(np.sum(r * r))
        self.noise += float(np.sum((q - r) ** 2))
        self.local_signal += float(np.sum(a * a))
        self.local_noise += float(np.sum((q - a) ** 2))

    @property
    def sqnr_db(self) -> float:
        """Quantized model's values against the float model's."""
        return db(self.signal, self.noise)

    @property
    def local_sqnr_db(self) -> float:
        """This tensor's own rounding and clipping: after against before its quantization."""
        return db(self.local_signal, self.local_noise)

    def to_json(self) -> dict[str, Any]:
        n = max(self.count, 1)
        return {
            "values": self.count,
            "float_min": json_number(self.float_min if self.count else None),
            "float_max": json_number(self.float_max if self.count else None),
            "clipped_share": self.clipped / n,
            "flushed_share": self.flushed / n,
            "sqnr_db": json_number(self.sqnr_db),
            "local_sqnr_db": json_number(self.local_sqnr_db),
        }

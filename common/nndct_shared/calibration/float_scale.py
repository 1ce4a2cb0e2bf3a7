"""Float-scale (and asymmetric / unsigned / narrow-range) quantization: the neutral math.

A tensor with ``scale_type: "float"`` in the JSON config is quantized per tensor as

    q  = clamp(round(x / scale) + zero_point, qmin, qmax)
    x' = (q - zero_point) * scale

in float64 (then cast back to the tensor's dtype; -0.0 becomes +0.0, NaN stays NaN and +-inf
saturate, as for the power-of-two fix op), where

- ``qmin, qmax`` come from the bit width b, ``signed`` and ``narrow_range``: signed
  [-2^(b-1), 2^(b-1)-1], unsigned [0, 2^b-1]; ``narrow_range`` drops the most negative code
  (the usual TensorFlow definition): signed [-2^(b-1)+1, 2^(b-1)-1], unsigned [1, 2^b-1];
- ``round`` is the config's round_mode (std_round: ties away from zero, half_up: ties toward
  +inf, half_even, half_down: ties toward zero, floor) applied to ``x / scale``;
- ``symmetry: true``: zero_point = 0. Signed: scale = max(|min|, |max|) / qmax (so the largest
  magnitude is exactly a code; without narrow_range the extra code qmin is simply rarely hit).
  Unsigned: scale = max / qmax, the grid covers [0, max] and negative values clamp to 0.
  Unsigned + symmetric + narrow_range has no code for 0.0 and is refused here (the config
  checks reject narrow_range with signed=false anyway, QUANT_CONFIG_CONFLICT);
- ``symmetry: false``: the range [lo, hi] is first widened to contain 0.0, then
  scale = (hi - lo) / (qmax - qmin) and zero_point = qmin - round_half_even(lo / scale), clamped
  to [qmin, qmax]: an integer code, so 0.0 is exactly representable (x = 0 -> q = zero_point).

Scales are rounded to float32 (every front end and ONNX then use the same value); a tensor with
no range (all zero) gets scale 1.0. The calibration ranges (``FloatRangeObserver``):

- ``maxmin``: the per-call min and max, combined over calls by calib_statistic_method: ``max``
  = the overall extremes; ``mean`` / ``median`` = the mean / median of the per-call minima and
  maxima; ``modal`` (a mode of continuous values means nothing) falls back to the overall
  extremes (the config checks reject modal with float scales for activations and inputs; a
  param is observed once, where every statistic gives its extremes). The extremes and the
  means are streaming and exact (the means' sums are ``ExactSum``s, rounded once, so any order
  or split of the calls gives the same bits); the median needs every per-call value and keeps
  them (8 bytes per call and side), the only float-scale statistic whose memory grows;
- ``percentile``: the clipping magnitude p of the percentile observer (a histogram of |x| over
  all calls, ``percentage``), the range is [max(min, -p), min(max, p)];
- ``mse``, ``entropy`` with float scales are not implemented (the CNN flow raises
  NotImplementedError naming the combination); ``diffs`` searches power-of-two positions and
  is rejected with float scales by the config checks (QUANT_CONFIG_CONFLICT).
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndct_shared import kernels

from .exact_sum import ExactSum
from .histogram_selection import percentile_magnitude
from .observer import Observer, check_bit_width
from .screening import CalibrationError

__all__ = [
    "FloatQParams",
    "FloatQuantSpec",
    "FloatRangeObserver",
    "FLOAT_STATISTICS",
    "fake_quant_float_numpy",
    "qparams_from_range",
    "quant_range",
    "round_numpy",
]

FLOAT_STATISTICS = ("max", "mean", "median", "modal")
_ROUND_NAMES = ("std_round", "half_up", "half_even", "half_down", "floor")


def quant_range(bit_width: int, signed: bool, narrow_range: bool) -> tuple[int, int]:
    """(qmin, qmax) of the integer grid (see the module docstring)."""
    if signed:
        qmin, qmax = -(2 ** (bit_width - 1)), 2 ** (bit_width - 1) - 1
    else:
        qmin, qmax = 0, 2 ** bit_width - 1
    return (qmin + 1 if narrow_range else qmin), qmax


@dataclass(frozen=True)
class FloatQuantSpec:
    """The grid of one float-scale tensor: bit width, signedness, narrow range, symmetry."""

    bit_width: int
    signed: bool = True
    narrow_range: bool = False
    symmetric: bool = True

    def __post_init__(self) -> None:
        check_bit_width(self.bit_width)
        if self.symmetric and not self.signed and self.narrow_range:
            raise CalibrationError("unsigned symmetric narrow-range grids have no code for 0.0 "
                                   "(zero_point 0 is below qmin 1); not implemented.")

    @property
    def qmin(self) -> int:
        return quant_range(self.bit_width, self.signed, self.narrow_range)[0]

    @property
    def qmax(self) -> int:
        return quant_range(self.bit_width, self.signed, self.narrow_range)[1]


@dataclass(frozen=True)
class FloatQParams:
    """Calibration result of a float-scale tensor: a positive float32 scale and an int zero point."""

    scale: float
    zero_point: int


def qparams_from_range(lo: float, hi: float, spec: FloatQuantSpec) -> FloatQParams:
    """Scale and zero point of the range [lo, hi] (see the module docstring)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmin, qmax = spec.qmin, spec.qmax
    if spec.symmetric:
        top = max(-lo, hi) if spec.signed else hi
        scale = top / qmax
    else:
        scale = (hi - lo) / (qmax - qmin)
    scale = float(np.float32(scale))
    tiny = float(np.finfo(np.float32).tiny)
    if not np.isfinite(scale):
        scale = float(np.finfo(np.float32).max)
    elif scale < tiny:
        scale = 1.0 if scale == 0.0 and (hi - lo == 0.0 or spec.symmetric) else tiny
    if spec.symmetric:
        return FloatQParams(scale, 0)
    zero_point = qmin - int(np.round(lo / scale))
    return FloatQParams(scale, int(min(max(zero_point, qmin), qmax)))


def round_numpy(r: np.ndarray, method: str) -> np.ndarray:
    """Round float64 ``r`` by a round_mode name (see the module docstring)."""
    if method == "std_round":
        return np.sign(r) * np.floor(np.abs(r) + 0.5)
    if method == "half_up":
        return np.floor(r + 0.5)
    if method == "half_even":
        return np.round(r)
    if method == "half_down":
        return np.sign(r) * np.ceil(np.abs(r) - 0.5)
    if method == "floor":
        return np.floor(r)
    raise ValueError(f"round method {method!r} is not one of {', '.join(_ROUND_NAMES)}")


def fake_quant_float_numpy(x: Any, spec: FloatQuantSpec, qparams: FloatQParams,
                           round_method: str) -> np.ndarray:
    """The reference fake quantization of the module docstring, in x's float dtype."""
    array = np.asarray(x)
    dtype = array.dtype if array.dtype.kind == "f" else np.dtype(np.float32)
    with np.errstate(invalid="ignore"):
        r = array.astype(np.float64) / qparams.scale
        q = np.clip(round_numpy(r, round_method) + qparams.zero_point, spec.qmin, spec.qmax)
        out = (q - qparams.zero_point) * qparams.scale
    return (out + 0.0).astype(dtype)


class FloatRangeObserver(Observer):
    """Calibrates a float-scale tensor: ``fix_pos`` is its ``FloatQParams`` (None before any call).

    The attribute keeps the observers' common name so that the runtime, bias correction and
    fast finetune treat both kinds of result alike. ``percentage=None``: maxmin with
    ``statistic``; a number: the percentile range (``statistic`` unused).
    """

    kind = "FloatRangeObserver"

    def __init__(self, bit_width: int = 8, signed: bool = True, narrow_range: bool = False,
                 symmetric: bool = True, statistic: str = "max", percentage: float | None = None,
                 num_bins: int = 2048, name: str | None = None) -> None:
        super().__init__(bit_width, None, name)
        self.spec = FloatQuantSpec(self.bit_width, bool(signed), bool(narrow_range), bool(symmetric))
        if statistic not in FLOAT_STATISTICS:
            raise CalibrationError(f"statistic must be one of {', '.join(FLOAT_STATISTICS)}, got "
                                   f"{statistic!r}.")
        if percentage is not None and (isinstance(percentage, bool) or not isinstance(
                percentage, (int, float)) or not 0 < percentage <= 100):
            raise CalibrationError(f"percentage must be a number in (0, 100], got {percentage!r}.")
        self.statistic = statistic
        self.percentage = None if percentage is None else float(percentage)
        self.num_bins = int(num_bins)
        self.calls = 0
        self.low: float | None = None  # overall extremes
        self.high: float | None = None
        self.min_sum, self.max_sum = ExactSum(), ExactSum()  # for the means
        keep = self.percentage is None and statistic == "median"
        self.mins: array | None = array("d") if keep else None  # per-call values, median only
        self.maxs: array | None = array("d") if keep else None
        self.histogram = kernels.AbsHistogram(self.num_bins) if self.percentage is not None else None

    def _add_call(self, low: float, high: float) -> None:
        self.calls += 1
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        self.min_sum.add(low)
        self.max_sum.add(high)
        if self.mins is not None:
            self.mins.append(low)
            self.maxs.append(high)

    def _observe_array(self, array: np.ndarray) -> None:
        self._add_call(float(array.min()), float(array.max()))
        if self.histogram is not None:
            self.histogram.update(array)

    def range(self) -> tuple[float, float] | None:
        """The calibrated [lo, hi] (before widening to 0.0), or None before any call."""
        if not self.calls:
            return None
        if self.percentage is not None:
            p = percentile_magnitude(np.asarray(self.histogram.counts),
                                     float(self.histogram.range_max), self.percentage)
            return max(self.low, -p), min(self.high, p)
        if self.statistic == "mean":
            return self.min_sum.value() / self.calls, self.max_sum.value() / self.calls
        if self.statistic == "median":
            return float(np.median(self.mins)), float(np.median(self.maxs))
        return self.low, self.high  # max, and modal's fallback

    @property
    def fix_pos(self) -> FloatQParams | None:
        bounds = self.range()
        return None if bounds is None else qparams_from_range(bounds[0], bounds[1], self.spec)

    def _config(self) -> dict[str, Any]:
        return {"bit_width": self.bit_width, "signed": self.spec.signed,
                "narrow_range": self.spec.narrow_range, "symmetric": self.spec.symmetric,
                "statistic": self.statistic, "percentage": self.percentage, "num_bins": self.num_bins}

    def _merge_data(self, other: FloatRangeObserver) -> None:
        if other.calls:
            self.calls += other.calls
            self.low = other.low if self.low is None else min(self.low, other.low)
            self.high = other.high if self.high is None else max(self.high, other.high)
            self.min_sum.merge(other.min_sum)
            self.max_sum.merge(other.max_sum)
        if self.mins is not None:
            self.mins.extend(other.mins)
            self.maxs.extend(other.maxs)
        if self.histogram is not None:
            self.histogram.merge(other.histogram)

    def _data_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"calls": self.calls, "low": self.low, "high": self.high,
                                 "min_sum": self.min_sum.to_state(), "max_sum": self.max_sum.to_state()}
        if self.mins is not None:
            state["mins"], state["maxs"] = self.mins.tolist(), self.maxs.tolist()
        if self.histogram is not None:
            hist = self.histogram.to_state()
            state["histogram"] = {**hist, "counts": np.asarray(hist["counts"]).tolist()}
        return state

    def _load_data_state(self, data: dict[str, Any]) -> None:
        self.calls = int(data["calls"])
        self.low = None if data["low"] is None else float(data["low"])
        self.high = None if data["high"] is None else float(data["high"])
        self.min_sum = ExactSum.from_state(data["min_sum"])
        self.max_sum = ExactSum.from_state(data["max_sum"])
        if self.mins is not None:
            self.mins, self.maxs = array("d", data["mins"]), array("d", data["maxs"])
        if self.histogram is not None:
            self.histogram = kernels.AbsHistogram.from_state(data["histogram"])

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
no range (all zero) gets scale 1.0. The calibration ranges (``FloatRangeObserver``): every call
gives one range, [min, max] for ``maxmin``, clipped to a magnitude chosen on the call's
histogram for ``percentile`` (the ``percentage``-th percentile of |x|), ``mse`` (smallest
expected squared error on the grid) and ``entropy`` (smallest KL divergence); the per-call
ranges are combined by calib_statistic_method (``max``: the widest; ``mean`` / ``median`` of
the per-call bounds; ``modal``, which a mode of continuous values cannot mean, falls back to
``max``, and the config checks reject it for these methods on activations and inputs).
The extremes and the means are streaming and exact (the means' sums are ``ExactSum``s, rounded
once, so any order or split of the calls gives the same bits: calibration on several processes
merges them exactly); the median needs every per-call value and keeps them (8 bytes per call and
side), the only float-scale statistic whose memory grows.
``mse`` and ``entropy`` need a symmetric grid (the guide's conflict); ``diffs`` searches
power-of-two positions and is rejected with float scales by the config checks
(QUANT_CONFIG_CONFLICT). Per-channel float scales (weights) are one such observer per output
channel (``per_channel.PerChannelObserver``).
"""
from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from nndct_shared import kernels

from .exact_sum import ExactSum
from .histogram_observers import nonzero_for
from .histogram_selection import (percentile_magnitude, select_float_entropy_clip,
                                  select_float_mse_clip)
from .observer import Observer, check_bit_width
from .screening import CalibrationError

__all__ = [
    "FLOAT_METHODS",
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


def covering_power_of_two(scale: float, max_fix_pos: int | None = None) -> float:
    """The smallest power of two >= `scale` (> 0), and at least 2^-max_fix_pos."""
    mantissa, exponent = math.frexp(scale)
    fix_pos = -(exponent - 1) if mantissa == 0.5 else -exponent
    if max_fix_pos is not None:
        fix_pos = min(fix_pos, max_fix_pos)
    return math.ldexp(1.0, -fix_pos)


def qparams_from_range(lo: float, hi: float, spec: FloatQuantSpec, power_of_two: bool = False,
                       max_fix_pos: int | None = None) -> FloatQParams:
    """Scale and zero point of the range [lo, hi] (see the module docstring). `power_of_two`:
    the scale is the smallest power of two that covers it (at most fix position `max_fix_pos`),
    for power-of-two grids that are asymmetric or unsigned."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    qmin, qmax = spec.qmin, spec.qmax
    if spec.symmetric:
        top = max(-lo, hi) if spec.signed else hi
        scale = top / qmax
    else:
        scale = (hi - lo) / (qmax - qmin)
    if power_of_two and scale > 0 and math.isfinite(scale):
        scale = covering_power_of_two(scale, max_fix_pos)
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


#: Methods of `FloatRangeObserver`: the per-call range is [min, max] (maxmin), or [min, max]
#: clipped to a magnitude T chosen on the call's histogram (percentile, mse, entropy), or to the
#: power-of-two grid with the smallest squared error (diffs, power-of-two grids only).
FLOAT_METHODS = ("maxmin", "percentile", "mse", "entropy", "diffs")


class FloatRangeObserver(Observer):
    """Calibrates a float-scale tensor: ``fix_pos`` is its ``FloatQParams`` (None before any call).

    The attribute keeps the observers' common name so that the runtime, bias correction and
    fast finetune treat both kinds of result alike. Every call gives one range [lo, hi]:

    - ``maxmin``: the call's [min, max];
    - ``percentile``, ``mse``, ``entropy``: a histogram of the call's magnitudes (|x|, or x
      clamped at 0 for an unsigned symmetric grid, where negative values all become 0 anyway)
      gives a clip magnitude T, by the ``percentage``-th percentile, the smallest expected
      squared error on the grid of step T/qmax, or the smallest KL divergence
      (``histogram_selection.select_float_mse_clip`` / ``select_float_entropy_clip``; exact
      zeros left out, ``histogram_observers.nonzero_for``); the range is
      [max(min, -T), min(max, T)].

    ``statistic`` combines the per-call ranges: ``max`` the widest (smallest lo, largest hi),
    ``mean`` / ``median`` those of the per-call lo and hi; ``modal`` falls back to ``max`` (the
    config rejects modal for these methods on input and activation tensors; a param is
    observed once, where every statistic gives its one range).

    ``power_of_two=True`` is for power-of-two grids with a zero point or unsigned codes
    (``scale_type: "poweroftwo"`` with ``symmetry: false`` or ``signed: false``): the scale is
    the smallest power of two covering the range's (``qparams_from_range``), at most fix
    position ``max_fix_pos``, and ``diffs`` is available: each call tries the ``search_range``
    power-of-two scales from the one covering its [min, max] downwards (the zero point placed
    for each), keeps the one with the smallest squared error of fake quantization (``round``
    mode), and contributes that grid's range clipped to [min, max].
    """

    kind = "FloatRangeObserver"

    def __init__(self, bit_width: int = 8, signed: bool = True, narrow_range: bool = False,
                 symmetric: bool = True, statistic: str = "max", percentage: float | None = None,
                 num_bins: int = 2048, name: str | None = None, method: str | None = None,
                 power_of_two: bool = False, max_fix_pos: int | None = None, search_range: int = 5,
                 round_method: str = "half_even") -> None:
        super().__init__(bit_width, max_fix_pos if power_of_two else None, name)
        self.spec = FloatQuantSpec(self.bit_width, bool(signed), bool(narrow_range), bool(symmetric))
        if statistic not in FLOAT_STATISTICS:
            raise CalibrationError(f"statistic must be one of {', '.join(FLOAT_STATISTICS)}, got "
                                   f"{statistic!r}.")
        if method is None:
            method = "maxmin" if percentage is None else "percentile"
        if method not in FLOAT_METHODS:
            raise CalibrationError(f"method must be one of {', '.join(FLOAT_METHODS)}, got {method!r}.")
        if method == "percentile" and percentage is None:
            raise CalibrationError("method 'percentile' needs a percentage.")
        if percentage is not None and (isinstance(percentage, bool) or not isinstance(
                percentage, (int, float)) or not 0 < percentage <= 100):
            raise CalibrationError(f"percentage must be a number in (0, 100], got {percentage!r}.")
        if method in ("mse", "entropy") and not self.spec.symmetric:
            raise CalibrationError(f"method '{method}' needs a symmetric grid (the guide: mse and "
                                   "entropy are not supported with asymmetric quantization).")
        if method == "diffs" and not power_of_two:
            raise CalibrationError("method 'diffs' searches power-of-two scales: it needs "
                                   "power_of_two=True.")
        if round_method not in _ROUND_NAMES:
            raise CalibrationError(f"round_method must be one of {', '.join(_ROUND_NAMES)}, got "
                                   f"{round_method!r}.")
        self.power_of_two = bool(power_of_two)
        self.search_range = int(search_range)
        self.round_method = round_method
        self.method = method
        self.statistic = statistic
        self.percentage = None if percentage is None or method != "percentile" else float(percentage)
        self.num_bins = int(num_bins)
        self.calls = 0
        self.low: float | None = None  # the widest per-call bounds
        self.high: float | None = None
        self.min_sum, self.max_sum = ExactSum(), ExactSum()  # for the means
        keep = statistic == "median"
        self.mins: array | None = array("d") if keep else None  # per-call values, median only
        self.maxs: array | None = array("d") if keep else None

    def _clip_magnitude(self, array: np.ndarray) -> float:
        """T of one call (see the class docstring)."""
        spec = self.spec
        values = np.maximum(array, 0) if (spec.symmetric and not spec.signed) else array
        values = nonzero_for(self.method, values)
        if values.size == 0:
            return 0.0
        levels = 2 ** (spec.bit_width - (1 if spec.signed else 0))  # magnitude levels of the grid
        bins = self.num_bins
        if self.method == "entropy":
            while bins < 2 * levels:
                bins *= 2
        histogram = kernels.AbsHistogram(bins)
        histogram.update(np.ascontiguousarray(values))
        counts, range_max = np.asarray(histogram.counts), float(histogram.range_max)
        if range_max <= 0.0:  # all values 0 (an unsigned grid's call with no positive value)
            return 0.0
        if self.method == "percentile":
            return percentile_magnitude(counts, range_max, self.percentage)
        if self.method == "mse":
            return select_float_mse_clip(counts, range_max, spec.qmax)
        return select_float_entropy_clip(counts, range_max, levels)

    def _qparams(self, lo: float, hi: float) -> FloatQParams:
        return qparams_from_range(lo, hi, self.spec, self.power_of_two, self.max_fix_pos)

    def _diffs_range(self, array: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
        """The range of the call's best power-of-two grid (see the class docstring)."""
        spec, best = self.spec, None
        scale = self._qparams(lo, hi).scale
        for _ in range(max(self.search_range, 1)):
            qp = self._grid_at(scale, lo)
            error = float(np.sum((fake_quant_float_numpy(array, spec, qp, self.round_method)
                                  .astype(np.float64) - array) ** 2))
            if best is None or error < best[0]:
                best = (error, qp)
            scale /= 2.0
            if self.max_fix_pos is not None and scale < math.ldexp(1.0, -self.max_fix_pos):
                break
        qp = best[1]
        return max(lo, (spec.qmin - qp.zero_point) * qp.scale), min(hi, (spec.qmax - qp.zero_point) * qp.scale)

    def _grid_at(self, scale: float, lo: float) -> FloatQParams:
        """The grid of this spec at a given scale (zero point placed for [lo, ...])."""
        spec = self.spec
        if spec.symmetric:
            return FloatQParams(scale, 0)
        zero_point = spec.qmin - int(np.round(min(lo, 0.0) / scale))
        return FloatQParams(scale, int(min(max(zero_point, spec.qmin), spec.qmax)))

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
        lo, hi = float(array.min()), float(array.max())
        if self.method == "diffs":
            lo, hi = self._diffs_range(array, lo, hi)
        elif self.method != "maxmin":
            clip = self._clip_magnitude(array)
            lo, hi = max(lo, -clip), min(hi, clip)
        self._add_call(lo, hi)

    def range(self) -> tuple[float, float] | None:
        """The calibrated [lo, hi] (before widening to 0.0), or None before any call."""
        if not self.calls:
            return None
        if self.statistic == "mean":
            return self.min_sum.value() / self.calls, self.max_sum.value() / self.calls
        if self.statistic == "median":
            return float(np.median(self.mins)), float(np.median(self.maxs))
        return self.low, self.high  # max, and modal's fallback

    def no_range_result(self) -> FloatQParams:
        """All zeros: scale 1.0 and zero point 0 (see `qparams_from_range`)."""
        return self._qparams(0.0, 0.0)

    @property
    def fix_pos(self) -> FloatQParams | None:
        bounds = self.range()
        return None if bounds is None else self._qparams(bounds[0], bounds[1])

    def _config(self) -> dict[str, Any]:
        return {"bit_width": self.bit_width, "signed": self.spec.signed,
                "narrow_range": self.spec.narrow_range, "symmetric": self.spec.symmetric,
                "statistic": self.statistic, "percentage": self.percentage, "num_bins": self.num_bins,
                "method": self.method, "power_of_two": self.power_of_two, "max_fix_pos": self.max_fix_pos,
                "search_range": self.search_range, "round_method": self.round_method}

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

    def _data_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"calls": self.calls, "low": self.low, "high": self.high,
                                 "min_sum": self.min_sum.to_state(), "max_sum": self.max_sum.to_state()}
        if self.mins is not None:
            state["mins"], state["maxs"] = self.mins.tolist(), self.maxs.tolist()
        return state

    def _load_data_state(self, data: dict[str, Any]) -> None:
        self.calls = int(data["calls"])
        self.low = None if data["low"] is None else float(data["low"])
        self.high = None if data["high"] is None else float(data["high"])
        self.min_sum = ExactSum.from_state(data["min_sum"])
        self.max_sum = ExactSum.from_state(data["max_sum"])
        if self.mins is not None:
            self.mins, self.maxs = array("d", data["mins"]), array("d", data["maxs"])

"""The calibration observer of one tensor, from its resolved quantization settings.

Which observer, by scale type, method and granularity (the config's ``scale_type``,
``method``, ``per_channel``; ``calib_statistic_method`` is passed on):

=============  =================================  =========================================
scale type     method                             observer
=============  =================================  =========================================
poweroftwo     diffs, maxmin (param)              ``ParamObserver`` (maxmin: search range 1;
                                                  per channel: its fused kernel)
poweroftwo     diffs, maxmin (input, activation)  ``DiffsObserver`` (per call, then the
                                                  statistic: the reference's
                                                  ``nndct_diffs_mode="maxmin"`` for maxmin)
poweroftwo     percentile, mse, entropy           ``HistogramVoteObserver`` (per call, then
                                                  the statistic)
float          maxmin, percentile, mse, entropy   ``FloatRangeObserver``
poweroftwo,    any                                ``FloatRangeObserver(power_of_two=True)``
asymmetric                                        (a power-of-two scale with a zero point)
or unsigned
=============  =================================  =========================================

Per-channel settings of any row but the first are the same observer per output channel
(``PerChannelObserver``). Power-of-two positions are capped at ``max_fix_pos`` (the reference's
12 up to 8 bits, 15 above).
"""
from __future__ import annotations

from typing import Any, Protocol

from .diffs_observers import DiffsObserver, ParamObserver
from .float_scale import FloatRangeObserver
from .histogram_observers import HistogramVoteObserver
from .observer import Observer
from .per_channel import PerChannelObserver

__all__ = ["TensorCalibration", "make_observer"]


class TensorCalibration(Protocol):
    """What `make_observer` reads from a tensor's settings (the CNN flow's `TensorSettings`);
    `is_float` is true for every grid with a zero point or unsigned codes (`scale_type` says
    whether its scale is a power of two)."""

    name: str
    scale_type: str
    bit_width: int
    method: Any            # a CalibMethod (str enum) or its spelling
    search_range: int
    statistic: str
    percentage: float | None
    axis: int | None
    is_param: bool
    round_method: str
    symmetric: bool
    signed: bool
    narrow_range: bool

    @property
    def is_float(self) -> bool: ...

    @property
    def max_fix_pos(self) -> int: ...


def _method(s: TensorCalibration) -> str:
    return str(getattr(s.method, "value", s.method))


def _template(s: TensorCalibration) -> dict[str, Any]:
    """The per-tensor observer of `s` as a kind and constructor arguments (no name)."""
    method = _method(s)
    if s.is_float:
        power_of_two = getattr(s, "scale_type", "float") == "poweroftwo"
        return {"kind": FloatRangeObserver.kind, "config": {
            "bit_width": s.bit_width, "signed": s.signed, "narrow_range": s.narrow_range,
            "symmetric": s.symmetric, "statistic": s.statistic, "method": method,
            "percentage": s.percentage if method == "percentile" else None,
            "power_of_two": power_of_two, "max_fix_pos": s.max_fix_pos if power_of_two else None,
            "search_range": s.search_range, "round_method": s.round_method}}
    if method in ("diffs", "maxmin"):
        if s.is_param:
            return {"kind": ParamObserver.kind, "config": {
                "bit_width": s.bit_width, "search_range": s.search_range, "method": s.round_method,
                "max_fix_pos": s.max_fix_pos}}
        return {"kind": DiffsObserver.kind, "config": {
            "bit_width": s.bit_width, "search_range": s.search_range, "method": s.round_method,
            "max_fix_pos": s.max_fix_pos, "statistic": s.statistic}}
    return {"kind": HistogramVoteObserver.kind, "config": {
        "method": method, "bit_width": s.bit_width, "statistic": s.statistic,
        "percentage": s.percentage, "max_fix_pos": s.max_fix_pos}}


def make_observer(s: TensorCalibration) -> Observer:
    """The calibration observer of one tensor (see the module docstring)."""
    from . import observer_class

    template = _template(s)
    if s.axis is not None:
        if template["kind"] == ParamObserver.kind:
            return ParamObserver(**template["config"], axis=s.axis, name=s.name)
        return PerChannelObserver(s.axis, template, name=s.name)
    return observer_class(template["kind"])(**template["config"], name=s.name)

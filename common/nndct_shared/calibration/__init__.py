"""Calibration observers: from the tensors seen during calibration to one fix position each.

- ``DiffsObserver``: the reference's activation method (per-call diffs search, then the mode
  of the calls, or another statistic).
- ``ParamObserver``: the diffs search once per weight/bias (optionally per channel).
- ``MaxMinObserver``: the global min/max over all calls, no clipping.
- ``HistogramVoteObserver``: percentile, mse or entropy on each call's histogram, then the
  statistic over the calls (the config's power-of-two methods other than diffs/maxmin).
- ``FloatRangeObserver``: float-scale tensors (scale and zero point, see ``float_scale``).
- ``PerChannelObserver``: any of them per output channel of a weight.
- ``PercentileObserver``, ``MseObserver``, ``EntropyObserver``: a histogram of |x| over all
  calls, then a percentile, the smallest expected squared error, or the smallest KL divergence.
- ``make_observer`` (``factory``): the observer the CNN flow's settings of one tensor call for.

All share ``observe(x)``, ``fix_pos`` (None until a call counted), ``merge(other)``,
``to_state()`` and ``observer_from_state(state)``. Tensors with NaN/inf are skipped with the
catalogue warning TENSOR_VALUE_INVALID (once per tensor); all-zero tensors are skipped silently
(no range information).
"""
from __future__ import annotations

from typing import Any

from .diffs_observers import DiffsObserver, MaxMinObserver, ParamObserver
from .float_scale import FloatQParams, FloatQuantSpec, FloatRangeObserver
from .fix_pos_votes import STATISTICS, FixPosVotes
from .histogram_observers import (EntropyObserver, HistogramObserver, HistogramVoteObserver,
                                  MseObserver, PercentileObserver)
from .observer import Observer
from .per_channel import PerChannelObserver
from .screening import CalibrationError

__all__ = [
    "STATISTICS",
    "CalibrationError",
    "DiffsObserver",
    "EntropyObserver",
    "FixPosVotes",
    "FloatQParams",
    "FloatQuantSpec",
    "FloatRangeObserver",
    "HistogramObserver",
    "HistogramVoteObserver",
    "MaxMinObserver",
    "MseObserver",
    "Observer",
    "ParamObserver",
    "PerChannelObserver",
    "PercentileObserver",
    "make_observer",
    "observer_class",
    "observer_from_state",
]

_OBSERVER_CLASSES: dict[str, type[Observer]] = {
    cls.kind: cls
    for cls in (
        DiffsObserver,
        ParamObserver,
        MaxMinObserver,
        PercentileObserver,
        MseObserver,
        EntropyObserver,
        FloatRangeObserver,
        HistogramVoteObserver,
        PerChannelObserver,
    )
}


def observer_class(kind: Any) -> type[Observer]:
    """The observer class of a state's ``kind``."""
    if kind not in _OBSERVER_CLASSES:
        raise CalibrationError(
            f"unknown observer kind {kind!r}; expected one of {', '.join(_OBSERVER_CLASSES)}."
        )
    return _OBSERVER_CLASSES[kind]


def observer_from_state(state: dict[str, Any]) -> Observer:
    """Rebuild any observer from its ``to_state()`` output."""
    kind = state.get("kind") if isinstance(state, dict) else None
    return observer_class(kind).from_state(state)


from .factory import make_observer  # noqa: E402  (it builds on the classes above)

"""The calibration state of a CNN front end's runtime, shared by the PyTorch and Keras ones.

Why here: both runtimes calibrate the same tensors (the session's settings) with the same
observers and must agree on the same edge cases, or the two front ends would write different
quant_info.json for the same model:

- a param is observed on its first call only (it is the same tensor on every call), once it
  has a fix position; an activation on every call (the modal statistic over batches);
- NaN/inf: the tensor's observer skips that call (with TENSOR_VALUE_INVALID) and the values are
  counted here; a tensor whose every call was skipped has no fix position and `calibrated()`
  raises CALIB_DATA_NONFINITE naming it;
- an activation that was only ever all-zero has no range; any fix position reproduces it, so it
  gets the cap (the most precise allowed one), as the kernels do for params.

The front ends turn their tensors into float32 NumPy arrays and call `observe`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nndct_shared.calibration import Observer
from nndct_shared.calibration.float_scale import qparams_from_range
from nndct_shared.messages import error
from nndct_shared.quant_mode import RunMode

from .settings import TensorSettings, make_observer

__all__ = ["CalibrationState"]


class CalibrationState:
    """Observers (calib) or fix positions (test, `fix_pos`) of the quantized tensors of one model."""

    def __init__(self, settings: Mapping[str, TensorSettings], mode: RunMode) -> None:
        self.settings = dict(settings)
        self.mode = RunMode(mode)
        self.observers: dict[str, Observer] = {}
        self.fix_pos: dict[str, Any] = {}
        self.nonfinite: dict[str, int] = {}  # NaN/inf values in the calls an observer skipped
        self._param_seen: set[str] = set()

    def observe(self, s: TensorSettings, x: np.ndarray) -> Any:
        """Calib mode: feed `x` (float32) to the tensor's observer unless it is a param already
        calibrated; returns the fix position (or float qparams) known so far."""
        observer = self.observers.get(s.name)
        if observer is None:
            observer = self.observers[s.name] = make_observer(s)
        if not (s.is_param and s.name in self._param_seen):
            skipped = observer.skipped_nonfinite
            observer.observe(x)
            if observer.skipped_nonfinite != skipped:  # the observer left x out (NaN/inf)
                count = int(np.count_nonzero(~np.isfinite(x)))
                # a param is the same tensor on every call; activations add up over batches
                self.nonfinite[s.name] = count if s.is_param else self.nonfinite.get(s.name, 0) + count
            if s.is_param and observer.fix_pos is not None:
                self._param_seen.add(s.name)
        return observer.fix_pos

    def replace_observer(self, name: str, observer: Observer) -> None:
        """A param calibrated again from new values (bias correction changed it)."""
        self.observers[name] = observer
        if observer.fix_pos is not None:
            self._param_seen.add(name)

    def calibrated(self) -> dict[str, Any]:
        """Fix position of every quantized tensor after calibration (None if never observed);
        see the module docstring for all-zero and NaN/inf tensors."""
        result: dict[str, Any] = {}
        for name, s in self.settings.items():
            observer = self.observers.get(name)
            fix_pos = None if observer is None else observer.fix_pos
            if fix_pos is None and observer is not None and observer.skipped_nonfinite:
                raise error("CALIB_DATA_NONFINITE", name=name, count=self.nonfinite.get(name, "some"))
            if fix_pos is None and observer is not None and observer.skipped_no_range:
                fix_pos = qparams_from_range(0.0, 0.0, s.float_spec) if s.is_float else s.max_fix_pos
            result[name] = fix_pos
        return result

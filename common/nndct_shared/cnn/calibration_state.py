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
  gets the cap (the most precise allowed one), as the kernels do for params;
- NaN/inf in the data given to quant_model (the guide: TENSOR_VALUE_INVALID, "Quantization for
  this tensor is ignored"): the front end's input check calls `skip_batch`, which warns once per
  input, and the forward that follows (`begin_forward`) is left out of calibration: no
  activation observer sees it (the NaN would run through every layer after the input). If no
  forward was clean, `calibrated()` raises CALIB_DATA_NONFINITE naming the input;
- `feedback` (calib mode): "running" (the reference) fake-quantizes each call at its
  observer's result over every call so far; "batch" at the result of that call alone (the
  statistics still gather every call), so a batch's outputs do not depend on the batches
  before it (`pytorch_nndct.distributed`).

The front ends turn their tensors into float32 NumPy arrays and call `observe`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nndct_shared.calibration import Observer
from nndct_shared.calibration.float_scale import qparams_from_range
from nndct_shared.messages import error, warn_once
from nndct_shared.quant_mode import RunMode

from .settings import TensorSettings, make_observer

__all__ = ["CalibrationState"]


class CalibrationState:
    """Observers (calib) or fix positions (test, `fix_pos`) of the quantized tensors of one model."""

    def __init__(self, settings: Mapping[str, TensorSettings], mode: RunMode, feedback: str = "running") -> None:
        self.settings = dict(settings)
        self.mode = RunMode(mode)
        self.feedback = feedback
        self.observers: dict[str, Observer] = {}
        self.fix_pos: dict[str, Any] = {}
        self.nonfinite: dict[str, int] = {}  # NaN/inf values in the calls an observer skipped
        self.forwards = 0
        self.nonfinite_inputs: dict[str, int] = {}  # NaN/inf values in skipped input batches
        self.skipped_forwards = 0
        self.skipping = False  # the current forward is left out of calibration
        self._skip_next = False
        self._param_seen: set[str] = set()

    def skip_batch(self, name: str, count: int) -> None:
        """The input check's report of `count` NaN/inf values in input `name` (calib mode): warn,
        and leave the forward that follows out of calibration (see the module docstring)."""
        warn_once("TENSOR_VALUE_INVALID", once_key=("calibration input", name), name=name)
        self.nonfinite_inputs[name] = self.nonfinite_inputs.get(name, 0) + count
        self._skip_next = True

    def begin_forward(self) -> None:
        """A forward of the quantized model starts: count it, and skip it if its inputs were not
        finite (`skip_batch`)."""
        self.forwards += 1
        self.skipping, self._skip_next = self._skip_next, False
        self.skipped_forwards += int(self.skipping)

    def observe(self, s: TensorSettings, x: np.ndarray) -> Any:
        """Calib mode: feed `x` (float32) to the tensor's observer unless it is a param already
        calibrated, or an activation of a skipped forward; returns the fix position (or float
        qparams) this call is quantized at (`feedback`)."""
        observer = self.observers.get(s.name)
        if self.skipping and not s.is_param:  # a batch with NaN/inf inputs: not calibrated
            return None if observer is None else observer.fix_pos
        if observer is None:
            observer = self.observers[s.name] = make_observer(s)
        if s.is_param and s.name in self._param_seen:
            return observer.fix_pos
        own = make_observer(s) if self.feedback == "batch" and not s.is_param else observer
        skipped = own.skipped_nonfinite
        own.observe(x)
        if own.skipped_nonfinite != skipped:  # the observer left x out (NaN/inf)
            count = int(np.count_nonzero(~np.isfinite(x)))
            # a param is the same tensor on every call; activations add up over batches
            self.nonfinite[s.name] = count if s.is_param else self.nonfinite.get(s.name, 0) + count
        if own is not observer:
            observer.merge(own)
        if s.is_param and observer.fix_pos is not None:
            self._param_seen.add(s.name)
        return own.fix_pos

    def replace_observer(self, name: str, observer: Observer) -> None:
        """A param calibrated again from new values (bias correction changed it)."""
        self.observers[name] = observer
        if observer.fix_pos is not None:
            self._param_seen.add(name)

    def calibrated(self) -> dict[str, Any]:
        """Fix position of every quantized tensor after calibration (None if never observed);
        see the module docstring for all-zero and NaN/inf tensors."""
        if self.forwards and self.skipped_forwards == self.forwards and self.nonfinite_inputs:
            name, count = next(iter(self.nonfinite_inputs.items()))
            raise error("CALIB_DATA_NONFINITE", name=name, count=count)
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

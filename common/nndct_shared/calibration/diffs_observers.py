"""Observers built on the reference's per-call searches: diffs (activations, params) and maxmin.

``DiffsObserver`` is the reference's activation calibration: every call runs the diffs search
(the fix position with the smallest sum of squared fake-quantization error among ``search_range``
candidates) and votes; the result is a statistic over the votes (the reference: the mode).
``ParamObserver`` runs the same search once, on the first call, as the reference does for weights
and biases. ``MaxMinObserver`` keeps the running minimum and maximum over all calls and returns
the largest fix position at which both fit: no search, no clipping.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nndct_shared import kernels

from .observer import Observer
from .screening import CalibrationError, Screened, screen_tensor
from .voting import VotingObserver

__all__ = ["DiffsObserver", "MaxMinObserver", "ParamObserver"]


def _check_method(method: Any) -> int | str:
    """Validate a rounding method (reference code 2..5 or a kernel method name); keep its form."""
    try:
        kernels.resolve_method(method)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(str(exc)) from None
    return method.strip().lower() if isinstance(method, str) else int(method)


def _check_positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise CalibrationError(f"{what} must be a positive integer, got {value!r}.")
    return int(value)


class DiffsObserver(VotingObserver):
    """Per-call diffs search plus a statistic over the calls (activations).

    ``method`` is the rounding of the fake quantization inside the search (2 DPU round for CNN
    activations, 4 floor for LSTM activations, 3 for params; a kernel method name such as
    ``"floor"`` works too); ``search_range`` the number of
    candidates (1 = no search, the reference's setting for model inputs); ``max_fix_pos`` the
    cap applied to each call's result (the reference: 12; None = no cap). ``statistic`` is one
    of ``STATISTICS`` (see ``fix_pos_votes``). ``last_fix_pos`` is the latest counted call's
    vote, which the reference-style calibration loop does not need but debugging does.
    """

    kind = "DiffsObserver"

    def __init__(
        self,
        bit_width: int = 16,
        search_range: int = 5,
        method: int | str = 2,
        max_fix_pos: int | None = 12,
        statistic: str = "modal",
        name: str | None = None,
    ) -> None:
        super().__init__(bit_width, max_fix_pos, statistic, name)
        self.search_range = _check_positive_int(search_range, "search_range")
        self.method = _check_method(method)

    def _vote(self, array: np.ndarray) -> int:
        return int(
            kernels.diffs_fix_pos(
                array, self.bit_width, self.search_range, self.method, self.max_fix_pos
            )
        )

    def _vote_config(self) -> dict[str, Any]:
        return {
            "bit_width": self.bit_width,
            "search_range": self.search_range,
            "method": self.method,
            "max_fix_pos": self.max_fix_pos,
        }


class MaxMinObserver(Observer):
    """Running min/max over all calls; fix_pos = the largest one at which both fit.

    With lb = -2^(bw-1) - 0.5 and ub = 2^(bw-1) - 0.5, the result is
    ``floor(log2(1 / max(min/lb, max/ub)))`` capped at ``max_fix_pos``, computed by the same
    kernel as the diffs search's first candidate (``kernels.maxmin_fix_pos`` on [min, max]).
    Unlike a statistic over calls, one outlier in one call widens the range for good. (The
    later reference's per-call ``nndct_diffs_mode="maxmin"`` is ``DiffsObserver`` with
    ``search_range=1``.)
    """

    kind = "MaxMinObserver"

    def __init__(
        self, bit_width: int = 16, max_fix_pos: int | None = 12, name: str | None = None
    ) -> None:
        super().__init__(bit_width, max_fix_pos, name)
        self.min_value: float | None = None
        self.max_value: float | None = None

    def _update(self, low: float, high: float) -> None:
        self.min_value = low if self.min_value is None else min(self.min_value, low)
        self.max_value = high if self.max_value is None else max(self.max_value, high)

    def _observe_array(self, array: np.ndarray) -> None:
        self._update(float(array.min()), float(array.max()))

    @property
    def fix_pos(self) -> int | None:
        if self.min_value is None or self.max_value is None:
            return None
        extremes = np.array([self.min_value, self.max_value], dtype=np.float64)
        return int(kernels.maxmin_fix_pos(extremes, self.bit_width, self.max_fix_pos))

    def _config(self) -> dict[str, Any]:
        return {"bit_width": self.bit_width, "max_fix_pos": self.max_fix_pos}

    def _merge_data(self, other: MaxMinObserver) -> None:
        if other.min_value is not None and other.max_value is not None:
            self._update(other.min_value, other.max_value)

    def _data_state(self) -> dict[str, Any]:
        return {"min": self.min_value, "max": self.max_value}

    def _load_data_state(self, data: dict[str, Any]) -> None:
        self.min_value = None if data["min"] is None else float(data["min"])
        self.max_value = None if data["max"] is None else float(data["max"])


class ParamObserver(Observer):
    """Diffs search on a parameter, once (or on every call with ``recalibrate=True``).

    Weights do not change during calibration, so the reference calibrates them on first use and
    ignores later calls; ``recalibrate=True`` is its quant_mode 3 (recompute on every forward,
    the latest result wins). ``axis`` gives one fix position per slice along that axis
    (per-channel), returned as a tuple. Unlike activations, an all-zero parameter (a bias that
    was initialised to zero) is not skipped: every fix position represents it exactly, and the
    kernel returns the most precise allowed one (``max_fix_pos``; 18 when uncapped). A tensor
    with NaN/inf is skipped with a warning, and the next call tries again.
    """

    kind = "ParamObserver"

    def __init__(
        self,
        bit_width: int = 16,
        search_range: int = 5,
        method: int | str = 3,
        max_fix_pos: int | None = 12,
        axis: int | None = None,
        recalibrate: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(bit_width, max_fix_pos, name)
        self.search_range = _check_positive_int(search_range, "search_range")
        self.method = _check_method(method)
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
            raise CalibrationError(f"axis must be an integer or None, got {axis!r}.")
        self.axis = None if axis is None else int(axis)
        self.recalibrate = bool(recalibrate)
        self._fix_pos: int | tuple[int, ...] | None = None

    def observe(self, x: Any) -> None:
        """Calibrate from ``x`` unless already calibrated (and ``recalibrate`` is False)."""
        if self._fix_pos is not None and not self.recalibrate:
            return
        verdict, array = screen_tensor(x, self.name, self._warning_key())
        if verdict is Screened.NON_FINITE:
            self.skipped_nonfinite += 1
            return
        if array.size == 0:
            self.skipped_no_range += 1
            return
        self._observe_array(array)
        self.calls_counted += 1

    def _observe_array(self, array: np.ndarray) -> None:
        if self.axis is None:
            self._fix_pos = int(
                kernels.diffs_fix_pos(
                    array, self.bit_width, self.search_range, self.method, self.max_fix_pos
                )
            )
        else:
            if not -array.ndim <= self.axis < array.ndim:
                raise CalibrationError(
                    f"parameter '{self.name}' has {array.ndim} dimension(s); axis {self.axis} "
                    "does not exist."
                )
            per_channel = kernels.diffs_fix_pos_per_channel(
                array,
                self.bit_width,
                self.axis,
                self.search_range,
                self.method,
                self.max_fix_pos,
            )
            self._fix_pos = tuple(int(v) for v in np.asarray(per_channel).reshape(-1))

    @property
    def fix_pos(self) -> int | tuple[int, ...] | None:
        return self._fix_pos

    def _config(self) -> dict[str, Any]:
        return {
            "bit_width": self.bit_width,
            "search_range": self.search_range,
            "method": self.method,
            "max_fix_pos": self.max_fix_pos,
            "axis": self.axis,
            "recalibrate": self.recalibrate,
        }

    def _merge_data(self, other: ParamObserver) -> None:
        if other._fix_pos is None:
            return
        if self._fix_pos is None or self.recalibrate:
            self._fix_pos = other._fix_pos
        elif self._fix_pos != other._fix_pos:
            raise CalibrationError(
                f"parameter '{self.name}' was calibrated to different fix positions "
                f"({self._fix_pos} and {other._fix_pos}); were the observers fed different "
                "weights? Calibrate both copies from the same weights."
            )

    def _data_state(self) -> dict[str, Any]:
        value = self._fix_pos
        return {"fix_pos": list(value) if isinstance(value, tuple) else value}

    def _load_data_state(self, data: dict[str, Any]) -> None:
        value = data["fix_pos"]
        self._fix_pos = tuple(int(v) for v in value) if isinstance(value, list) else value

"""What every calibration observer offers: observe, fix_pos, merge, and a state to save.

An observer watches one tensor during calibration and ends with one power-of-two fix position.
Keeping this surface identical across the diffs, maxmin and histogram observers lets the
PyTorch and Keras front ends swap the method with a config option, merge observers calibrated
in different processes, and save a half-done calibration.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from .screening import CalibrationError, Screened, screen_tensor

__all__ = ["Observer", "check_bit_width", "check_max_fix_pos"]

STATE_VERSION = 1


def check_bit_width(bit_width: Any) -> int:
    """Validate a bit width (2..32 bits, the range the kernels' integer codes cover)."""
    if isinstance(bit_width, bool) or not isinstance(bit_width, (int, np.integer)):
        raise CalibrationError(f"bit_width must be an integer, got {bit_width!r}.")
    if not 2 <= bit_width <= 32:
        raise CalibrationError(f"bit_width must be between 2 and 32, got {bit_width}.")
    return int(bit_width)


def check_max_fix_pos(max_fix_pos: Any) -> int | None:
    """Validate the cap on fix positions (None = no cap; the reference caps at 12)."""
    if max_fix_pos is None:
        return None
    if isinstance(max_fix_pos, bool) or not isinstance(max_fix_pos, (int, np.integer)):
        raise CalibrationError(f"max_fix_pos must be an integer or None, got {max_fix_pos!r}.")
    return int(max_fix_pos)


class Observer(ABC):
    """Base of the calibration observers.

    Subclasses implement ``_observe_array`` (a finite, not all-zero tensor), ``fix_pos``,
    ``_config``, ``_merge_data``, ``_data_state`` and ``_load_data_state``. The base class does
    the screening (see ``screening.py``) and keeps the call counters:

    - ``calls_counted``: calls that contributed to the result;
    - ``skipped_nonfinite``: calls left out because of NaN/inf (the first one is logged);
    - ``skipped_no_range``: all-zero or empty tensors, left out silently.
    """

    kind: ClassVar[str] = ""

    def __init__(self, bit_width: int, max_fix_pos: int | None, name: str | None) -> None:
        self.bit_width = check_bit_width(bit_width)
        self.max_fix_pos = check_max_fix_pos(max_fix_pos)
        self.name = name
        self.calls_counted = 0
        self.skipped_nonfinite = 0
        self.skipped_no_range = 0

    def _warning_key(self) -> Any:
        """Key of the once-per-tensor NaN/inf warning: the name, or this object if unnamed."""
        return self.name if self.name is not None else id(self)

    def observe(self, x: Any) -> None:
        """Learn from one tensor (any float array-like)."""
        verdict, array = screen_tensor(x, self.name, self._warning_key())
        if verdict is Screened.NON_FINITE:
            self.skipped_nonfinite += 1
        elif verdict is Screened.NO_RANGE:
            self.skipped_no_range += 1
        else:
            self._observe_array(array)
            self.calls_counted += 1

    @property
    @abstractmethod
    def fix_pos(self) -> Any:
        """The calibrated fix position, or None when no call was counted."""

    def no_range_result(self) -> Any:
        """The result for a tensor that never had a range (only zeros): any grid represents it,
        so the most precise allowed power-of-two position, ``max_fix_pos`` (float-scale
        observers override this)."""
        return self.max_fix_pos

    @abstractmethod
    def _observe_array(self, array: np.ndarray) -> None: ...

    @abstractmethod
    def _config(self) -> dict[str, Any]:
        """Constructor arguments (except ``name``) that define the result."""

    @abstractmethod
    def _merge_data(self, other: Any) -> None: ...

    @abstractmethod
    def _data_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load_data_state(self, data: dict[str, Any]) -> None: ...

    def merge(self, other: Observer) -> None:
        """Fold ``other`` (same class and configuration) into this observer.

        The result equals one observer that saw both observers' calls.
        """
        if type(other) is not type(self):
            raise CalibrationError(
                f"cannot merge a {type(other).__name__} into a {type(self).__name__}."
            )
        if other._config() != self._config():
            raise CalibrationError(
                f"cannot merge observers of '{self.name}' with different settings: "
                f"{self._config()} vs {other._config()}."
            )
        self._merge_data(other)
        self.calls_counted += other.calls_counted
        self.skipped_nonfinite += other.skipped_nonfinite
        self.skipped_no_range += other.skipped_no_range

    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild this observer with ``from_state``."""
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "name": self.name,
            "config": self._config(),
            "calls_counted": self.calls_counted,
            "skipped_nonfinite": self.skipped_nonfinite,
            "skipped_no_range": self.skipped_no_range,
            "data": self._data_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Observer:
        """Rebuild an observer of this class from ``to_state``'s output."""
        if not isinstance(state, dict) or state.get("kind") != cls.kind:
            found = state.get("kind") if isinstance(state, dict) else type(state).__name__
            raise CalibrationError(f"expected a {cls.kind} state, got {found!r}.")
        if state.get("version") != STATE_VERSION:
            raise CalibrationError(
                f"{cls.kind} state version {state.get('version')!r} is not supported "
                f"(this version reads {STATE_VERSION}); re-run calibration."
            )
        try:
            observer = cls(name=state["name"], **state["config"])
            observer.calls_counted = int(state["calls_counted"])
            observer.skipped_nonfinite = int(state["skipped_nonfinite"])
            observer.skipped_no_range = int(state["skipped_no_range"])
            observer._load_data_state(state["data"])
        except (KeyError, TypeError) as exc:
            raise CalibrationError(f"{cls.kind} state is incomplete or malformed: {exc}") from None
        return observer

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, fix_pos={self.fix_pos!r}, "
            f"calls_counted={self.calls_counted})"
        )

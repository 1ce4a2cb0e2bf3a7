"""An exact, mergeable running sum of floats (for means over calibration calls).

Why: a mean over calls summed in float depends on the order of the additions, so a calibration
split over processes (each summing its own calls, then adding the partial sums) would not give
the bits of one process that saw every call. Here the sum is kept exactly, as a short list of
non-overlapping float64 partials (Shewchuk's algorithm, the one behind ``math.fsum``), and only
rounded once, when read: any order of ``add`` and ``merge`` gives the same value, the correctly
rounded sum. The list stays short (at most about 40 partials for float64, whatever the count).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

__all__ = ["ExactSum"]


class ExactSum:
    """Sum of the finite floats passed to ``add`` (and merged in), rounded once by ``value``."""

    def __init__(self, partials: Iterable[float] = ()) -> None:
        self._partials: list[float] = []
        for value in partials:
            self.add(value)

    def add(self, value: float) -> None:
        """Add one finite float exactly."""
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"ExactSum adds finite values only, got {x!r}")
        kept = 0
        for y in self._partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                self._partials[kept] = low
                kept += 1
            x = high
        self._partials[kept:] = [x]

    def merge(self, other: ExactSum) -> None:
        """Add ``other``'s exact sum to this one."""
        for value in other._partials:
            self.add(value)

    def value(self) -> float:
        """The exact sum rounded to the nearest float64 (0.0 when nothing was added)."""
        return math.fsum(self._partials)

    def to_state(self) -> list[float]:
        """The partials (plain floats; their exact sum is the sum)."""
        return list(self._partials)

    @classmethod
    def from_state(cls, state: Any) -> ExactSum:
        """Inverse of ``to_state``."""
        return cls(float(v) for v in state)

"""The per-call fix positions of one tensor and the statistic that turns them into one value.

An activation is calibrated on every forward call (in LSTM mode: every time step of every batch),
so a tensor can collect millions of votes. Only a Counter of distinct values is kept, so memory
does not grow with the number of calls, and two Counters merge exactly (data-parallel
calibration, resumed calibration).
"""
from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from typing import Iterable

from .screening import CalibrationError

__all__ = ["STATISTICS", "FixPosVotes"]

STATISTICS: tuple[str, ...] = ("modal", "max", "mean", "median")
"""Statistics over the votes, as the config's calib_statistic_method ("method to choose one
optimal scale if got different scales using multiple batch data"): each vote stands for the
scale 2^-fix_pos, and the statistic picks one scale:

- ``modal``: the most frequent fix position, the smallest one on ties (``scipy.stats.mode``,
  what the reference uses for power-of-two scales).
- ``max``: the largest scale, i.e. the smallest fix position voted (the widest range any call
  asked for: no call's own choice is clipped more).
- ``mean``: the mean of the scales, then the smallest power-of-two scale that covers it, i.e.
  the largest fix position f with 2^-f >= mean (exact rational arithmetic). Rounding toward
  the wider range never adds overflow to the mean scale.
- ``median``: the median scale (for an even count, the mean of the two middle ones), covered
  the same way; this is always the lower median of the fix positions, a value some call voted.
"""


def _covering_fix_pos(scale: Fraction) -> int:
    """The largest integer f with 2^-f >= `scale` (> 0)."""
    f = math.floor(-math.log2(scale))  # a float estimate, corrected exactly below
    while Fraction(2) ** -(f + 1) >= scale:
        f += 1
    while Fraction(2) ** -f < scale:
        f -= 1
    return f


class FixPosVotes:
    """A multiset of integer fix positions with the statistics in ``STATISTICS``."""

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self._counts: Counter[int] = Counter()
        for fix_pos, count in (counts or {}).items():
            self.add(fix_pos, count)

    def add(self, fix_pos: int, count: int = 1) -> None:
        """Record ``count`` calls that voted ``fix_pos``."""
        if isinstance(fix_pos, bool) or not isinstance(fix_pos, int):
            raise CalibrationError(f"a fix position vote must be an int, got {fix_pos!r}.")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise CalibrationError(f"a vote count must be a non-negative int, got {count!r}.")
        if count:
            self._counts[fix_pos] += count

    def merge(self, other: FixPosVotes) -> None:
        """Add ``other``'s votes to these."""
        self._counts.update(other._counts)

    @property
    def total(self) -> int:
        """Number of votes."""
        return sum(self._counts.values())

    def counts(self) -> dict[int, int]:
        """``{fix_pos: votes}`` in increasing fix_pos order."""
        return {fp: self._counts[fp] for fp in sorted(self._counts)}

    def value(self, statistic: str) -> int | None:
        """The statistic over the votes, or None when there are none."""
        if statistic not in STATISTICS:
            raise CalibrationError(
                f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}."
            )
        if not self._counts:
            return None
        if statistic == "modal":
            top = max(self._counts.values())
            return min(fp for fp, n in self._counts.items() if n == top)
        if statistic == "max":
            return min(self._counts)
        total = self.total
        if statistic == "mean":
            mean = sum(Fraction(2) ** -fp * n for fp, n in self._counts.items()) / total
            return _covering_fix_pos(mean)
        needed = (total + 1) // 2  # lower median of the fix positions: the ceil(total/2)-th smallest
        seen = 0
        for fp in sorted(self._counts):
            seen += self._counts[fp]
            if seen >= needed:
                return fp
        raise AssertionError("unreachable: the counts sum to total")

    def to_pairs(self) -> list[list[int]]:
        """``[[fix_pos, votes], ...]``: a JSON-friendly form for observer states."""
        return [[fp, n] for fp, n in self.counts().items()]

    @classmethod
    def from_pairs(cls, pairs: Iterable[Iterable[int]]) -> FixPosVotes:
        """Inverse of ``to_pairs``."""
        votes = cls()
        for pair in pairs:
            fix_pos, count = pair
            votes.add(fix_pos, count)
        return votes

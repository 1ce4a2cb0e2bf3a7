"""The per-call fix positions of one tensor and the statistic that turns them into one value.

An activation is calibrated on every forward call (in LSTM mode: every time step of every batch),
so a tensor can collect millions of votes. Only a Counter of distinct values is kept, so memory
does not grow with the number of calls, and two Counters merge exactly (data-parallel
calibration, resumed calibration).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from .screening import CalibrationError

__all__ = ["STATISTICS", "FixPosVotes"]

STATISTICS: tuple[str, ...] = ("modal", "max", "mean", "median")
"""Statistics over the votes:

- ``modal``: the most frequent fix position, the smallest one on ties (``scipy.stats.mode``,
  what the reference uses).
- ``max``: the largest fix position voted (finest resolution any call asked for).
- ``mean``: ``floor(mean)``, exact integer arithmetic. Rounding down picks the smaller fix
  position, i.e. the wider range, so a fractional mean never adds overflow.
- ``median``: the lower median (for an even count, the smaller of the two middle votes), for
  the same reason; it is always a value that some call voted for.
"""


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
            return max(self._counts)
        total = self.total
        if statistic == "mean":
            return sum(fp * n for fp, n in self._counts.items()) // total
        needed = (total + 1) // 2  # lower median: the ceil(total/2)-th smallest vote
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

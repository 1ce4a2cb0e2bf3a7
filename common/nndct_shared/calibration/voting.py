"""Observers that pick one fix position per call and combine the calls by a statistic.

The reference calibrates power-of-two tensors batch by batch ("statistic local"): every call
gives a fix position, and calib_statistic_method turns the per-call results into one
(`fix_pos_votes.STATISTICS`, over the scales 2^-fix_pos). `VotingObserver` keeps the votes and
the statistic; subclasses say how one call votes: `DiffsObserver` by the diffs search,
`HistogramVoteObserver` by a percentile, mse or entropy selection on the call's histogram.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from .fix_pos_votes import STATISTICS, FixPosVotes
from .observer import Observer
from .screening import CalibrationError

__all__ = ["VotingObserver"]


class VotingObserver(Observer):
    """Base: one vote per counted call, `fix_pos` = the statistic over the votes.

    ``last_fix_pos`` is the latest counted call's vote (for debugging; the result does not use
    it). Subclasses implement ``_vote`` and ``_vote_config`` (their constructor arguments).
    """

    def __init__(self, bit_width: int, max_fix_pos: int | None, statistic: str,
                 name: str | None) -> None:
        super().__init__(bit_width, max_fix_pos, name)
        if statistic not in STATISTICS:
            raise CalibrationError(
                f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}."
            )
        self.statistic = statistic
        self.votes = FixPosVotes()
        self.last_fix_pos: int | None = None

    @abstractmethod
    def _vote(self, array: np.ndarray) -> int:
        """The fix position of one call (a finite, not all-zero tensor)."""

    @abstractmethod
    def _vote_config(self) -> dict[str, Any]:
        """Constructor arguments, other than ``statistic`` and ``name``, that define the votes."""

    def _observe_array(self, array: np.ndarray) -> None:
        fix_pos = int(self._vote(array))
        self.votes.add(fix_pos)
        self.last_fix_pos = fix_pos

    @property
    def fix_pos(self) -> int | None:
        return self.votes.value(self.statistic)

    def _config(self) -> dict[str, Any]:
        return {**self._vote_config(), "statistic": self.statistic}

    def _merge_data(self, other: VotingObserver) -> None:
        self.votes.merge(other.votes)
        if other.last_fix_pos is not None:
            self.last_fix_pos = other.last_fix_pos

    def _data_state(self) -> dict[str, Any]:
        return {"votes": self.votes.to_pairs(), "last_fix_pos": self.last_fix_pos}

    def _load_data_state(self, data: dict[str, Any]) -> None:
        self.votes = FixPosVotes.from_pairs(data["votes"])
        self.last_fix_pos = data["last_fix_pos"]

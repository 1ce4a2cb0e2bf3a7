"""Observers that collect a histogram of |x| over all calls and pick the fix position at the end.

The per-call diffs search judges each batch alone; these judge the whole calibration set at
once, which is what makes ignoring rare outliers possible (a percentile, a clipping/rounding
trade-off, or a distribution distance). The histogram is the C++ ``kernels.AbsHistogram``
(fixed bin count, power-of-two range that doubles as data grows, exact merges), so memory is
constant and observers from several processes merge exactly. The selection rules live in
``histogram_selection``.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from nndct_shared import kernels

from . import histogram_selection as selection
from .observer import Observer
from .screening import CalibrationError
from .voting import VotingObserver

__all__ = ["EntropyObserver", "HistogramObserver", "HistogramVoteObserver", "MseObserver",
           "PercentileObserver", "nonzero_for"]


class HistogramObserver(Observer):
    """Base: owns the histogram; subclasses turn it into a fix position (``_select``).

    ``bit_width`` defaults to 8: clipping outliers pays off when levels are scarce (CNN
    tensors); 16-bit LSTM tensors are calibrated with ``DiffsObserver`` like the reference.
    """

    def __init__(
        self,
        bit_width: int = 8,
        num_bins: int = 2048,
        max_fix_pos: int | None = 12,
        name: str | None = None,
    ) -> None:
        super().__init__(bit_width, max_fix_pos, name)
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or (
            num_bins < 2 or num_bins & (num_bins - 1)
        ):
            raise CalibrationError(
                f"num_bins must be a power of two >= 2 (the histogram's range doubles by merging "
                f"bin pairs), got {num_bins!r}."
            )
        self.num_bins = int(num_bins)
        self.histogram = kernels.AbsHistogram(self.num_bins)
        self._cached: tuple[int, int | None] | None = None
        self._version = 0

    def _observe_array(self, array: np.ndarray) -> None:
        self.histogram.update(array)
        self._version += 1

    @abstractmethod
    def _select(self, counts: np.ndarray, range_max: float) -> int:
        """The fix position for a non-empty histogram."""

    def _per_candidate(self, score) -> dict[int, float]:
        """`score(counts, range_max, bit_width, max_fix_pos)` of the histogram so far ({} if empty)."""
        if int(self.histogram.total) == 0:
            return {}
        return score(np.asarray(self.histogram.counts), float(self.histogram.range_max),
                     self.bit_width, self.max_fix_pos)

    @property
    def fix_pos(self) -> int | None:
        if self._cached is not None and self._cached[0] == self._version:
            return self._cached[1]
        if int(self.histogram.total) == 0:
            value = None
        else:
            counts = np.asarray(self.histogram.counts)
            value = self._select(counts, float(self.histogram.range_max))
        self._cached = (self._version, value)
        return value

    def _config(self) -> dict[str, Any]:
        return {
            "bit_width": self.bit_width,
            "num_bins": self.num_bins,
            "max_fix_pos": self.max_fix_pos,
        }

    def _merge_data(self, other: HistogramObserver) -> None:
        self.histogram.merge(other.histogram)
        self._version += 1

    def _data_state(self) -> dict[str, Any]:
        state = self.histogram.to_state()
        # Plain lists so that the whole observer state is JSON-serialisable.
        return {"histogram": {**state, "counts": np.asarray(state["counts"]).tolist()}}

    def _load_data_state(self, data: dict[str, Any]) -> None:
        histogram = kernels.AbsHistogram.from_state(data["histogram"])
        bins = len(np.asarray(histogram.counts))
        if bins != self.num_bins:
            raise CalibrationError(
                f"histogram state has {bins} bins; the observer's config says {self.num_bins}."
            )
        self.histogram = histogram
        self._version += 1


class PercentileObserver(HistogramObserver):
    """Fix position at which the ``percentage``-th percentile of |x| fits without clipping.

    The percentile is the upper edge of the first bin where the cumulative count reaches
    ``percentage`` % of all values; the largest |x| values above it are clipped.
    ``percentage=100`` keeps everything (the upper edge of the top non-empty bin, so at most
    one fix position below ``MaxMinObserver``).
    """

    kind = "PercentileObserver"

    def __init__(
        self,
        percentage: float = 99.99,
        bit_width: int = 8,
        num_bins: int = 2048,
        max_fix_pos: int | None = 12,
        name: str | None = None,
    ) -> None:
        super().__init__(bit_width, num_bins, max_fix_pos, name)
        if isinstance(percentage, bool) or not isinstance(percentage, (int, float)) or not (
            0 < percentage <= 100
        ):
            raise CalibrationError(
                f"percentage must be a number in (0, 100], got {percentage!r}."
            )
        self.percentage = float(percentage)

    def _select(self, counts: np.ndarray, range_max: float) -> int:
        return selection.select_percentile_fix_pos(
            counts, range_max, self.percentage, self.bit_width, self.max_fix_pos
        )

    def _config(self) -> dict[str, Any]:
        return {"percentage": self.percentage, **super()._config()}


class MseObserver(HistogramObserver):
    """Fix position with the smallest expected squared error (rounding plus clipping).

    See ``histogram_selection.mse_estimates`` for the exact error model; ``estimates()``
    returns it for inspection.
    """

    kind = "MseObserver"

    def _select(self, counts: np.ndarray, range_max: float) -> int:
        return selection.select_mse_fix_pos(counts, range_max, self.bit_width, self.max_fix_pos)

    def estimates(self) -> dict[int, float]:
        """``{fix_pos: expected squared error per value}`` over the candidates."""
        return self._per_candidate(selection.mse_estimates)


class EntropyObserver(HistogramObserver):
    """Fix position whose clipping loses the least information (KL divergence, TensorRT style).

    Candidates are the power-of-two clip points ``2^(bw-1) * 2^-fp`` that cover a whole
    multiple of ``2^(bw-1)`` bins (see ``histogram_selection.entropy_divergences``), so
    ``num_bins`` (a power of two, like every histogram's) must be at least ``2^(bw-1)``: 2048
    bins allow 8-bit tensors; a 16-bit tensor needs 32768. ``divergences()`` returns the values
    for inspection.
    """

    kind = "EntropyObserver"

    def __init__(
        self,
        bit_width: int = 8,
        num_bins: int = 2048,
        max_fix_pos: int | None = 12,
        name: str | None = None,
    ) -> None:
        super().__init__(bit_width, num_bins, max_fix_pos, name)
        levels = 2 ** (self.bit_width - 1)
        if self.num_bins < levels:
            raise CalibrationError(
                f"EntropyObserver needs num_bins >= 2^(bit_width-1) = "
                f"{levels} (one bin per quantization level at least), got {self.num_bins}. "
                f"Use num_bins={max(levels, 2048)}, or MseObserver."
            )

    def _select(self, counts: np.ndarray, range_max: float) -> int:
        return selection.select_entropy_fix_pos(
            counts, range_max, self.bit_width, self.max_fix_pos
        )

    def divergences(self) -> dict[int, float]:
        """``{fix_pos: KL divergence}`` over the candidates (``inf``: nothing below the clip)."""
        return self._per_candidate(selection.entropy_divergences)


def nonzero_for(method: str, array: np.ndarray) -> np.ndarray:
    """The values a per-call histogram of `method` is built from: for mse and entropy, the
    non-zero ones. An exact zero is represented exactly by every candidate grid, so it adds
    nothing to the squared error of any of them; kept, the spike of zeros a ReLU output has
    (often half of its values) dominates the entropy method's distributions and makes every
    clip look cheap (the reference patches the same spike by copying bin 1's count into bin 0).
    The percentile keeps them: it is a percentile of the tensor's values."""
    if method in ("mse", "entropy"):
        return np.ascontiguousarray(array[array != 0])
    return array


#: The per-call selections of `HistogramVoteObserver`.
VOTE_METHODS = ("percentile", "mse", "entropy")


class HistogramVoteObserver(VotingObserver):
    """Power-of-two calibration by percentile, mse or entropy, one call at a time.

    Every call builds a histogram of its own |x| (``num_bins`` bins, at least ``2^(bw-1)`` for
    entropy) and votes the fix position the selection picks on it (``PercentileObserver``,
    ``MseObserver`` and ``EntropyObserver`` use the same selections on one histogram of all
    calls); ``statistic`` then combines the calls, as for diffs: this is how the config's
    calib_statistic_method applies to these methods with power-of-two scales. For mse and
    entropy the exact zeros are left out of the histogram (`nonzero_for`).
    """

    kind = "HistogramVoteObserver"

    def __init__(
        self,
        method: str = "mse",
        bit_width: int = 8,
        statistic: str = "max",
        percentage: float | None = None,
        num_bins: int = 2048,
        max_fix_pos: int | None = 12,
        name: str | None = None,
    ) -> None:
        super().__init__(bit_width, max_fix_pos, statistic, name)
        if method not in VOTE_METHODS:
            raise CalibrationError(f"method must be one of {', '.join(VOTE_METHODS)}, got {method!r}.")
        if method == "percentile" and (isinstance(percentage, bool) or not isinstance(
                percentage, (int, float)) or not 0 < percentage <= 100):
            raise CalibrationError(f"percentage must be a number in (0, 100], got {percentage!r}.")
        self.method = method
        self.percentage = float(percentage) if method == "percentile" else None
        bins = int(num_bins)
        if method == "entropy":
            while bins < 2 ** (self.bit_width - 1):
                bins *= 2
        self.num_bins = bins

    def _vote(self, array: np.ndarray) -> int:
        histogram = kernels.AbsHistogram(self.num_bins)
        histogram.update(nonzero_for(self.method, array))
        counts, range_max = np.asarray(histogram.counts), float(histogram.range_max)
        if self.method == "percentile":
            return selection.select_percentile_fix_pos(
                counts, range_max, self.percentage, self.bit_width, self.max_fix_pos)
        if self.method == "mse":
            return selection.select_mse_fix_pos(counts, range_max, self.bit_width, self.max_fix_pos)
        return selection.select_entropy_fix_pos(counts, range_max, self.bit_width, self.max_fix_pos)

    def _vote_config(self) -> dict[str, Any]:
        return {"method": self.method, "bit_width": self.bit_width, "percentage": self.percentage,
                "num_bins": self.num_bins, "max_fix_pos": self.max_fix_pos}

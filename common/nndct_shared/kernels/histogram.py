"""AbsHistogram: a one-pass, mergeable histogram of |x| for percentile/entropy/MSE calibration.

Why this shape: calibration sees many batches (and possibly several workers), so the statistic
must be accumulated in one pass and combined later. The range is [0, 2^e) in ``num_bins`` equal
bins (``num_bins`` a power of two); a value beyond the range doubles it by merging adjacent bin
pairs, which is exact, so the counts never depend on the order of updates and merges. The
algorithms that pick a fix position from the counts live elsewhere.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._args import as_float_array, check_int
from ._core import core

DEFAULT_NUM_BINS = 2048


class AbsHistogram:
    """Counts of |x| over the finite values of every array passed to :meth:`update`.

    Until a nonzero finite value has been seen the histogram has no range: ``range_max`` is 0.0,
    ``range_exponent`` is None, and all counts (zeros) sit in bin 0. Bin b covers
    [b * w, (b + 1) * w) with w = range_max / num_bins.
    """

    def __init__(self, num_bins: int = DEFAULT_NUM_BINS) -> None:
        self._core = core.AbsHistogramCore(check_int(num_bins, "num_bins", 2, 1 << 24))

    def update(self, x: Any) -> None:
        """Add |v| for every finite v in x (NaN and +-inf are skipped)."""
        self._core.update(as_float_array(x))

    def merge(self, other: AbsHistogram) -> None:
        """Add other's counts into this histogram (both brought to the larger range first)."""
        if not isinstance(other, AbsHistogram):
            raise TypeError(f"can only merge another AbsHistogram, got {type(other).__name__}")
        self._core.merge(other._core)

    @property
    def counts(self) -> np.ndarray:
        """A copy of the bin counts (int64, length num_bins)."""
        return self._core.counts

    @property
    def range_max(self) -> float:
        """Upper end 2^e of the range [0, 2^e); 0.0 while there is no range yet."""
        return float(self._core.range_max)

    @property
    def range_exponent(self) -> int | None:
        """e of the range [0, 2^e), or None while there is no range yet."""
        return self._core.range_exponent

    @property
    def num_bins(self) -> int:
        return int(self._core.num_bins)

    @property
    def bin_width(self) -> float:
        """range_max / num_bins (0.0 while there is no range)."""
        return self.range_max / self.num_bins

    @property
    def total(self) -> int:
        """Number of finite values counted so far."""
        return int(self._core.total)

    def bin_edges(self) -> np.ndarray:
        """The num_bins + 1 bin edges (float64) of the current range."""
        return np.arange(self.num_bins + 1, dtype=np.float64) * self.bin_width

    def to_state(self) -> dict[str, Any]:
        """Plain-data state for pickling or saving: num_bins, range_exponent, counts."""
        return {"num_bins": self.num_bins, "range_exponent": self.range_exponent, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AbsHistogram:
        """Rebuild a histogram from :meth:`to_state` output (validated)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from AbsHistogram.to_state(), got {type(state).__name__}")
        missing = {"num_bins", "range_exponent", "counts"} - set(state)
        if missing:
            raise ValueError(f"histogram state is missing {sorted(missing)}")
        num_bins = check_int(state["num_bins"], "num_bins", 2, 1 << 24)
        exponent = state["range_exponent"]
        exponent = None if exponent is None else check_int(exponent, "range_exponent")
        counts = np.asarray(state["counts"])
        if counts.dtype.kind not in "iu":
            raise TypeError(f"histogram counts must be integers, got dtype {counts.dtype}")
        counts = np.ascontiguousarray(counts.reshape(-1), dtype=np.int64)
        obj = cls.__new__(cls)
        obj._core = core.AbsHistogramCore(num_bins, exponent, counts)
        return obj

    def copy(self) -> AbsHistogram:
        return AbsHistogram.from_state(self.to_state())

    def __getstate__(self) -> dict[str, Any]:
        return self.to_state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._core = AbsHistogram.from_state(state)._core

    def __repr__(self) -> str:
        return f"AbsHistogram(num_bins={self.num_bins}, range_max={self.range_max!r}, total={self.total})"

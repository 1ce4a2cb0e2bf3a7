"""Choosing a power-of-two fix position from a histogram of |x|: percentile, MSE and entropy.

The histogram (``kernels.AbsHistogram``) has ``N`` equal bins over ``[0, R]``, R a power of two,
bin ``i`` covering ``[i*w, (i+1)*w)`` with ``w = R/N``. These functions see only the counts and R,
so they are exact, deterministic and testable without data. Two conventions hold throughout:

- Magnitudes lose the sign, so the clip point used is the positive one, ``(2^(bw-1)-1) * 2^-fp``
  (the negative side has one more level); the no-clipping fix position of a magnitude ``v`` is
  the largest ``fp`` with ``v * 2^fp <= 2^(bw-1) - 0.5``, the diffs search's ``max_scale``.
- Values inside a bin are taken as uniformly spread over the bin (the only assumption a
  histogram allows); a bin's extent is its upper edge when a single value is needed.

The result is capped at ``max_fix_pos`` like the per-call searches; candidates above the cap
are not considered.
"""
from __future__ import annotations

import math

import numpy as np

from .screening import CalibrationError

__all__ = [
    "FLOAT_CLIP_CANDIDATES",
    "entropy_divergences",
    "mse_estimates",
    "no_clip_fix_pos",
    "percentile_magnitude",
    "select_entropy_fix_pos",
    "select_float_entropy_clip",
    "select_float_mse_clip",
    "select_mse_fix_pos",
    "select_percentile_fix_pos",
]

SMOOTHING_EPS = 1e-4
"""Share of the candidate distribution's mass moved onto its empty bins before the KL divergence
(see ``entropy_divergences``)."""


def no_clip_fix_pos(magnitude: float, bit_width: int) -> int:
    """Largest ``fp`` with ``magnitude * 2^fp <= 2^(bw-1) - 0.5`` (exact; magnitude > 0)."""
    if not magnitude > 0 or not math.isfinite(magnitude):
        raise CalibrationError(f"a magnitude must be positive and finite, got {magnitude!r}.")
    bound = 2.0 ** (bit_width - 1) - 0.5
    fix_pos = math.floor(math.log2(bound) - math.log2(magnitude))
    while math.ldexp(magnitude, fix_pos + 1) <= bound:
        fix_pos += 1
    while math.ldexp(magnitude, fix_pos) > bound:
        fix_pos -= 1
    return fix_pos


def _check_histogram(counts: np.ndarray, range_max: float) -> tuple[np.ndarray, float, float]:
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise CalibrationError("histogram counts must be a non-empty 1-D array.")
    if not range_max > 0:
        raise CalibrationError(f"histogram range_max must be positive, got {range_max!r}.")
    total = float(counts.sum())
    if total <= 0:
        raise CalibrationError("the histogram is empty; observe some data first.")
    return counts.astype(np.float64), float(range_max), total


def _top_magnitude(counts: np.ndarray, range_max: float) -> float:
    """Upper edge of the last non-empty bin."""
    last = int(np.flatnonzero(counts)[-1])
    return (last + 1) * range_max / counts.size


def _cap(fix_pos: int, max_fix_pos: int | None) -> int:
    return fix_pos if max_fix_pos is None else min(fix_pos, max_fix_pos)


def percentile_magnitude(counts: np.ndarray, range_max: float, percentage: float) -> float:
    """Upper edge of the first bin where the cumulative count reaches ``percentage`` % of all."""
    counts, range_max, total = _check_histogram(counts, range_max)
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative * 100.0, percentage * total, side="left"))
    index = min(index, counts.size - 1)
    return (index + 1) * range_max / counts.size


def select_percentile_fix_pos(
    counts: np.ndarray,
    range_max: float,
    percentage: float,
    bit_width: int,
    max_fix_pos: int | None,
) -> int:
    """No-clipping fix position of the ``percentage``-th percentile of |x|, capped."""
    magnitude = percentile_magnitude(counts, range_max, percentage)
    return _cap(no_clip_fix_pos(magnitude, bit_width), max_fix_pos)


def _rounding_error_integral(x: np.ndarray, step: float) -> np.ndarray:
    """``F(x) = integral_0^x (t - step*round(t/step))^2 dt`` for ``x >= 0``.

    With ``k = floor(x/step + 1/2)`` and ``u = x - k*step``: ``F = k*step^3/12 + u^3/3``.
    """
    k = np.floor(x / step + 0.5)
    u = x - k * step
    return k * step**3 / 12.0 + u**3 / 3.0


def _candidate_fix_positions(
    counts: np.ndarray, range_max: float, bit_width: int, max_fix_pos: int | None
) -> list[int]:
    """From the no-clipping fp upward while the clip point stays at least one bin wide."""
    width = range_max / counts.size
    first = no_clip_fix_pos(_top_magnitude(counts, range_max), bit_width)
    levels = 2 ** (bit_width - 1) - 1
    candidates = []
    fix_pos = first
    while levels * 2.0**-fix_pos >= width:
        if max_fix_pos is not None and fix_pos > max_fix_pos:
            break
        candidates.append(fix_pos)
        fix_pos += 1
    return candidates


def mse_estimates(
    counts: np.ndarray, range_max: float, bit_width: int, max_fix_pos: int | None = None
) -> dict[int, float]:
    """Expected squared error per value for each candidate fix position.

    Candidates run from the no-clipping fix position of the top bin upward while the clip point
    ``T = (2^(bw-1)-1) * 2^-fp`` is at least one bin wide (the histogram cannot judge finer
    ones), and not above ``max_fix_pos``. For each, with step ``s = 2^-fp``, values below
    ``T + s/2`` round to the nearest multiple of ``s`` and values above clip to ``T``; the error
    of each bin is integrated exactly under the uniform-within-bin density (closed forms, no
    sampling), summed, and divided by the number of values. Rounding is to nearest (methods
    2/3/5); floor (method 4) is not modelled.
    """
    counts, range_max, _ = _check_histogram(counts, range_max)
    error = _SquaredError(counts, range_max)
    levels = 2 ** (bit_width - 1) - 1
    return {fix_pos: error(2.0**-fix_pos, levels * 2.0**-fix_pos)
            for fix_pos in _candidate_fix_positions(counts, range_max, bit_width, max_fix_pos)}


class _SquaredError:
    """Expected squared error per value of a histogram on a grid of `step` clipped at `clip`.

    Values below ``clip + step/2`` round to the nearest multiple of ``step``, values above clip to
    ``clip``; each bin's error is integrated exactly under the uniform-within-bin density.
    """

    def __init__(self, counts: np.ndarray, range_max: float) -> None:
        width = range_max / counts.size
        self.low = np.arange(counts.size) * width
        self.high = self.low + width
        self.density = counts / width
        self.total = float(counts.sum())

    def __call__(self, step: float, clip: float) -> float:
        low, high = self.low, self.high
        split = clip + step / 2
        round_end = np.minimum(high, split)
        rounding = np.where(
            low < split,
            _rounding_error_integral(round_end, step) - _rounding_error_integral(low, step),
            0.0,
        )
        clip_start = np.maximum(low, split)
        clipping = np.where(
            high > split, ((high - clip) ** 3 - (clip_start - clip) ** 3) / 3.0, 0.0
        )
        return float(np.sum(self.density * (rounding + clipping)) / self.total)


def select_mse_fix_pos(
    counts: np.ndarray, range_max: float, bit_width: int, max_fix_pos: int | None
) -> int:
    """The candidate with the smallest ``mse_estimates`` value (the smaller fp on ties).

    When no candidate exists (the cap is below the no-clipping fix position) the cap is
    returned.
    """
    estimates = mse_estimates(counts, range_max, bit_width, max_fix_pos)
    if not estimates:
        counts, range_max, _ = _check_histogram(counts, range_max)
        return _cap(no_clip_fix_pos(_top_magnitude(counts, range_max), bit_width), max_fix_pos)
    best = min(estimates.values())
    return min(fp for fp, error in estimates.items() if error == best)


def _smooth(distribution: np.ndarray) -> np.ndarray:
    """Move a share ``SMOOTHING_EPS`` of the mass evenly onto the empty bins.

    The mass is taken proportionally from the non-empty bins, so every bin stays positive
    whatever the number of bins; a distribution without empty bins is returned unchanged.
    """
    zeros = distribution == 0
    n_zeros = int(zeros.sum())
    if n_zeros == 0:
        return distribution
    return np.where(zeros, SMOOTHING_EPS / n_zeros, distribution * (1.0 - SMOOTHING_EPS))


def entropy_divergences(
    counts: np.ndarray, range_max: float, bit_width: int, max_fix_pos: int | None = None
) -> dict[int, float]:
    """KL divergence of each power-of-two clipping candidate (TensorRT-style calibration).

    With ``L = 2^(bw-1)`` magnitude levels, candidate ``fp`` clips at ``T = L * 2^-fp``, which
    must cover a whole number ``n >= L`` of bins, a multiple of ``L``, with ``n <= N``
    (so ``T <= R``), and ``fp <= max_fix_pos``. For each:

    - ``P``: the first ``n`` bins, plus every count above ``T`` added to bin ``n-1`` (what
      clipping does to the distribution);
    - ``Q``: the first ``n`` bins without the outliers, merged into ``L`` levels of ``n/L``
      bins each; each level's count is spread evenly over the bins of the level where ``P`` is
      non-zero;
    - both normalised; then a share ``SMOOTHING_EPS`` of ``Q``'s mass is moved evenly onto its
      empty bins (taken proportionally from the others). Without this, outliers clipped onto a
      bin that is empty below ``T`` would make the divergence infinite; TensorRT-style
      implementations smooth for the same reason (MXNet's port adds a fixed count per empty
      bin to both, which can go negative for large histograms; this form cannot). ``P`` needs
      no smoothing: bins where ``P`` is zero add nothing to ``KL(P||Q) = sum P ln(P/Q)``.

    A candidate whose ``Q`` is empty (every value above ``T``) gets ``inf``.
    """
    counts, range_max, _ = _check_histogram(counts, range_max)
    num_bins = counts.size
    levels = 2 ** (bit_width - 1)
    divergences: dict[int, float] = {}
    first = no_clip_fix_pos(range_max, bit_width) - 1
    for fix_pos in range(first, first + 64):
        if max_fix_pos is not None and fix_pos > max_fix_pos:
            break
        bins_float = levels * 2.0**-fix_pos * num_bins / range_max
        if bins_float > num_bins:
            continue
        if bins_float < levels:
            break
        bins = int(bins_float)
        if bins != bins_float or bins % levels:
            continue
        divergences[fix_pos] = _clip_divergence(counts, bins, levels)
    return divergences


def _clip_divergence(counts: np.ndarray, bins: int, levels: int) -> float:
    """KL(P||Q) of clipping the histogram after `bins` bins and merging those into `levels`
    levels (bin j belongs to level floor(j * levels / bins)); see `entropy_divergences`."""
    reference = counts[:bins].copy()
    reference[-1] += counts[bins:].sum()
    level = (np.arange(bins) * levels) // bins
    nonzero = reference != 0
    per_level = np.bincount(level, weights=counts[:bins], minlength=levels)
    spread = np.bincount(level, weights=nonzero, minlength=levels)
    candidate = np.where(nonzero, per_level[level] / np.maximum(spread[level], 1), 0.0)
    if candidate.sum() == 0:
        return math.inf
    p = reference / reference.sum()
    q = _smooth(candidate / candidate.sum())
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def select_entropy_fix_pos(
    counts: np.ndarray, range_max: float, bit_width: int, max_fix_pos: int | None
) -> int:
    """The candidate with the smallest KL divergence (the smaller fp on ties).

    Without any candidate (fewer than ``2^(bw-1)`` bins below every allowed clip point, e.g. a
    16-bit tensor with a 2048-bin histogram, or a cap below them all), and for a histogram of
    fewer values than the grid has magnitude levels (``2^(bw-1)``: a distribution cannot be
    judged from so few, e.g. the 9 weights of a depthwise 3x3 channel), this falls back to the
    no-clipping fix position of the top non-empty bin, capped.
    """
    too_few = float(np.sum(counts)) < 2 ** (bit_width - 1)
    divergences = {} if too_few else entropy_divergences(counts, range_max, bit_width, max_fix_pos)
    finite = {fp: d for fp, d in divergences.items() if math.isfinite(d)}
    if not finite:
        counts, range_max, _ = _check_histogram(counts, range_max)
        return _cap(no_clip_fix_pos(_top_magnitude(counts, range_max), bit_width), max_fix_pos)
    best = min(finite.values())
    return min(fp for fp, d in finite.items() if d == best)


#: At most this many clip candidates are tried by the float-scale selections (evenly spaced
#: bin edges), which keeps a per-call selection to a few milliseconds.
FLOAT_CLIP_CANDIDATES = 128


def _float_candidates(counts: np.ndarray, first: int) -> np.ndarray:
    """Candidate clip bins n (the clip is the upper edge of bin n-1): from `first` up to the top
    non-empty bin, evenly spaced, at most FLOAT_CLIP_CANDIDATES of them, the top one included."""
    top = int(np.flatnonzero(counts)[-1]) + 1
    first = min(max(first, 1), top)
    stride = max(1, -(-(top - first) // (FLOAT_CLIP_CANDIDATES - 1)))
    return np.unique(np.append(np.arange(first, top, stride), top))


def _best_clip(scores: dict[int, float], range_max: float, num_bins: int) -> float:
    """The clip magnitude of the smallest score (the larger clip on ties: less clipping)."""
    best = min(scores.values())
    bins = max(n for n, score in scores.items() if score == best)
    return bins * range_max / num_bins


def select_float_mse_clip(counts: np.ndarray, range_max: float, levels: int) -> float:
    """Clip magnitude T with the smallest expected squared error on the grid of step T/levels
    (`levels` positive codes, e.g. 127 for signed 8 bit), among bin edges up to the top
    non-empty bin (`_float_candidates`); the error model is `mse_estimates`'."""
    counts, range_max, _ = _check_histogram(counts, range_max)
    error = _SquaredError(counts, range_max)
    width = range_max / counts.size
    scores = {int(n): error(n * width / levels, n * width) for n in _float_candidates(counts, 1)}
    return _best_clip(scores, range_max, counts.size)


def select_float_entropy_clip(counts: np.ndarray, range_max: float, levels: int) -> float:
    """Clip magnitude T with the smallest KL divergence (`entropy_divergences`' P and Q, with the
    first n bins merged into `levels` levels of n/levels bins each, fractional boundaries
    allowed), among bin edges from `levels` bins up to the top non-empty bin. A histogram whose
    top non-empty bin is below `levels` bins, or that holds fewer than `levels` values (see
    `select_entropy_fix_pos`), is not clipped (T = its top)."""
    counts, range_max, total = _check_histogram(counts, range_max)
    if total < levels:
        return _top_magnitude(counts, range_max)
    candidates = _float_candidates(counts, levels)
    scores = {int(n): _clip_divergence(counts, int(n), levels) for n in candidates if n >= levels}
    finite = {n: d for n, d in scores.items() if math.isfinite(d)}
    if not finite:
        return _top_magnitude(counts, range_max)
    return _best_clip(finite, range_max, counts.size)

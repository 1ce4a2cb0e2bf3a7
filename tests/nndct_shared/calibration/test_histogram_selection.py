"""Fix-position selection from |x| histograms, against independent re-computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
from calib_reference import (
    abs_histogram,
    fake_quantize,
    fits,
    kl_divergences,
    percentile_fix_pos,
)

from nndct_shared.calibration import CalibrationError
from nndct_shared.calibration import histogram_selection as sel


@pytest.mark.parametrize("bit_width", [4, 8, 16])
def test_no_clip_fix_pos_matches_counting(bit_width: int) -> None:
    bound = 2 ** (bit_width - 1) - 0.5
    magnitudes = [1.0, 0.5, 3.0, 1e-6, 1e6, 0.999, 127.0, 2.0**-30]
    for k in range(-5, 20):
        exact = bound * 2.0**-k  # fits exactly at fp = k
        magnitudes += [exact, np.nextafter(exact, np.inf), np.nextafter(exact, 0.0)]
    for magnitude in magnitudes:
        assert sel.no_clip_fix_pos(magnitude, bit_width) == fits(magnitude, bit_width), magnitude
    assert sel.no_clip_fix_pos(bound * 2.0**-7, bit_width) == 7


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_no_clip_fix_pos_rejects_non_positive(bad: float) -> None:
    with pytest.raises(CalibrationError, match="positive and finite"):
        sel.no_clip_fix_pos(bad, 8)


def _gaussian_with_outliers(seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0.0, 1.0, 200_000)
    x[[10, 20_000, 150_000]] = [60.0, -45.0, 52.0]
    return x


@pytest.mark.parametrize("percentage", [50.0, 99.0, 99.99, 99.999, 100.0])
def test_percentile_matches_cumulative_count(percentage: float) -> None:
    counts, r = abs_histogram(_gaussian_with_outliers(), 2048)
    got = sel.select_percentile_fix_pos(counts, r, percentage, 8, 12)
    assert got == percentile_fix_pos(counts, r, percentage, 8)


def test_percentile_magnitude_is_bin_upper_edge() -> None:
    counts = np.array([5, 0, 3, 2, 0, 0, 0, 0])  # range 8, width 1
    assert sel.percentile_magnitude(counts, 8.0, 50.0) == 1.0  # 5 of 10 reached in bin 0
    assert sel.percentile_magnitude(counts, 8.0, 50.1) == 3.0
    assert sel.percentile_magnitude(counts, 8.0, 100.0) == 4.0
    # 4 bits: 4 * 2^fp <= 7.5 -> fp = 0; the cap applies last
    assert sel.select_percentile_fix_pos(counts, 8.0, 100.0, 4, 12) == 0
    assert sel.select_percentile_fix_pos(counts, 8.0, 50.0, 4, 2) == 2


def _numeric_mse(counts, r, bit_width, fix_pos, samples_per_bin=4000) -> float:
    """Uniform-within-bin expectation by the midpoint rule on every non-empty bin."""
    width = r / len(counts)
    total_error = 0.0
    for i in np.flatnonzero(counts):
        x = i * width + (np.arange(samples_per_bin) + 0.5) * width / samples_per_bin
        error = np.mean((x - fake_quantize(x, bit_width, fix_pos, 3)) ** 2)
        total_error += counts[i] * error
    return total_error / counts.sum()


def test_mse_estimates_equal_the_integrated_error() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=64)
    counts[40:] = 0
    counts[55] = 2  # a few outliers past a gap
    r = 8.0  # width 1/8; top bin edge 7.0
    estimates = sel.mse_estimates(counts, r, 4, None)
    # no clipping for 7.0 * 2^fp <= 7.5 -> fp 0; clip point 7 * 2^-fp >= 1/8 -> fp <= 5
    assert list(estimates) == [0, 1, 2, 3, 4, 5]
    for fix_pos, value in estimates.items():
        assert value == pytest.approx(_numeric_mse(counts, r, 4, fix_pos), rel=1e-6), fix_pos
    assert sel.select_mse_fix_pos(counts, r, 4, None) == min(estimates, key=estimates.get)
    assert list(sel.mse_estimates(counts, r, 4, 3)) == [0, 1, 2, 3]


def test_mse_with_cap_below_every_candidate_returns_cap() -> None:
    counts = np.array([0, 4, 0, 0])  # range 2**-6: tiny values want fp around 12 for 8 bits
    assert sel.mse_estimates(counts, 2.0**-6, 8, 10) == {}
    assert sel.select_mse_fix_pos(counts, 2.0**-6, 8, 10) == 10
    uncapped = sel.mse_estimates(counts, 2.0**-6, 8, None)
    assert min(uncapped) == fits(2 * 2.0**-8, 8) == 13  # top bin edge 2^-7 fits at fp 13
    assert sel.select_mse_fix_pos(counts, 2.0**-6, 8, None) == min(uncapped, key=uncapped.get)


def test_entropy_divergences_match_independent_kl() -> None:
    counts, r = abs_histogram(_gaussian_with_outliers(), 2048)
    got = sel.entropy_divergences(counts, r, 8, 12)
    expected = kl_divergences(counts, r, 8, 12)
    assert list(got) == list(expected) and len(got) == 5  # clip points 64, 32, 16, 8, 4
    for fix_pos in got:
        assert got[fix_pos] == pytest.approx(expected[fix_pos], rel=1e-9, abs=1e-15)
    best = min(expected, key=expected.get)
    assert sel.select_entropy_fix_pos(counts, r, 8, 12) == best
    assert best > sel.no_clip_fix_pos(60.0, 8)  # the outliers are clipped


def test_entropy_with_too_few_bins_falls_back_to_no_clipping() -> None:
    counts, r = abs_histogram(_gaussian_with_outliers(), 2048)
    assert sel.entropy_divergences(counts, r, 16, 12) == {}
    top = (np.flatnonzero(counts)[-1] + 1) * r / 2048
    assert sel.select_entropy_fix_pos(counts, r, 16, 12) == min(fits(top, 16), 12)


def test_entropy_candidate_with_nothing_below_clip_is_infinite() -> None:
    counts = np.zeros(256, dtype=np.int64)
    counts[200] = 10  # everything near 200/256 of the range 1.0
    got = sel.entropy_divergences(counts, 1.0, 7, None)  # 64 levels: clip 1, 1/2, 1/4
    assert list(got) == [6, 7, 8]
    assert math.isfinite(got[6]) and got[7] == math.inf and got[8] == math.inf
    assert sel.select_entropy_fix_pos(counts, 1.0, 7, None) == 6


def test_empty_histogram_is_an_error() -> None:
    with pytest.raises(CalibrationError, match="empty"):
        sel.select_mse_fix_pos(np.zeros(8, dtype=np.int64), 1.0, 8, 12)

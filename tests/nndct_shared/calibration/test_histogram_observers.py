"""Percentile, MSE and entropy observers on real data, against independent computations."""
from __future__ import annotations

import json

import numpy as np
import pytest
from calib_reference import (
    abs_histogram,
    kl_divergences,
    maxmin_fix_pos,
    percentile_fix_pos,
    quantization_mse,
)
from sklearn.datasets import load_digits

from nndct_shared.calibration import (
    CalibrationError,
    EntropyObserver,
    MaxMinObserver,
    MseObserver,
    PercentileObserver,
    observer_from_state,
)
from nndct_shared.calibration import histogram_selection as sel


@pytest.fixture(scope="module")
def gaussian_with_outliers() -> np.ndarray:
    """200k N(0, 1) activations with three large outliers, in float32 like a real model."""
    x = np.random.default_rng(0).normal(0.0, 1.0, 200_000).astype(np.float32)
    x[[10, 20_000, 150_000]] = [60.0, -45.0, 52.0]
    return x


def _feed(observer, x: np.ndarray, batches: int = 20):
    for batch in np.array_split(x, batches):
        observer.observe(batch)
    return observer


def test_histogram_counts_are_the_independent_ones(gaussian_with_outliers) -> None:
    observer = _feed(PercentileObserver(99.99), gaussian_with_outliers)
    counts, r = abs_histogram(gaussian_with_outliers, 2048)
    assert observer.histogram.range_max == r == 64.0
    np.testing.assert_array_equal(observer.histogram.counts, counts)


def test_percentile_ignores_outliers_maxmin_does_not(gaussian_with_outliers) -> None:
    x = gaussian_with_outliers
    counts, r = abs_histogram(x, 2048)
    percentile = _feed(PercentileObserver(99.99, bit_width=8), x)
    maxmin = _feed(MaxMinObserver(8), x)
    assert maxmin.fix_pos == maxmin_fix_pos(float(x.min()), float(x.max()), 8) == 1
    assert percentile.fix_pos == percentile_fix_pos(counts, r, 99.99, 8) == 5
    hundred = _feed(PercentileObserver(100.0, bit_width=8), x)
    assert hundred.fix_pos == percentile_fix_pos(counts, r, 100.0, 8) == 1


def test_mse_picks_the_fix_position_with_least_error_on_the_data(gaussian_with_outliers) -> None:
    x = gaussian_with_outliers
    observer = _feed(MseObserver(bit_width=8), x)
    estimates = observer.estimates()
    # from the no-clipping fp 1 while the clip point 127 * 2^-fp is at least a bin (64 / 2048)
    assert list(estimates) == list(range(1, 12))
    true_mse = {fp: quantization_mse(x.astype(np.float64), 8, fp) for fp in estimates}
    best = min(true_mse, key=true_mse.get)
    assert observer.fix_pos == best == 2  # clipping 3 outliers beats rounding coarsely
    for fp in (1, 2, 3, 4, 5):
        assert estimates[fp] == pytest.approx(true_mse[fp], rel=0.05), fp


def test_entropy_ignores_outliers(gaussian_with_outliers) -> None:
    x = gaussian_with_outliers
    counts, r = abs_histogram(x, 2048)
    observer = _feed(EntropyObserver(bit_width=8), x)
    expected = kl_divergences(counts, r, 8)
    got = observer.divergences()
    assert list(got) == list(expected)
    for fp in got:
        assert got[fp] == pytest.approx(expected[fp], rel=1e-9, abs=1e-15)
    best = min(expected, key=expected.get)
    assert observer.fix_pos == best
    assert best > maxmin_fix_pos(float(x.min()), float(x.max()), 8)


def test_digits_pixels() -> None:
    """sklearn's 8x8 digits: integer intensities 0..16, one image per call."""
    images = load_digits().data  # float64, shape (1797, 64)
    counts, r = abs_histogram(images, 2048)
    assert r == 32.0
    observers = {
        "maxmin": MaxMinObserver(8),
        "p99": PercentileObserver(99.0, bit_width=8),
        "p50": PercentileObserver(50.0, bit_width=8),
        "mse": MseObserver(bit_width=8),
        "entropy": EntropyObserver(bit_width=8),
    }
    for image in images:
        for observer in observers.values():
            observer.observe(image)
    assert all(o.skipped_no_range == 0 for o in observers.values())
    assert observers["maxmin"].fix_pos == maxmin_fix_pos(0.0, 16.0, 8) == 2
    assert observers["p99"].fix_pos == percentile_fix_pos(counts, r, 99.0, 8) == 2
    assert observers["p50"].fix_pos == percentile_fix_pos(counts, r, 50.0, 8)
    # Integer data on a 1/64-wide bin grid: fp 2 (step 1/4) needs no clipping; fp 3 clips 16.
    estimates = observers["mse"].estimates()
    assert observers["mse"].fix_pos == min(estimates, key=estimates.get) == 2
    expected_kl = kl_divergences(counts, r, 8)
    assert observers["entropy"].fix_pos == min(expected_kl, key=expected_kl.get)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PercentileObserver(99.9, bit_width=8),
        lambda: MseObserver(bit_width=8),
        lambda: EntropyObserver(bit_width=8),
    ],
)
def test_merge_and_state_equal_one_observer(gaussian_with_outliers, make) -> None:
    x = gaussian_with_outliers
    whole, first, second = make(), make(), make()
    _feed(whole, x)
    _feed(first, x[:50_000], 5)  # max |x| 60 is here, the others grow the range later
    _feed(second, x[50_000:], 7)
    second.merge(first)
    np.testing.assert_array_equal(second.histogram.counts, whole.histogram.counts)
    assert second.fix_pos == whole.fix_pos and second.calls_counted == 12
    restored = observer_from_state(json.loads(json.dumps(whole.to_state())))
    assert type(restored) is type(whole)
    np.testing.assert_array_equal(restored.histogram.counts, whole.histogram.counts)
    assert restored.fix_pos == whole.fix_pos


def test_empty_zero_and_non_finite(logged_warnings) -> None:
    observer = MseObserver(bit_width=8, name="P::x")
    assert observer.fix_pos is None and observer.estimates() == {}
    observer.observe(np.zeros(10, dtype=np.float32))
    observer.observe(np.array([1.0, np.nan]))
    assert len(logged_warnings()) == 1 and "'P::x'" in logged_warnings()[0]
    assert observer.fix_pos is None
    assert (observer.skipped_no_range, observer.skipped_nonfinite) == (1, 1)
    observer.observe(np.array([0.0, 1.0, -0.75]))
    counts = observer.histogram.counts
    assert observer.fix_pos == sel.select_mse_fix_pos(counts, 2.0, 8, 12)
    assert observer.histogram.total == 3


def test_result_is_updated_after_more_data(gaussian_with_outliers) -> None:
    observer = PercentileObserver(100.0, bit_width=8)
    observer.observe(gaussian_with_outliers[1000:2000])
    before = observer.fix_pos
    observer.observe(np.array([100.0], dtype=np.float32))
    assert observer.fix_pos == 0 < before  # 100 * 2 > 127.5


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: EntropyObserver(bit_width=16), r"num_bins >= 2\^\(bit_width-1\) = 32768"),
        (lambda: EntropyObserver(bit_width=8, num_bins=1000), "power of two"),
        (lambda: PercentileObserver(0.0), r"percentage must be a number in \(0, 100\]"),
        (lambda: PercentileObserver(100.5), "percentage"),
        (lambda: MseObserver(num_bins=0), "num_bins must be a power of two"),
        (lambda: MseObserver(num_bins=3000), "num_bins must be a power of two"),
    ],
)
def test_bad_settings(make, pattern: str) -> None:
    with pytest.raises(CalibrationError, match=pattern):
        make()


def test_sixteen_bit_entropy_with_enough_bins() -> None:
    x = np.random.default_rng(1).normal(0, 1, 50_000)
    observer = EntropyObserver(bit_width=16, num_bins=32768)
    observer.observe(x)
    counts, r = abs_histogram(x, 32768)
    expected = kl_divergences(counts, r, 16)
    assert observer.fix_pos == min(expected, key=expected.get)


def test_merge_rejects_different_bins() -> None:
    with pytest.raises(CalibrationError, match="different settings"):
        MseObserver(num_bins=1024).merge(MseObserver(num_bins=2048))

"""AbsHistogram: exact binning, range growth by merging, merge, state round trips."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel_reference import np_histogram
from nndct_shared import kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_bins", [2, 16, 2048])
def test_single_update_matches_reference(dtype, num_bins):
    x = (np.random.default_rng(num_bins).standard_normal(5000) * 3).astype(dtype)
    h = kernels.AbsHistogram(num_bins)
    h.update(x)
    counts, e = np_histogram(x, num_bins)
    np.testing.assert_array_equal(h.counts, counts)
    assert h.range_exponent == e and h.range_max == 2.0**e
    assert h.counts.dtype == np.int64 and h.num_bins == num_bins and h.total == 5000
    assert h.bin_width == 2.0**e / num_bins
    np.testing.assert_array_equal(h.bin_edges(), np.arange(num_bins + 1) * 2.0**e / num_bins)


def test_exact_powers_of_two_and_bin_edges():
    h = kernels.AbsHistogram(8)
    h.update(np.array([4.0, 0.5, 0.49999997, -1.0, 0.0], np.float32))
    # max 4 = 2^2 is outside [0, 4): the range is [0, 8), bins of width 1.
    assert h.range_max == 8.0
    assert h.counts.tolist() == [3, 1, 0, 0, 1, 0, 0, 0]


def test_growth_by_merging_equals_building_with_the_final_range():
    rng = np.random.default_rng(1)
    parts = [rng.standard_normal(1000) * s for s in (0.01, 1.0, 0.1, 300.0, 2.0)]
    h = kernels.AbsHistogram(64)
    for p in parts:
        h.update(p)
    everything = np.concatenate(parts)
    counts, e = np_histogram(everything, 64)
    assert h.range_exponent == e
    np.testing.assert_array_equal(h.counts, counts)
    reversed_h = kernels.AbsHistogram(64)
    for p in reversed(parts):
        reversed_h.update(p)
    np.testing.assert_array_equal(reversed_h.counts, counts)


def test_merge():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(3000) * 0.2, rng.standard_normal(2000) * 50
    ha, hb = kernels.AbsHistogram(128), kernels.AbsHistogram(128)
    ha.update(a)
    hb.update(b)
    ha.merge(hb)
    counts, e = np_histogram(np.concatenate([a, b]), 128)
    np.testing.assert_array_equal(ha.counts, counts)
    assert ha.range_exponent == e and ha.total == 5000
    assert hb.total == 2000  # the argument is not modified
    empty = kernels.AbsHistogram(128)
    empty.merge(ha)
    np.testing.assert_array_equal(empty.counts, counts)
    ha.merge(ha)  # merging with itself doubles every count
    np.testing.assert_array_equal(ha.counts, 2 * counts)
    with pytest.raises(ValueError, match="num_bins"):
        ha.merge(kernels.AbsHistogram(64))
    with pytest.raises(TypeError, match="AbsHistogram"):
        ha.merge(counts)


def test_non_finite_values_are_skipped():
    h = kernels.AbsHistogram(16)
    h.update(np.array([np.nan, np.inf, -np.inf, 1.5, -0.25], np.float64))
    assert h.total == 2 and h.range_max == 2.0
    assert h.counts.tolist() == [0, 0, 1] + [0] * 9 + [1, 0, 0, 0]
    h.update(np.full(3, np.nan, np.float32))
    assert h.total == 2


def test_zeros_before_any_range():
    h = kernels.AbsHistogram(16)
    assert h.range_max == 0.0 and h.range_exponent is None and h.total == 0
    h.update(np.zeros(5, np.float32))
    assert h.range_max == 0.0 and h.counts[0] == 5 and h.total == 5
    h.update(np.array([3.0, 0.0]))
    assert h.range_max == 4.0 and h.counts[0] == 6 and h.counts[12] == 1
    h.update(np.zeros(0))
    assert h.total == 7


def test_large_update_is_threaded_and_exact(monkeypatch):
    x = (np.random.default_rng(4).standard_normal(500_000) * 1.7).astype(np.float32)
    counts, e = np_histogram(x, 2048)
    for threads in ("1", "2"):
        monkeypatch.setenv("NNDCT_NUM_THREADS", threads)
        h = kernels.AbsHistogram()
        h.update(x)
        np.testing.assert_array_equal(h.counts, counts)
        assert h.range_exponent == e


def test_state_round_trip_and_pickle():
    h = kernels.AbsHistogram(32)
    h.update(np.array([0.1, 5.0, -7.9, 0.0]))
    state = h.to_state()
    assert set(state) == {"num_bins", "range_exponent", "counts"} and state["range_exponent"] == 3
    back = kernels.AbsHistogram.from_state(state)
    np.testing.assert_array_equal(back.counts, h.counts)
    assert back.range_max == h.range_max and back.total == h.total == 4
    unpickled = pickle.loads(pickle.dumps(h))
    np.testing.assert_array_equal(unpickled.counts, h.counts)
    assert unpickled.range_exponent == 3
    copy = h.copy()
    copy.update(np.array([1.0]))
    assert h.total == 4 and copy.total == 5
    fresh = kernels.AbsHistogram.from_state(kernels.AbsHistogram(4).to_state())
    assert fresh.range_exponent is None and fresh.total == 0


@pytest.mark.parametrize(
    "state, error, match",
    [
        ({"num_bins": 4, "range_exponent": 1, "counts": [1, 2, 3]}, ValueError, "counts"),
        ({"num_bins": 4, "range_exponent": 1, "counts": [1, -2, 3, 0]}, ValueError, "negative"),
        ({"num_bins": 4, "range_exponent": None, "counts": [1, 2, 0, 0]}, ValueError, "zeros"),
        ({"num_bins": 4, "range_exponent": 1}, ValueError, "missing"),
        ({"num_bins": 4, "range_exponent": 1, "counts": [0.5, 0, 0, 0]}, TypeError, "integers"),
        ([1, 2], TypeError, "dict"),
    ],
)
def test_invalid_state(state, error, match):
    with pytest.raises(error, match=match):
        kernels.AbsHistogram.from_state(state)


@pytest.mark.parametrize("bad", [0, 1, 3, 1000, 2**25])
def test_num_bins_must_be_a_power_of_two(bad):
    with pytest.raises(ValueError, match="num_bins"):
        kernels.AbsHistogram(bad)


def test_update_rejects_integer_arrays():
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.AbsHistogram().update(np.arange(4))


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=50),
    b=st.lists(st.floats(-1e6, 1e6, width=32), max_size=50),
    nb_log2=st.integers(1, 8),
)
def test_property_update_and_merge_equal_one_pass(a, b, nb_log2):
    nb = 2**nb_log2
    xa, xb = np.array(a, np.float32), np.array(b, np.float32)
    h1, h2 = kernels.AbsHistogram(nb), kernels.AbsHistogram(nb)
    h1.update(xa)
    h2.update(xb)
    h1.merge(h2)
    counts, e = np_histogram(np.concatenate([xa, xb]), nb)
    np.testing.assert_array_equal(h1.counts, counts)
    assert h1.range_exponent == e

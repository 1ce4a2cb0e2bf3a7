"""diffs_fix_pos / maxmin_fix_pos against the NumPy model of the spec's search."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel_reference import np_diffs_fix_pos
from nndct_shared import kernels

DTYPES = (np.float32, np.float64)


def test_hand_computed_example():
    # bw 4: lb = -8.5, ub = 7.5; step = max(0.75 / -8.5, 0.75 / 7.5) = 0.1;
    # max_scale = floor(log2(10)) = 3, and 0.75 * 2^3 = 6 is exact: error 0 at the first candidate.
    x = np.full(10, 0.75, np.float32)
    assert kernels.maxmin_fix_pos(x, 4) == 3
    assert kernels.diffs_fix_pos(x, 4) == 3


def test_first_strictly_smallest_error_wins():
    # Integers 1..3 at bw 16: max_scale = floor(log2(32767.5 / 3)) = 13, and every candidate
    # 13..17 reproduces them exactly (error 0): the lowest one must win.
    x = np.array([1.0, 2.0, 3.0], np.float32)
    assert kernels.diffs_fix_pos(x, 16, max_fix_pos=None) == 13
    assert kernels.diffs_fix_pos(x, 16) == 12  # the default cap
    assert kernels.maxmin_fix_pos(x, 16, max_fix_pos=None) == 13


def test_search_moves_above_max_scale_when_that_reduces_the_error():
    # One outlier fixes max_scale; the many small values prefer a finer grid, accepting the
    # outlier's clipping error.
    x = np.concatenate([np.full(1000, 0.01, np.float32), [1.0]]).astype(np.float32)
    ms = kernels.maxmin_fix_pos(x, 8, max_fix_pos=None)
    d = kernels.diffs_fix_pos(x, 8, max_fix_pos=None)
    assert ms == 6 and d > ms
    assert d == np_diffs_fix_pos(x, 8, max_fix_pos=None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bw", [2, 4, 8, 12, 16])
@pytest.mark.parametrize("method", [2, 3, 4, 5])
def test_random_tensors_match_reference(dtype, bw, method):
    rng = np.random.default_rng(bw * 10 + method)
    for scale in (1e-3, 0.3, 7.0, 3e3):
        x = (rng.standard_normal(2000) * scale).astype(dtype)
        for max_fp in (12, None):
            assert kernels.diffs_fix_pos(x, bw, 5, method, max_fp) == np_diffs_fix_pos(x, bw, 5, method, max_fp)
        assert kernels.maxmin_fix_pos(x, bw, None) == np_diffs_fix_pos(x, bw, 1, method, None)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_zero_tensor(dtype):
    x = np.zeros(100, dtype)
    assert kernels.diffs_fix_pos(x, 16) == 12
    assert kernels.diffs_fix_pos(x, 16, max_fix_pos=5) == 5
    assert kernels.diffs_fix_pos(x, 16, max_fix_pos=None) == kernels.ZERO_TENSOR_FIX_POS == 18
    assert kernels.maxmin_fix_pos(x, 8) == 12
    assert kernels.maxmin_fix_pos(x, 8, max_fix_pos=None) == 18


def test_step_below_smallest_normal_counts_as_zero():
    x = np.array([0.0, 1e-40, -1e-41], np.float32)  # subnormal float32 values
    assert kernels.diffs_fix_pos(x, 8, max_fix_pos=None) == 18
    y = np.array([0.0, 1e-300], np.float64)
    assert kernels.maxmin_fix_pos(y, 8, max_fix_pos=7) == 7


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_values_are_ignored(dtype):
    rng = np.random.default_rng(5)
    finite = (rng.standard_normal(500) * 0.2).astype(dtype)
    dirty = np.concatenate([finite[:100], [np.nan, np.inf, -np.inf], finite[100:], [np.nan]]).astype(dtype)
    for max_fp in (12, None):
        assert kernels.diffs_fix_pos(dirty, 8, max_fix_pos=max_fp) == kernels.diffs_fix_pos(finite, 8, max_fix_pos=max_fp)
        assert kernels.maxmin_fix_pos(dirty, 8, max_fp) == kernels.maxmin_fix_pos(finite, 8, max_fp)
    assert kernels.diffs_fix_pos(np.array([np.inf, 0.0], dtype), 8) == 12  # only the zero counts


@pytest.mark.parametrize("x", [np.array([np.nan, np.inf]), np.array([-np.inf], np.float32)])
def test_no_finite_value_is_an_error(x):
    with pytest.raises(ValueError, match="no finite value"):
        kernels.diffs_fix_pos(x, 8)
    with pytest.raises(ValueError, match="no finite value"):
        kernels.maxmin_fix_pos(x, 8)


def test_empty_tensor_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        kernels.diffs_fix_pos(np.zeros(0, np.float32), 8)
    with pytest.raises(ValueError, match="empty"):
        kernels.maxmin_fix_pos(np.zeros((3, 0)), 8)


def test_argument_validation():
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="search_range"):
        kernels.diffs_fix_pos(x, 8, search_range=0)
    with pytest.raises(ValueError, match="search_range"):
        kernels.diffs_fix_pos(x, 8, search_range=65)
    with pytest.raises(ValueError, match="bit_width"):
        kernels.diffs_fix_pos(x, 1)
    with pytest.raises(ValueError, match="valid methods"):
        kernels.diffs_fix_pos(x, 8, method=1)
    with pytest.raises(TypeError, match="max_fix_pos"):
        kernels.diffs_fix_pos(x, 8, max_fix_pos=12.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.diffs_fix_pos(np.ones(4, np.int64), 8)


def test_search_range_one_is_maxmin_and_larger_ranges_reach_further():
    x = (np.random.default_rng(9).standard_normal(3000) * 0.01).astype(np.float32)
    assert kernels.diffs_fix_pos(x, 8, search_range=1, max_fix_pos=None) == kernels.maxmin_fix_pos(x, 8, None)
    for r in (2, 9, 20):
        assert kernels.diffs_fix_pos(x, 8, r, 2, None) == np_diffs_fix_pos(x, 8, r, 2, None)


def test_huge_float64_values():
    # DBL_MAX at bw 2: step = DBL_MAX / 1.5, 1 / step ~ 2^-1023.6: max_scale = -1024, a position
    # whose 2^-fp is not a double (the kernel splits the scaling in two exact factors).
    x = np.array([np.finfo(np.float64).max, -1e300, 3.0], np.float64)
    assert kernels.maxmin_fix_pos(x, 2) == -1024
    with np.errstate(over="ignore", invalid="ignore"):
        for method in (2, 3, 4):
            assert kernels.diffs_fix_pos(x, 2, method=method) == np_diffs_fix_pos(x, 2, 5, method)
            assert kernels.diffs_fix_pos(x[1:], 3, method=method) == np_diffs_fix_pos(x[1:], 3, 5, method)


def test_large_tensor_is_deterministic_across_thread_counts(monkeypatch):
    x = (np.random.default_rng(11).standard_normal(400_000) * 2).astype(np.float32)
    found = set()
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NNDCT_NUM_THREADS", threads)
        found.add(kernels.diffs_fix_pos(x, 8, max_fix_pos=None))
    assert found == {np_diffs_fix_pos(x, 8, max_fix_pos=None)}


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=60),
    bw=st.integers(2, 16),
    method=st.sampled_from([2, 3, 4, 5]),
)
def test_property_matches_reference(values, bw, method):
    x = np.array(values, np.float32)
    assert kernels.diffs_fix_pos(x, bw, 5, method, None) == np_diffs_fix_pos(x, bw, 5, method, None)

"""The LSTM loops' vector kernels against their scalar definitions.

`dense_rows` (the matrix products of both LSTM modes) tiles and reorders the additions on CPUs
with AVX2/AVX-512; that is exact only because every sum is an integer below 2^53 times one
scale, so its result must equal the portable loop bit for bit. The test-mode step kernel's table
node (branch-free, with the saturation folded into clamps) must equal the scalar table node of
lstm_int_ops.h for every input code and every fix-position pair.
"""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared import _kernels as core


def test_the_dispatched_kernel_is_reported():
    assert core._dense_rows_isa() in ("avx512", "avx2", "portable")


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 13])
@pytest.mark.parametrize("cols", [1, 7, 8, 15, 16, 17, 40, 400])
def test_dense_rows_equals_the_portable_loop_on_codes(rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    inner = 37
    x = rng.integers(-32768, 32768, size=(rows, inner)).astype(np.float64)
    wt = rng.integers(-32768, 32768, size=(inner, cols)).astype(np.float64)
    x[0, :5] = 0.0  # zero inputs (the portable loop skips them)
    fast = core._dense_rows(x, wt)
    slow = core._dense_rows(x, wt, portable=True)
    assert np.array_equal(fast, slow)
    exact = x.astype(np.int64) @ wt.astype(np.int64)  # exact integers (|sum| < 2^53)
    assert np.array_equal(fast, exact.astype(np.float64))


def test_dense_rows_on_values_of_two_power_of_two_grids():
    """Calibration's operands: fake-quantized values, not codes; still exact sums."""
    rng = np.random.default_rng(1)
    x = rng.integers(-2**15, 2**15, size=(9, 132)) * 2.0**-11
    wt = rng.integers(-2**15, 2**15, size=(132, 400)) * 2.0**-14
    assert np.array_equal(core._dense_rows(x, wt), core._dense_rows(x, wt, portable=True))


@pytest.mark.parametrize("is_tanh", [False, True])
@pytest.mark.parametrize("bit_width", [16, 8])
def test_step_table_node_equals_the_scalar_table_node(is_tanh, bit_width):
    lo, hi = -(2 ** (bit_width - 1)), 2 ** (bit_width - 1) - 1
    codes = np.unique(np.concatenate([
        np.arange(lo, hi + 1, max(1, (hi - lo) // 5000)),
        np.arange(-3000, 3001),
        [lo, lo + 1, -1, 0, 1, hi - 1, hi],
    ])).astype(np.int64)
    for fin in range(-4, 21):
        for fout in (bit_width - 1, 15, 16, 7, 3):
            vec, scalar = core._lstm_table_node(codes, is_tanh, fin, fout, bit_width)
            assert np.array_equal(vec, scalar), (fin, fout)

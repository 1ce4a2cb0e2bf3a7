"""The output statistics of bias correction (`csrc/include/nndct/output_stats.h`).

`channel_difference_sums` against the order of the additions the header defines, written out in
Python, on the layouts the front ends hand over (NCHW, NHWC, [N, features]); the same bits on
any number of threads. `grid_extent` against exact rational arithmetic (`fractions.Fraction`).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from nndct_shared.kernels import channel_difference_sums, grid_extent

LANES = 8


def reference_sums(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """The definition, one addition at a time in float64."""
    axis %= a.ndim
    outer = int(np.prod(a.shape[:axis], dtype=np.int64))
    channels = a.shape[axis]
    da = a.astype(np.float64).reshape(outer, channels, -1)
    db = b.astype(np.float64).reshape(outer, channels, -1)
    inner = da.shape[2]
    body = inner - inner % LANES
    out = np.zeros(channels)
    for c in range(channels):
        total = 0.0
        for o in range(outer):
            d = [float(x) - float(y) for x, y in zip(da[o, c], db[o, c])]
            lanes = [0.0] * LANES
            for i in range(0, body, LANES):
                for k in range(LANES):
                    lanes[k] += d[i + k]
            run = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
            for i in range(body, inner):
                run += d[i]
            total += run
        out[c] = total
    return out


def _pair(shape: tuple[int, ...], dtype: type, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A float output with channel scales over 4 decades and its value on a 2^-6 grid."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 2, shape)
    return (np.round(y * 64.0) / 64.0).astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("shape, axis", [
    ((5, 3, 7, 9), 1),      # NCHW, runs of 63 (7 lanes' rounds and a tail)
    ((2, 4, 8), 1),         # runs of exactly one round of lanes
    ((3, 6, 5), 1),         # runs shorter than the lanes (the tail only)
    ((4, 5, 3, 19), -1),    # NHWC: channels side by side
    ((37, 10), -1),         # linear [N, features]
    ((3, 9, 4, 10), 1),     # inner 40 and an odd channel count
    ((1, 1, 1), 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_follow_the_defined_order(shape, axis, dtype):
    q, f = _pair(shape, dtype, seed=len(shape) * 10 + shape[0])
    got = channel_difference_sums(q, f, axis)
    assert got.dtype == np.float64
    assert got.tobytes() == reference_sums(q, f, axis).tobytes()


@pytest.mark.parametrize("shape, axis", [((64, 48, 33, 35), 1), ((80, 30, 30, 40), -1), ((9000, 130), -1)])
def test_large_outputs_give_the_same_bits_on_any_number_of_threads(monkeypatch, shape, axis):
    """Large enough to be split over threads (channel groups): the sums do not depend on it."""
    q, f = _pair(shape, np.float32, seed=3)
    monkeypatch.setenv("NNDCT_NUM_THREADS", "1")
    one = channel_difference_sums(q, f, axis)
    for threads in ("2", "3", "7"):
        monkeypatch.setenv("NNDCT_NUM_THREADS", threads)
        assert channel_difference_sums(q, f, axis).tobytes() == one.tobytes()
    exact = np.subtract(q, f, dtype=np.float64).sum(axis=tuple(i for i in range(q.ndim) if i != axis % q.ndim))
    assert np.allclose(one, exact, rtol=1e-9, atol=1e-9)  # a sum of the same values, another order


def test_mixed_dtypes_and_layouts():
    q, f = _pair((4, 3, 10), np.float32, seed=5)
    mixed = channel_difference_sums(q, f.astype(np.float64), 1)
    assert mixed.tobytes() == channel_difference_sums(q.astype(np.float64), f.astype(np.float64), 1).tobytes()
    # a non-contiguous view is read as its contiguous copy
    qt, ft = np.swapaxes(q, 1, 2), np.swapaxes(f, 1, 2)
    assert channel_difference_sums(qt, ft, 2).tobytes() == channel_difference_sums(
        np.ascontiguousarray(qt), np.ascontiguousarray(ft), 2).tobytes()
    with pytest.raises(ValueError, match="shapes differ"):
        channel_difference_sums(q, f[:, :2], 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        channel_difference_sums(q.astype(np.int32), f.astype(np.int32), 1)
    with pytest.raises(ValueError, match="out of range"):
        channel_difference_sums(q, f, 3)


def reference_extent(x: np.ndarray) -> tuple[int, float, bool]:
    """Fraction bits from each value's exact rational value (denominators are powers of two)."""
    bits, largest, finite = 0, 0.0, True
    for v in x.reshape(-1).tolist():
        if not np.isfinite(v):
            finite = False
            continue
        if v != 0.0:
            bits = max(bits, Fraction(v).denominator.bit_length() - 1)
            largest = max(largest, abs(v))
    return bits, largest, finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_extent_is_the_exact_grid(dtype):
    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    cases = [
        np.round(rng.standard_normal(1000) * 32) / 32,                   # a 2^-5 grid
        rng.standard_normal(999) * 1e3,                                  # no coarse grid
        np.array([0.0, -0.0, 0.0]),                                      # only zeros
        np.array([3.0, -1024.0, 2.0 ** 40]),                             # integers
        np.array([info.smallest_subnormal, -3 * float(info.smallest_subnormal), 1.0]),  # subnormals
        np.array([0.75, np.inf, -2.5, np.nan]),                          # non-finite values left out
        np.ldexp(rng.integers(-127, 128, 70000).astype(np.float64), -7),  # several chunks
    ]
    for values in cases:
        x = values.astype(dtype)
        assert grid_extent(x) == reference_extent(x), x[:5]
    with pytest.raises(TypeError, match="float32 or float64"):
        grid_extent(np.arange(4))


def test_grid_extent_is_the_same_on_any_number_of_threads(monkeypatch):
    rng = np.random.default_rng(12)
    x = np.ldexp(rng.integers(-127, 128, 300000), -6).astype(np.float32)
    x[123457] = 2.0 ** -20  # the finest value in one chunk only
    monkeypatch.setenv("NNDCT_NUM_THREADS", "1")
    one = grid_extent(x)
    assert one == (20, 127 / 64, True)
    for threads in ("2", "5"):
        monkeypatch.setenv("NNDCT_NUM_THREADS", threads)
        assert grid_extent(x) == one

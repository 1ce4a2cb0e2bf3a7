"""Per-channel kernels: each channel must equal the per-tensor kernel on its slice."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_reference import np_diffs_fix_pos, np_fix_codes, np_fix_neuron
from nndct_shared import kernels

SHAPE = (3, 5, 4, 2)


def _data(dtype, seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    # Channel scales differ by axis position so that per-channel positions differ.
    return (rng.standard_normal(shape) * rng.uniform(0.01, 20, shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -4])
@pytest.mark.parametrize("method", [2, 3, 4, 5])
def test_fix_per_channel_matches_slices(dtype, axis, method):
    x = _data(dtype, seed=axis + 10)
    channels = x.shape[axis]
    fps = np.arange(channels) * 3 - 2  # -2, 1, 4, ...
    out = kernels.fix_neuron_per_channel(x, 8, fps, method, axis)
    codes = kernels.fix_codes_per_channel(x, 8, fps, method, axis)
    assert out.dtype == dtype and codes.dtype == np.int8
    for c in range(channels):
        sl = np.take(x, c, axis=axis)
        np.testing.assert_array_equal(np.take(out, c, axis=axis), np_fix_neuron(sl, 8, int(fps[c]), method))
        np.testing.assert_array_equal(np.take(codes, c, axis=axis), np_fix_codes(sl, 8, int(fps[c]), method))


def test_fix_per_channel_in_place_and_large():
    x = _data(np.float32, seed=3, shape=(64, 3000))  # 192K elements: threaded
    fps = np.arange(64, dtype=np.int64) % 9
    expected = kernels.fix_neuron_per_channel(x, 16, fps, "floor", 0)
    for c in range(0, 64, 7):
        np.testing.assert_array_equal(expected[c], np_fix_neuron(x[c], 16, int(fps[c]), 4))
    assert kernels.fix_neuron_per_channel(x, 16, fps, "floor", 0, out=x) is x
    np.testing.assert_array_equal(x, expected)
    last = _data(np.float32, seed=4, shape=(70000, 3))  # channel axis last: runs of length 1
    got = kernels.fix_codes_per_channel(last, 8, [0, 3, 6], 3, -1)
    for c in range(3):
        np.testing.assert_array_equal(got[:, c], np_fix_codes(last[:, c], 8, [0, 3, 6][c], 3))


def test_fix_pos_argument_checks():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="one entry per channel"):
        kernels.fix_neuron_per_channel(x, 8, [1, 2], 2, 1)
    with pytest.raises(ValueError, match=r"\[-126, 126\]"):
        kernels.fix_neuron_per_channel(x, 8, [1, 200], 2, 0)
    with pytest.raises(TypeError, match="integers"):
        kernels.fix_codes_per_channel(x, 8, [1.5, 2.0], 2, 0)
    with pytest.raises(ValueError, match="out of range"):
        kernels.fix_neuron_per_channel(x, 8, [1, 2], 2, 2)
    with pytest.raises(ValueError, match="at least one dimension"):
        kernels.fix_neuron_per_channel(np.float32(1.0), 8, [1], 2, 0)
    # Integral floats are accepted as positions.
    np.testing.assert_array_equal(
        kernels.fix_neuron_per_channel(x + 0.3, 8, np.array([1.0, 2.0]), 2, 0),
        kernels.fix_neuron_per_channel(x + 0.3, 8, [1, 2], 2, 0),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_calibration_per_channel_matches_slices(dtype, axis):
    x = _data(dtype, seed=20 + axis)
    channels = x.shape[axis]
    d = kernels.diffs_fix_pos_per_channel(x, 8, axis, max_fix_pos=None)
    m = kernels.maxmin_fix_pos_per_channel(x, 8, axis, max_fix_pos=None)
    assert d.dtype == np.int32 and d.shape == (channels,)
    for c in range(channels):
        sl = np.ascontiguousarray(np.take(x, c, axis=axis))
        assert d[c] == np_diffs_fix_pos(sl, 8, 5, 2, None)
        assert d[c] == kernels.diffs_fix_pos(sl, 8, max_fix_pos=None)
        assert m[c] == kernels.maxmin_fix_pos(sl, 8, None)
    capped = kernels.diffs_fix_pos_per_channel(x, 8, axis, search_range=3, method="floor")
    for c in range(channels):
        sl = np.ascontiguousarray(np.take(x, c, axis=axis))
        assert capped[c] == np_diffs_fix_pos(sl, 8, 3, 4, 12)


def test_calibration_per_channel_large_and_deterministic(monkeypatch):
    x = _data(np.float32, seed=5, shape=(2, 200_000))  # few channels, many blocks each
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("NNDCT_NUM_THREADS", threads)
        results.append(kernels.diffs_fix_pos_per_channel(x, 8, 0, max_fix_pos=None).tolist())
    assert results[0] == results[1] == [np_diffs_fix_pos(x[c], 8, 5, 2, None) for c in range(2)]


def test_calibration_per_channel_edge_cases():
    x = np.ones((3, 4), np.float32)
    x[1] = 0.0
    assert kernels.diffs_fix_pos_per_channel(x, 8, 0).tolist() == [6, 12, 6]
    assert kernels.maxmin_fix_pos_per_channel(x, 8, 0, max_fix_pos=None).tolist() == [6, 18, 6]
    x[2] = np.nan
    with pytest.raises(ValueError, match="channel 2 has no finite value"):
        kernels.diffs_fix_pos_per_channel(x, 8, 0)
    with pytest.raises(ValueError, match="empty"):
        kernels.maxmin_fix_pos_per_channel(np.zeros((0, 3), np.float32), 8, 1)

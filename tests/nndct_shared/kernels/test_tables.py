"""Sigmoid/tanh table lookups: documented entries, saturation and the closed form."""
from __future__ import annotations

import numpy as np
import pytest

from kernel_reference import sigmoid_table_ref, tanh_table_ref
from nndct_shared import kernels

TS = sigmoid_table_ref()
TT = tanh_table_ref()


def sigmoid_closed_form(x: np.ndarray) -> np.ndarray:
    """Codes at 2^-15 from the spec's closed form (x on the grid)."""
    idx = np.clip(np.floor(x.astype(np.float64) * 128), -1024, 1023).astype(np.int64) + 1024
    return np.where(x >= 8, 32767, np.where(x < -8, 0, TS[idx]))


def tanh_closed_form(x: np.ndarray) -> np.ndarray:
    idx = np.clip(np.floor(x.astype(np.float64) * 256), -1024, 1023).astype(np.int64) + 1024
    return np.where(x >= 4, 32767, np.where(x < -4, -32768, TT[idx]))


def test_documented_entries():
    ts, tt = kernels.sigmoid_table(), kernels.tanh_table()
    assert ts.dtype == np.int16 and ts.shape == (2048,)
    assert ts[1024] == 16384 and ts[0] == 11 and ts[2047] == 32757
    assert tt[1033] == 1152 and tt[1024] == 0 and tt[0] == -32746 and tt[2047] == 32746
    np.testing.assert_array_equal(ts, TS)
    np.testing.assert_array_equal(tt, TT)
    assert np.all(np.diff(ts.astype(int)) >= 0) and np.all(np.diff(tt.astype(int)) >= 0)


def test_saturation_rules():
    fp = 12
    s = kernels.sigmoid_table_lookup(np.array([8.0, 100.0, np.inf, -8.0, -8.0 - 2**-12, -np.inf], np.float32), fp)
    assert (s * 32768).tolist() == [32767, 32767, 32767, 11, 0, 0]
    t = kernels.tanh_table_lookup(np.array([4.0, 7.5, np.inf, -4.0, -4.0 - 2**-12, -np.inf], np.float64), fp)
    assert (t * 32768).tolist() == [32767, 32767, 32767, -32746, -32768, -32768]
    assert kernels.tanh_table_lookup(np.array([-5.0]), fp)[0] == -1.0
    assert np.isnan(kernels.sigmoid_table_lookup(np.array([np.nan], np.float32), fp)[0])
    assert np.isnan(kernels.tanh_table_lookup(np.array([np.nan]), fp)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_closed_form_for_every_grid_input_at_fix_pos_12(dtype):
    codes = np.arange(-40000, 40000)  # beyond the 16-bit range on both sides
    x = (codes / 4096.0).astype(dtype)
    s = kernels.sigmoid_table_lookup(x, 12)
    t = kernels.tanh_table_lookup(x, 12)
    assert s.dtype == dtype and t.dtype == dtype
    np.testing.assert_array_equal(s * 32768, sigmoid_closed_form(x))
    np.testing.assert_array_equal(t * 32768, tanh_closed_form(x))
    np.testing.assert_array_equal(kernels.sigmoid_table_codes(codes, 12), sigmoid_closed_form(x))
    np.testing.assert_array_equal(kernels.tanh_table_codes(codes.astype(np.int32), 12), tanh_closed_form(x))


@pytest.mark.parametrize("fp", [-3, 0, 3, 5, 7, 8, 10, 15, 20])
def test_closed_form_at_other_fix_positions(fp):
    lim = int(9 * 2.0**fp) + 3
    codes = np.arange(-lim, lim + 1, max(1, lim // 20000), dtype=np.int64)
    x = codes * 2.0**-fp
    np.testing.assert_array_equal(kernels.sigmoid_table_lookup(x, fp) * 32768, sigmoid_closed_form(x))
    np.testing.assert_array_equal(kernels.tanh_table_lookup(x, fp) * 32768, tanh_closed_form(x))
    np.testing.assert_array_equal(kernels.sigmoid_table_codes(codes, fp), sigmoid_closed_form(x))
    np.testing.assert_array_equal(kernels.tanh_table_codes(codes, fp), tanh_closed_form(x))


def test_code_variants_types_and_extremes():
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        codes = np.array([info.min, -1, 0, 1, info.max], dtype=dtype)
        out = kernels.sigmoid_table_codes(codes, 0)
        assert out.dtype == np.int16
        x = codes.astype(np.float64)
        np.testing.assert_array_equal(out, sigmoid_closed_form(x))
        np.testing.assert_array_equal(kernels.tanh_table_codes(codes, 0), tanh_closed_form(x))
    # Huge codes at a huge fix position: x = code * 2^-100, tiny values around 0.
    big = np.array([2**62, -(2**62), -1], np.int64)
    assert kernels.sigmoid_table_codes(big, 100).tolist() == [TS[1024], TS[1023], TS[1023]]
    assert kernels.tanh_table_codes(big, 100).tolist() == [TT[1024], TT[1023], TT[1023]]
    with pytest.raises(TypeError, match="signed integer"):
        kernels.sigmoid_table_codes(np.array([0.5]), 12)
    assert kernels.sigmoid_table_codes(np.array([4096], np.uint16), 12).tolist() == [TS[1024 + 128]]


def test_off_grid_inputs_are_truncated_toward_zero_first():
    # -0.0001 * 2^12 = -0.41 truncates to code 0 (the reference's int cast), so the entry is
    # T[1024], not T[1023] as floor(x * 128) of the raw value would give.
    x = np.array([-0.0001, 0.0001, -1.00001], np.float64)
    got = kernels.sigmoid_table_lookup(x, 12) * 32768
    assert got.tolist() == [TS[1024], TS[1024], TS[1024 - 128]]


def test_large_arrays_and_validation():
    x = (np.random.default_rng(0).integers(-40000, 40000, 300_000) / 4096.0).astype(np.float32)
    np.testing.assert_array_equal(kernels.sigmoid_table_lookup(x, 12) * 32768, sigmoid_closed_form(x))
    out = np.empty_like(x)
    assert kernels.tanh_table_lookup(x, 12, out=out) is out
    np.testing.assert_array_equal(out * 32768, tanh_closed_form(x))
    with pytest.raises(ValueError, match="fix_pos"):
        kernels.sigmoid_table_lookup(x, 127)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.tanh_table_lookup(np.arange(3), 12)

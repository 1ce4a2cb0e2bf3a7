"""Sigmoid and tanh by the reference's 2048-entry lookup tables (spec section 2).

Input on the 2^-fix_pos grid, output on the 2^-15 grid:

* sigmoid: x >= 8 -> 1 - 2^-15, x < -8 -> 0, else T_s[1024 + floor(x * 128)] * 2^-15,
  T_s[i] = round(32768 * sigmoid((i - 1024) / 128));
* tanh: x >= 4 -> 1 - 2^-15, x < -4 -> -1, else T_t[1024 + floor(x * 256)] * 2^-15,
  T_t[i] = round(32768 * tanh((i - 1024) / 256)).

An input off the grid is first truncated toward zero onto it (x * 2^fix_pos cast to an
integer, as the reference does); saturation is decided on the value itself. NaN gives NaN.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._args import as_float_array, check_fix_pos, prepare_out
from ._core import core

_CODE_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64))


def sigmoid_table() -> np.ndarray:
    """A copy of the sigmoid table T_s (2048 int16 codes at 2^-15)."""
    return core.sigmoid_table()


def tanh_table() -> np.ndarray:
    """A copy of the tanh table T_t (2048 int16 codes at 2^-15)."""
    return core.tanh_table()


def sigmoid_table_lookup(x: np.ndarray, fix_pos: int, out: np.ndarray | None = None) -> np.ndarray:
    """Table sigmoid of x (on the 2^-fix_pos grid); result in x's dtype on the 2^-15 grid."""
    arr = as_float_array(x)
    fp = check_fix_pos(fix_pos)
    dst = prepare_out(out, arr, x)
    core.sigmoid_table_lookup(arr, dst, fp)
    return dst


def tanh_table_lookup(x: np.ndarray, fix_pos: int, out: np.ndarray | None = None) -> np.ndarray:
    """Table tanh of x (on the 2^-fix_pos grid); result in x's dtype on the 2^-15 grid."""
    arr = as_float_array(x)
    fp = check_fix_pos(fix_pos)
    dst = prepare_out(out, arr, x)
    core.tanh_table_lookup(arr, dst, fp)
    return dst


def _as_code_array(codes: Any) -> np.ndarray:
    arr = codes if isinstance(codes, np.ndarray) else np.asarray(codes)
    if arr.dtype.kind == "u" and arr.dtype.itemsize < 8:
        arr = arr.astype(np.int64)
    if arr.dtype not in _CODE_DTYPES:
        raise TypeError(
            f"codes must be a signed integer array (int8/16/32/64), got dtype {arr.dtype}; "
            "use fix_codes to turn real values into codes"
        )
    return np.ascontiguousarray(arr)


def sigmoid_table_codes(codes: np.ndarray, fix_pos: int) -> np.ndarray:
    """Table sigmoid of integer codes at 2^-fix_pos; int16 codes at 2^-15 (0 .. 32767)."""
    arr = _as_code_array(codes)
    fp = check_fix_pos(fix_pos)
    dst = np.empty(arr.shape, dtype=np.int16)
    core.sigmoid_table_codes(arr, dst, fp)
    return dst


def tanh_table_codes(codes: np.ndarray, fix_pos: int) -> np.ndarray:
    """Table tanh of integer codes at 2^-fix_pos; int16 codes at 2^-15 (-32768 .. 32767)."""
    arr = _as_code_array(codes)
    fp = check_fix_pos(fix_pos)
    dst = np.empty(arr.shape, dtype=np.int16)
    core.tanh_table_codes(arr, dst, fp)
    return dst

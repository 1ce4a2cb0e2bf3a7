"""Argument checks shared by the kernel wrappers.

Why: the compiled module accepts only exact dtypes and C-contiguous buffers (so it never copies
behind the caller's back); these helpers turn everything else into either a documented copy
(non-contiguous input) or a clear exception that says how to fix the call.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MIN_BIT_WIDTH, MAX_BIT_WIDTH = 2, 32
MIN_FIX_POS, MAX_FIX_POS = -126, 126


def as_float_array(x: Any, name: str = "x") -> np.ndarray:
    """Return x as a C-contiguous float32/float64 array; no copy if it already is one."""
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}; convert it first, "
            f"e.g. {name}.astype(np.float32)"
        )
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def check_int(value: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """Return value as a Python int, checking its type and the closed range [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")
    return v


def check_bit_width(bit_width: Any) -> int:
    return check_int(bit_width, "bit_width", MIN_BIT_WIDTH, MAX_BIT_WIDTH)


def check_fix_pos(fix_pos: Any) -> int:
    return check_int(fix_pos, "fix_pos", MIN_FIX_POS, MAX_FIX_POS)


def check_max_fix_pos(max_fix_pos: Any) -> int | None:
    return None if max_fix_pos is None else check_int(max_fix_pos, "max_fix_pos")


def code_dtype(bit_width: int) -> np.dtype:
    """The narrowest signed integer type that holds bw-bit codes."""
    if bit_width <= 8:
        return np.dtype(np.int8)
    if bit_width <= 16:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


def prepare_out(out: Any, x: np.ndarray, original: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """Validate a caller-supplied output array (or allocate one when out is None).

    out may be the input itself (in place); any other overlap with the input is rejected
    because the kernels read and write element by element.
    """
    want = x.dtype if dtype is None else dtype
    if out is None:
        return np.empty(x.shape, dtype=want)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != want:
        raise TypeError(f"out must have dtype {want}, got {out.dtype}")
    if out.shape != x.shape:
        raise ValueError(f"out must have the input's shape {x.shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if out is not original and out is not x and np.may_share_memory(out, x):
        same_buffer = (
            out.__array_interface__["data"][0] == x.__array_interface__["data"][0]
            and out.strides == x.strides
        )
        if not same_buffer:
            raise ValueError("out overlaps the input without being the same array; pass out=x or a separate array")
    return out


def normalize_axis(axis: Any, ndim: int) -> int:
    a = check_int(axis, "axis")
    if ndim == 0:
        raise ValueError("per-channel kernels need an array with at least one dimension")
    if not -ndim <= a < ndim:
        raise ValueError(f"axis {a} is out of range for an array with {ndim} dimensions")
    return a % ndim


def channel_layout(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(outer, channels, inner) of a row-major array split at axis."""
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return outer, int(shape[axis]), inner


def as_fix_pos_array(fix_pos: Any, channels: int) -> np.ndarray:
    """One int32 fix position per channel, each within [-126, 126]."""
    fp = np.asarray(fix_pos)
    if fp.dtype.kind not in "iu":
        if fp.dtype.kind == "f" and fp.size and np.all(np.isfinite(fp)) and np.all(fp == np.round(fp)):
            fp = fp.astype(np.int64)
        else:
            raise TypeError(f"fix_pos must hold integers, got dtype {fp.dtype}")
    fp = fp.reshape(-1)
    if fp.size != channels:
        raise ValueError(f"fix_pos must have one entry per channel ({channels}), got {fp.size}")
    if fp.size and (fp.min() < MIN_FIX_POS or fp.max() > MAX_FIX_POS):
        raise ValueError(f"every fix_pos must be in [{MIN_FIX_POS}, {MAX_FIX_POS}], got range [{fp.min()}, {fp.max()}]")
    return np.ascontiguousarray(fp, dtype=np.int32)

"""Fix-position calibration from a tensor: the reference "diffs" search and "maxmin".

Semantics (spec section 1, "Diffs calibration"): lb = -2^(bw-1) - 0.5, ub = 2^(bw-1) - 0.5,
step = max(x_min / lb, x_max / ub) and max_scale = floor(log2(1 / step)), both computed in the
input dtype like the reference template kernel. diffs tries fp = max_scale ... max_scale +
search_range - 1, keeps the first with the strictly smallest sum of squared fake-quantization
error (accumulated in double over fixed blocks, so the result does not depend on the number of
threads) and returns min(fp, max_fix_pos). maxmin returns min(max_scale, max_fix_pos).

Defined edge cases:
* only finite values count (NaN/inf are left out of min/max and error);
* no finite value, or an empty tensor/channel: ValueError;
* step below 2^-126 (all zeros, or only tiny values): every fix position reproduces the data,
  so the most precise allowed one is returned: max_fix_pos, or 18 (the reference CUDA
  kernel's all-zero answer) when max_fix_pos is None.
"""
from __future__ import annotations

import numpy as np

from ._args import as_float_array, channel_layout, check_bit_width, check_int, check_max_fix_pos, normalize_axis
from ._core import core
from .methods import resolve_method

#: fix position of an all-zero tensor when there is no max_fix_pos cap (reference CUDA kernel).
ZERO_TENSOR_FIX_POS = 18
#: largest accepted search_range (the reference uses 5, or 1 for inputs).
MAX_SEARCH_RANGE = 64


def _check_range(search_range: int) -> int:
    return check_int(search_range, "search_range", 1, MAX_SEARCH_RANGE)


def diffs_fix_pos(
    x: np.ndarray,
    bit_width: int,
    search_range: int = 5,
    method: int | str = 2,
    max_fix_pos: int | None = 12,
) -> int:
    """The reference diffs search: the fix position with the least squared error."""
    arr = as_float_array(x)
    return int(
        core.diffs_fix_pos(
            arr, check_bit_width(bit_width), _check_range(search_range), resolve_method(method),
            check_max_fix_pos(max_fix_pos),
        )
    )


def maxmin_fix_pos(x: np.ndarray, bit_width: int, max_fix_pos: int | None = 12) -> int:
    """The largest fix position at which min and max fit (no error search), capped."""
    arr = as_float_array(x)
    return int(core.maxmin_fix_pos(arr, check_bit_width(bit_width), check_max_fix_pos(max_fix_pos)))


def diffs_fix_pos_per_channel(
    x: np.ndarray,
    bit_width: int,
    axis: int,
    search_range: int = 5,
    method: int | str = 2,
    max_fix_pos: int | None = 12,
) -> np.ndarray:
    """diffs_fix_pos of every slice x.take(c, axis); returns int32 of shape (x.shape[axis],)."""
    arr = as_float_array(x)
    outer, channels, inner = channel_layout(arr.shape, normalize_axis(axis, arr.ndim))
    return core.diffs_fix_pos_per_channel(
        arr, outer, channels, inner, check_bit_width(bit_width), _check_range(search_range),
        resolve_method(method), check_max_fix_pos(max_fix_pos),
    )


def maxmin_fix_pos_per_channel(
    x: np.ndarray, bit_width: int, axis: int, max_fix_pos: int | None = 12
) -> np.ndarray:
    """maxmin_fix_pos of every slice x.take(c, axis); returns int32 of shape (x.shape[axis],)."""
    arr = as_float_array(x)
    outer, channels, inner = channel_layout(arr.shape, normalize_axis(axis, arr.ndim))
    return core.maxmin_fix_pos_per_channel(
        arr, outer, channels, inner, check_bit_width(bit_width), check_max_fix_pos(max_fix_pos)
    )

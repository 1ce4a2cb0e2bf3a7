"""Fake-quantization (fix_neuron) and integer codes (fix_codes), per tensor and per channel.

Semantics (reference RNN quantizer, spec section 1): r = x * 2^fix_pos computed exactly,
q = round_method(r) clamped to [-2^(bw-1), 2^(bw-1) - 1], output q * 2^-fix_pos.
Defined edge cases: +inf / -inf saturate to the largest / smallest code for every method
(floor included); NaN gives NaN from fix_neuron and code 0 from fix_codes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._args import (
    as_fix_pos_array,
    as_float_array,
    channel_layout,
    check_bit_width,
    check_fix_pos,
    code_dtype,
    normalize_axis,
    prepare_out,
)
from ._core import core
from .methods import resolve_method


def fix_neuron(
    x: np.ndarray, bit_width: int, fix_pos: int, method: int | str, out: np.ndarray | None = None
) -> np.ndarray:
    """Fake-quantize x: q * 2^-fix_pos in x's dtype (float32 or float64).

    ``out`` may be ``x`` itself to work in place; a C-contiguous input is never copied. The
    result is q * 2^-fix_pos rounded once to x's dtype (exact unless q has more significant bits
    than the dtype, or the value overflows it).
    """
    arr = as_float_array(x)
    bw = check_bit_width(bit_width)
    fp = check_fix_pos(fix_pos)
    code = resolve_method(method)
    dst = prepare_out(out, arr, x)
    core.fix_neuron(arr, dst, bw, fp, code)
    return dst


def fix_codes(x: np.ndarray, bit_width: int, fix_pos: int, method: int | str) -> np.ndarray:
    """The integer codes q of x: int8 for bit_width <= 8, int16 for <= 16, int32 otherwise."""
    arr = as_float_array(x)
    bw = check_bit_width(bit_width)
    fp = check_fix_pos(fix_pos)
    code = resolve_method(method)
    dst = np.empty(arr.shape, dtype=code_dtype(bw))
    core.fix_codes(arr, dst, bw, fp, code)
    return dst


def fix_neuron_per_channel(
    x: np.ndarray,
    bit_width: int,
    fix_pos: Any,
    method: int | str,
    axis: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """fix_neuron with fix_pos[c] for the slice x.take(c, axis); fix_pos has x.shape[axis] ints."""
    arr = as_float_array(x)
    bw = check_bit_width(bit_width)
    code = resolve_method(method)
    ax = normalize_axis(axis, arr.ndim)
    outer, channels, inner = channel_layout(arr.shape, ax)
    fps = as_fix_pos_array(fix_pos, channels)
    dst = prepare_out(out, arr, x)
    core.fix_neuron_per_channel(arr, dst, outer, channels, inner, bw, fps, code)
    return dst


def fix_codes_per_channel(
    x: np.ndarray, bit_width: int, fix_pos: Any, method: int | str, axis: int
) -> np.ndarray:
    """fix_codes with fix_pos[c] for the slice x.take(c, axis)."""
    arr = as_float_array(x)
    bw = check_bit_width(bit_width)
    code = resolve_method(method)
    ax = normalize_axis(axis, arr.ndim)
    outer, channels, inner = channel_layout(arr.shape, ax)
    fps = as_fix_pos_array(fix_pos, channels)
    dst = np.empty(arr.shape, dtype=code_dtype(bw))
    core.fix_codes_per_channel(arr, dst, outer, channels, inner, bw, fps, code)
    return dst

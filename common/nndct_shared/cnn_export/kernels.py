"""NumPy kernels of the CNN ops, channels-first (`[N, C, *spatial]`, 1 or 2 spatial dims).

Why one shared set: the reference executor (`reference.py`, torch layout) and the xmodel
evaluator (`xmodel_eval.py`, XIR layout) both call these after putting their operands into this
layout, so the proof "xmodel == reference" tests what differs between them (layouts, weight
conversions, attrs, transposes, fix placement), not two copies of the same arithmetic.

Arithmetic is done in float64 and rounded to float32 once per op. On fixed-point data (inputs and
weights on 2^-k grids) sums of products are exact in float64, so the float32 result is the
correctly rounded one, whatever order a framework accumulates in; the pooling rules follow
PyTorch exactly (ceil_mode, padding, count_include_pad, adaptive start/end indices).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pads = Sequence[tuple[int, int]]


def f32(x: np.ndarray) -> np.ndarray:
    """Round to float32 (the dtype every op outputs)."""
    return np.asarray(x, dtype=np.float64).astype(np.float32)


def _pad_spatial(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the spatial dims of `[N, C, *S]`; negative amounts crop."""
    crop = [slice(None), slice(None)]
    widths = [(0, 0), (0, 0)]
    for before, after in pads:
        crop.append(slice(max(-before, 0), None if after >= 0 else after))
        widths.append((max(before, 0), max(after, 0)))
    x = x[tuple(crop)]
    return np.pad(x, widths, constant_values=value)


def add_bias(products: np.ndarray, bias: np.ndarray | None, axis: int = 1) -> np.ndarray:
    """A weighted op's float32 result from its float64 bias-free products (`conv_products`,
    `linear_products`, `conv_transpose_products`): the bias added along `axis` in float64, then
    one rounding. Bias correction computes a layer for two biases from one product this way,
    bit for bit what the op computes."""
    out = products
    if bias is not None:
        b = np.asarray(bias, np.float64)
        if axis % out.ndim != out.ndim - 1:
            b = b.reshape((1, -1) + (1,) * (out.ndim - 2))
        out = out + b
    return f32(out)


def conv(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    stride: Sequence[int],
    pads: Pads,
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """Grouped convolution: x `[N, C, *S]`, w `[O, C/groups, *K]` (torch layout), explicit
    (before, after) padding per spatial dim. Returns float32 `[N, O, *S_out]`."""
    return add_bias(conv_products(x, w, stride, pads, dilation, groups), bias, 1)


def conv_products(
    x: np.ndarray,
    w: np.ndarray,
    stride: Sequence[int],
    pads: Pads,
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """`conv` without the bias, in float64 (before the rounding)."""
    xd = _pad_spatial(np.asarray(x, np.float64), pads)
    w = np.asarray(w, np.float64)
    nsp = w.ndim - 2
    ksize = w.shape[2:]
    span = [dilation[i] * (ksize[i] - 1) + 1 for i in range(nsp)]
    win = sliding_window_view(xd, span, axis=tuple(range(2, 2 + nsp)))
    sel = [slice(None)] * (2 + nsp)
    for i in range(nsp):
        sel[2 + i] = slice(None, None, stride[i])
    win = win[tuple(sel)]
    win = win[(Ellipsis,) + tuple(slice(None, None, dilation[i]) for i in range(nsp))]
    n, c = xd.shape[:2]
    o = w.shape[0]
    cg, og = c // groups, o // groups
    out_sp = win.shape[2:2 + nsp]
    win = win.reshape((n, groups, cg) + out_sp + tuple(ksize))
    wg = w.reshape((groups, og, cg) + tuple(ksize))
    if nsp == 1:
        out = np.einsum("ngcxk,gock->ngox", win, wg, optimize=True)
    else:
        out = np.einsum("ngcxyhw,gochw->ngoxy", win, wg, optimize=True)
    return out.reshape((n, o) + out_sp)


def dilate_input(x: np.ndarray, stride: Sequence[int]) -> np.ndarray:
    """Insert stride-1 zeros between spatial elements (the first step of a transposed conv)."""
    nsp = x.ndim - 2
    shape = list(x.shape[:2]) + [(x.shape[2 + i] - 1) * stride[i] + 1 for i in range(nsp)]
    out = np.zeros(shape, dtype=np.float64)
    out[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = x
    return out


def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """torch.nn.functional.conv_transpose{1,2}d: w `[C_in, C_out/groups, *K]`."""
    return add_bias(conv_transpose_products(x, w, stride, padding, output_padding, dilation, groups), bias, 1)


def conv_transpose_products(
    x: np.ndarray,
    w: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """`conv_transpose` without the bias, in float64 (before the rounding)."""
    w = np.asarray(w, np.float64)
    nsp = w.ndim - 2
    cin, og = w.shape[:2]
    ksize = w.shape[2:]
    # Equivalent direct conv: flipped kernel, in/out channels swapped within each group.
    wg = w.reshape((groups, cin // groups, og) + tuple(ksize))
    wg = np.swapaxes(wg, 1, 2).reshape((groups * og, cin // groups) + tuple(ksize))
    wg = wg[(slice(None), slice(None)) + (slice(None, None, -1),) * nsp]
    pads = [(dilation[i] * (ksize[i] - 1) - padding[i],
             dilation[i] * (ksize[i] - 1) - padding[i] + output_padding[i]) for i in range(nsp)]
    return conv_products(dilate_input(np.asarray(x, np.float64), stride), wg, [1] * nsp, pads, dilation, groups)


def pool_output_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool,
                     dilation: int = 1) -> int:
    """PyTorch's pooling output length (a ceil-mode window must start inside input or left pad)."""
    span = dilation * (kernel - 1) + 1
    num = size + 2 * pad - span
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _window_bounds(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool):
    out = pool_output_size(size, kernel, stride, pad, ceil_mode)
    start = np.arange(out) * stride - pad
    end_padded = np.minimum(start + kernel, size + pad)
    return start, end_padded, np.maximum(start, 0), np.minimum(end_padded, size)


def max_pool(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
             padding: Sequence[int], ceil_mode: bool) -> np.ndarray:
    """torch max_pool{1,2}d (dilation 1): padding and ceil-mode overhang never win."""
    x = np.asarray(x, np.float64)
    nsp = x.ndim - 2
    out = x
    for i in range(nsp):
        axis = 2 + i
        size = x.shape[axis]
        _, _, lo, hi = _window_bounds(size, kernel[i], stride[i], padding[i], ceil_mode)
        parts = [np.max(np.take(out, np.arange(a, b), axis=axis), axis=axis, keepdims=True)
                 for a, b in zip(lo, hi)]
        out = np.concatenate(parts, axis=axis)
    return f32(out)


def avg_pool(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
             padding: Sequence[int], ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """torch avg_pool{1,2}d: divisor is the window clipped to the padded input (or to the input
    when count_include_pad is False)."""
    x = np.asarray(x, np.float64)
    nsp = x.ndim - 2
    sums = x
    divisor = np.ones((1,) * x.ndim)
    for i in range(nsp):
        axis = 2 + i
        start, end_p, lo, hi = _window_bounds(x.shape[axis], kernel[i], stride[i], padding[i],
                                              ceil_mode)
        sums = np.concatenate(
            [np.sum(np.take(sums, np.arange(a, b), axis=axis), axis=axis, keepdims=True)
             for a, b in zip(lo, hi)], axis=axis)
        count = (end_p - start) if count_include_pad else (hi - lo)
        shape = [1] * x.ndim
        shape[axis] = count.size
        divisor = divisor * count.reshape(shape)
    return f32(sums / divisor)


def _adaptive_reduce(x: np.ndarray, output_size: Sequence[int], reduce) -> tuple[np.ndarray, list[np.ndarray]]:
    """`reduce` (np.sum, np.max) over torch's adaptive pooling windows of each spatial axis in
    turn: window j of an axis of length L is [floor(j*L/out), ceil((j+1)*L/out)). Returns the
    result (float64) and, per axis, the window lengths shaped to broadcast along it."""
    x = np.asarray(x, np.float64)
    out, lengths = x, []
    for i, osz in enumerate(output_size):
        axis, size = 2 + i, x.shape[2 + i]
        lo = [(j * size) // osz for j in range(osz)]
        hi = [-(-((j + 1) * size) // osz) for j in range(osz)]
        out = np.concatenate(
            [reduce(np.take(out, np.arange(a, b), axis=axis), axis=axis, keepdims=True) for a, b in zip(lo, hi)],
            axis=axis)
        shape = [1] * x.ndim
        shape[axis] = osz
        lengths.append((np.array(hi) - np.array(lo)).reshape(shape))
    return out, lengths


def adaptive_avg_pool(x: np.ndarray, output_size: Sequence[int]) -> np.ndarray:
    """torch adaptive_avg_pool{1,2}d; like torch, the float32 window sum is divided by the
    window's height, then by its width (each a float32 division; on fixed-point data this equals
    one division by the area except within an ulp, far from any rounding boundary of the output
    fix)."""
    sums, lengths = _adaptive_reduce(x, output_size, np.sum)
    out = f32(sums)
    for length in lengths:
        out = out / length.astype(np.float32)
    return out.astype(np.float32)


def adaptive_max_pool(x: np.ndarray, output_size: Sequence[int]) -> np.ndarray:
    """torch adaptive_max_pool{1,2}d (the same windows as the average)."""
    return f32(_adaptive_reduce(x, output_size, np.max)[0])


def linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x @ w.T + bias over the last dim (w `[out, in]`)."""
    return add_bias(linear_products(x, w), bias, -1)


def linear_products(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`linear` without the bias, in float64 (before the rounding)."""
    return np.asarray(x, np.float64) @ np.asarray(w, np.float64).T


def hardswish(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return f32(x * np.clip(x + 3.0, 0.0, 6.0) / 6.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return f32(1.0 / (1.0 + np.exp(-np.asarray(x, np.float64))))


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return f32(e / np.sum(e, axis=axis, keepdims=True))


def leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return f32(np.where(x >= 0, x, x * float(np.float32(alpha))))


def mean(x: np.ndarray, axes: Sequence[int], keepdims: bool) -> np.ndarray:
    return f32(np.mean(np.asarray(x, np.float64), axis=tuple(axes), keepdims=keepdims))


def scale_mul(x: np.ndarray, scale: float) -> np.ndarray:
    """x * scale in float32 (the avg-pool DPU correction: a float32 multiply)."""
    return f32(np.asarray(x, np.float64) * float(np.float32(scale)))


def dpu_avgpool_scale(kernel: Sequence[int]) -> float:
    """The reference's DPU correction of an average pool of window `kernel` (kh, kw): the DPU
    divides by the area with a multiply-and-shift, and the quantized model multiplies the exact
    average by `area * multiplier / 2**shift` so that it computes what the DPU computes."""
    kernel = [int(k) for k in kernel]
    special = {(3, 3): 9.0 * 7.0 / 64.0, (5, 5): 25.0 * 10.0 / 256.0,
               (6, 6): 36.0 * 7.0 / 256.0, (3, 6): 36.0 * 7.0 / 256.0,
               (6, 3): 36.0 * 7.0 / 256.0, (7, 7): 49.0 * 21.0 / 1024.0,
               (14, 14): 196.0 * 21.0 / 4096.0}
    if tuple(kernel) in special:
        return special[tuple(kernel)]
    rec = math.prod(kernel)
    max_factor = math.ceil(math.log(rec * 128, 2))
    diff, multi, shift = 1.0, 0.0, 0.0
    for s in range(max_factor):
        factor = round((2 ** s) / rec)
        d = abs(factor / (2 ** s) - 1 / rec)
        if d < diff:
            multi, diff, shift = factor, d, s
    return rec * multi / (2 ** shift)

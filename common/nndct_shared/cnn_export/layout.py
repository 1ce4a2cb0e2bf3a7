"""Torch layout <-> XIR layout: activations, weights and broadcast operands.

Why one module: the xmodel writer, the deploy-check dumps and the xmodel evaluator must agree on
every permutation, or dumps stop matching the xmodel they sit next to. XIR feature maps are
channels-last: a rank-4 torch tensor `[N, C, H, W]` is `[N, H, W, C]`, a rank-3 `[N, C, L]` is
`[N, L, C]`; rank <= 2 tensors keep their layout.
"""
from __future__ import annotations

import numpy as np

__all__ = ["xir_perm", "inverse_perm", "to_xir", "from_xir", "xir_shape", "xir_conv_weight",
           "xir_transposed_weight", "xir_broadcast_operand", "is_depthwise", "channels_first",
           "channels_last", "xir_pad_pairs", "xir_hw"]


def xir_perm(rank: int) -> tuple[int, ...]:
    """Torch dims in XIR order: XIR dim i holds torch dim perm[i]."""
    if rank == 4:
        return (0, 2, 3, 1)
    if rank == 3:
        return (0, 2, 1)
    return tuple(range(rank))


def inverse_perm(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def to_xir(array: np.ndarray) -> np.ndarray:
    """An activation in torch layout -> XIR layout."""
    array = np.asarray(array)
    return np.ascontiguousarray(np.transpose(array, xir_perm(array.ndim)))


def from_xir(array: np.ndarray) -> np.ndarray:
    """An activation in XIR layout -> torch layout."""
    array = np.asarray(array)
    return np.ascontiguousarray(np.transpose(array, inverse_perm(xir_perm(array.ndim))))


def xir_shape(shape: tuple[int, ...] | list[int]) -> list[int]:
    perm = xir_perm(len(shape))
    return [int(shape[i]) for i in perm]


def is_depthwise(groups: int, c_in: int, c_out: int) -> bool:
    """conv with one group per input channel (channel multiplier c_out / c_in)."""
    return groups > 1 and groups == c_in and c_out % c_in == 0


def xir_conv_weight(weight: np.ndarray, groups: int, c_in: int) -> np.ndarray:
    """conv1d `[O, I/g, K]` -> `[O, K, I/g]`; conv2d `[O, I/g, kh, kw]` -> OHWI, or for a
    depthwise conv `[C*m, 1, kh, kw]` -> `[m, kh, kw, C]` (XIR's
    output[..., c*m + q] = sum filter[q, kh, kw, c] * input[..., c])."""
    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim == 3:
        return np.ascontiguousarray(weight.transpose(0, 2, 1))
    c_out, _, kh, kw = weight.shape
    if is_depthwise(groups, c_in, c_out):
        m = c_out // c_in
        return np.ascontiguousarray(weight.reshape(c_in, m, kh, kw).transpose(1, 2, 3, 0))
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1))


def xir_transposed_weight(weight: np.ndarray) -> np.ndarray:
    """conv_transpose2d `[I, O/g, kh, kw]` -> XIR `[O, kh, kw, I]` flipped in H and W (for a
    depthwise transposed conv, `[C, m, kh, kw]` -> `[m, kh, kw, C]`, the same formula)."""
    weight = np.asarray(weight, dtype=np.float32)
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0))


def xir_broadcast_operand(data: np.ndarray, rank: int) -> np.ndarray:
    """A constant operand of an elementwise op, in torch layout and broadcast against a rank-
    `rank` tensor: padded with leading 1s to that rank, then put in XIR layout. A scalar
    becomes shape [1] (XIR consts have at least one dim)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 0:
        return data.reshape(1)
    if data.ndim < rank:
        data = data.reshape((1,) * (rank - data.ndim) + data.shape)
    return np.ascontiguousarray(np.transpose(data, xir_perm(data.ndim)))


def channels_first(x: np.ndarray) -> np.ndarray:
    """Channels-last `[N, *S, C]` -> channels-first `[N, C, *S]` (a view)."""
    return np.moveaxis(x, -1, 1)


def channels_last(x: np.ndarray) -> np.ndarray:
    """Channels-first -> channels-last (contiguous)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def xir_pad_pairs(pad: list[int]) -> list[tuple[int, int]]:
    """XIR pad {l, r} or {l, r, t, b} -> per spatial dim (before, after) in H, W order."""
    if len(pad) == 2:
        return [(pad[0], pad[1])]
    return [(pad[2], pad[3]), (pad[0], pad[1])]


def xir_hw(values: list[int]) -> list[int]:
    """XIR {w, h} -> [h, w] (1-D lists are unchanged)."""
    return list(values[::-1])

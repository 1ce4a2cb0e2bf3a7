"""Keras layout <-> the neutral graph's layout (PyTorch's channels-first).

Why this is small: Keras feature maps are channels-last (`[N, L, C]`, `[N, H, W, C]`), which is
exactly the XIR layout the neutral exporters already convert to and from
(`nndct_shared.cnn_export.layout`), so values cross with `to_xir` / `from_xir`. What is Keras'
own: shapes and axes of the capture, and the element order of a flattened feature map, which
differs between the two layouts (`flatten_permutation`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nndct_shared.cnn_export.layout import from_xir, inverse_perm, to_xir, xir_perm

__all__ = ["flatten_permutation", "is_order_free", "keras_array", "torch_array", "torch_axis",
           "torch_shape"]


def torch_shape(keras_shape: Sequence[int]) -> tuple[int, ...]:
    """`[N, *S, C]` -> `[N, C, *S]` (rank <= 2 unchanged)."""
    shape = tuple(int(d) for d in keras_shape)
    if len(shape) not in (3, 4):
        return shape
    return tuple(shape[p] for p in inverse_perm(xir_perm(len(shape))))


def torch_axis(axis: int, rank: int) -> int:
    """The neutral graph's axis of Keras axis `axis` of a rank-`rank` tensor (channels last ->
    dim 1, spatial dims shift right by one)."""
    a = int(axis) % rank
    if rank <= 2 or a == 0:
        return a
    return 1 if a == rank - 1 else a + 1


def torch_array(x: np.ndarray) -> np.ndarray:
    """A Keras-layout value in the neutral graph's layout (float32, C-contiguous)."""
    return from_xir(np.asarray(x, dtype=np.float32))


def keras_array(x: np.ndarray) -> np.ndarray:
    """A neutral-layout value in Keras' layout (float32, C-contiguous)."""
    return to_xir(np.asarray(x, dtype=np.float32))


def is_order_free(keras_shape: Sequence[int]) -> bool:
    """True when the tensor's elements have the same order in both layouts (rank <= 2, one
    channel, or a single spatial position), so reshaping it is layout-neutral."""
    shape = tuple(int(d) for d in keras_shape)
    if len(shape) <= 2:
        return True
    return shape[-1] == 1 or int(np.prod(shape[1:-1])) == 1


def flatten_permutation(keras_shape: Sequence[int]) -> np.ndarray | None:
    """For a feature map of Keras shape `[N, *S, C]` flattened per sample: position j of the
    neutral (channels-first) flattening holds Keras position `perm[j]`; None when the orders
    agree (`is_order_free`)."""
    if is_order_free(keras_shape):
        return None
    dims = tuple(int(d) for d in keras_shape[1:])
    index = np.arange(int(np.prod(dims))).reshape(dims)
    return np.ascontiguousarray(np.moveaxis(index, -1, 0).reshape(-1))

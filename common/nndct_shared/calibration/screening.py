"""Which tensors a calibration observer may learn from, and why some are left out.

The reference fed every tensor to its kernels: NaN/inf reached a float-to-int cast (undefined
behaviour) and an all-zero tensor voted fix_pos 0 on CPU but 18 on CUDA. Here a tensor with any
non-finite value is skipped with a warning naming it (what later vai_q_pytorch does; catalogue
entry TENSOR_VALUE_INVALID, logged once per tensor so that an LSTM's thousands of time steps do
not flood the log), and an all-zero or empty tensor is skipped silently because it carries no
range information; both are counted by the observers so that a calibration that never saw real
data is visible (its fix_pos stays None).
"""
from __future__ import annotations

import enum
from typing import Any, Hashable

import numpy as np

from nndct_shared.messages import warn_once

__all__ = ["CalibrationError", "Screened", "screen_tensor"]


class CalibrationError(ValueError):
    """Observers were configured or combined in a way that cannot give a fix position."""


class Screened(enum.Enum):
    """Outcome of ``screen_tensor``."""

    USE = "use"
    NON_FINITE = "non_finite"
    NO_RANGE = "no_range"


def screen_tensor(
    x: Any, name: str | None, once_key: Hashable = None
) -> tuple[Screened, np.ndarray]:
    """Return the verdict for ``x`` and ``x`` as a float32/float64 numpy array.

    ``once_key`` identifies the tensor for the once-only NaN/inf warning (default: ``name``).

    ``x`` may be anything ``numpy.asarray`` accepts (a CPU torch tensor works). Integer and
    boolean tensors are rejected with ``CalibrationError``: only float tensors are quantized.
    Other float types (float16) are widened to float32, as the kernels take float32 or float64.
    """
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise CalibrationError(
            f"tensor '{name or '?'}' has dtype {array.dtype}; only floating-point tensors are "
            "calibrated. Do not attach an observer to integer or boolean tensors."
        )
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)
    array = np.ascontiguousarray(array)
    if not np.isfinite(array).all():
        warn_once(
            "TENSOR_VALUE_INVALID",
            once_key=("calibration", once_key if once_key is not None else name),
            name=name or "(unnamed)",
        )
        return Screened.NON_FINITE, array
    if array.size == 0 or not array.any():
        return Screened.NO_RANGE, array
    return Screened.USE, array

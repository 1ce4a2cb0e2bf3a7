"""A named tensor of the neutral graph IR: shape, dtype and, for parameters, the data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Tensor:
    """`data` (a numpy array) is set for parameters (weights, biases, constants) and left
    None for activations, whose values only exist at run time. When data is given, `shape`
    and `dtype` follow it (a given dtype casts the data). `attrs` carries per-tensor facts
    such as the quantization `fix = (bit_width, fix_point)` of a parameter."""

    name: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    data: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"tensor name must be a non-empty str, got {self.name!r}")
        if self.shape is not None:
            try:
                self.shape = tuple(int(d) for d in self.shape)
            except (TypeError, ValueError):
                raise ValueError(
                    f"tensor {self.name!r}: shape must be a sequence of ints, got {self.shape!r}"
                ) from None
        if self.data is not None:
            data = np.asarray(self.data)
            if self.dtype is not None:
                data = data.astype(np.dtype(self.dtype), copy=False)
            if self.shape is not None and self.shape != data.shape:
                raise ValueError(
                    f"tensor {self.name!r}: shape {list(self.shape)} does not match its data's "
                    f"shape {list(data.shape)}"
                )
            self.data = data
            self.shape = tuple(data.shape)
            self.dtype = data.dtype.name
        elif self.dtype is None:
            self.dtype = "float32"
        else:
            self.dtype = np.dtype(self.dtype).name

    @property
    def is_param(self) -> bool:
        return self.data is not None

    @property
    def ndim(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def describe(self) -> str:
        """`name[d0,d1] dtype` (plus ` data` if it holds values)."""
        dims = "?" if self.shape is None else ",".join(str(d) for d in self.shape)
        return f"{self.name}[{dims}] {self.dtype}" + (" data" if self.is_param else "")

    def __repr__(self) -> str:
        shape = None if self.shape is None else list(self.shape)
        return (f"Tensor({self.name!r}, shape={shape}, dtype={self.dtype!r}, "
                f"data={'yes' if self.is_param else 'no'})")

"""How one tensor is quantized, as the report sees it, and the tensors a report is about.

The report runs a model many times with different tensors quantized (one at a time, all but
one, some kept at 16 bits), so it needs a small, framework-neutral description of each tensor's
grid that the front-end adapters can turn back into their own fix ops: `TensorQuant`. A
`QuantTensor` names a tensor, says which layer or cell it belongs to and what kind of tensor it
is (the config's kinds: input, weights, bias, activation), and holds its calibrated grid and the
wider grid the report evaluates when it suggests keeping the tensor at more bits.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np

__all__ = ["QuantPlan", "QuantTensor", "TensorQuant"]

FLOOR = "floor"
"""Activations of the recurrent datapath: toward -inf (the reference's method 4)."""
NEAREST = "nearest"
"""Every other rounding (half up, half away from zero, half even...): ties aside, the nearest code."""


@dataclass(frozen=True)
class TensorQuant:
    """The integer grid of one tensor: codes in [qmin, qmax], value = (code - zero_point) * step.

    Power-of-two grids have `fix_pos` (step 2^-fix_pos; a tuple per channel along `axis`);
    float-scale grids have `scale` and `zero_point`. `rounding` is FLOOR or NEAREST; it only
    decides which values count as clipped. `method` is the front end's own rounding name, kept
    so an adapter can rebuild its fix op.
    """

    bit_width: int
    fix_pos: int | tuple[int, ...] | None = None
    scale: float | None = None
    zero_point: int = 0
    qmin: int | None = None
    qmax: int | None = None
    rounding: str = NEAREST
    axis: int | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        if (self.fix_pos is None) == (self.scale is None):
            raise ValueError("a TensorQuant has either fix_pos or scale")
        if self.qmin is None:
            object.__setattr__(self, "qmin", -(2 ** (self.bit_width - 1)))
        if self.qmax is None:
            object.__setattr__(self, "qmax", 2 ** (self.bit_width - 1) - 1)

    def steps(self, shape: tuple[int, ...]) -> np.ndarray | float:
        """The step for data of `shape` (broadcastable array for per-channel grids)."""
        if self.scale is not None:
            return float(self.scale)
        if isinstance(self.fix_pos, tuple):
            view = [1] * len(shape)
            view[self.axis] = len(self.fix_pos)
            return np.ldexp(1.0, -np.asarray(self.fix_pos, dtype=np.int64)).reshape(view)
        return float(np.ldexp(1.0, -int(self.fix_pos)))

    def widened(self, bit_width: int, max_fix_pos: int | None = None) -> "TensorQuant":
        """The same range on a `bit_width`-bit grid: `bit_width - self.bit_width` more fraction
        bits (capped at `max_fix_pos`), which is what a calibration at that width finds for the
        same data, up to the diffs search's choice among neighbouring positions."""
        extra = bit_width - self.bit_width
        if self.scale is not None:
            factor = 2.0 ** extra
            unsigned = self.qmin >= 0
            return replace(self, bit_width=bit_width, scale=self.scale / factor,
                           zero_point=int(round(self.zero_point * factor)),
                           qmin=0 if unsigned else -(2 ** (bit_width - 1)),
                           qmax=2 ** bit_width - 1 if unsigned else 2 ** (bit_width - 1) - 1)

        def grow(fp: int) -> int:
            fp = fp + extra
            return fp if max_fix_pos is None else min(fp, max_fix_pos)

        fix = tuple(grow(int(f)) for f in self.fix_pos) if isinstance(self.fix_pos, tuple) else grow(int(self.fix_pos))
        return TensorQuant(bit_width=bit_width, fix_pos=fix, rounding=self.rounding, axis=self.axis,
                           method=self.method)

    def describe(self) -> dict[str, Any]:
        """The JSON form: bit width and fix position, or scale and zero point."""
        out: dict[str, Any] = {"bit_width": self.bit_width}
        if self.scale is not None:
            out.update(scale=self.scale, zero_point=self.zero_point)
        else:
            out["fix_pos"] = list(self.fix_pos) if isinstance(self.fix_pos, tuple) else int(self.fix_pos)
        return out


@dataclass(frozen=True)
class QuantTensor:
    """One quantized tensor of the model.

    `name`: the key the flow uses (a quant_info.json key). `group`: the layer (CNN node name) or
    cell graph it belongs to. `kind`: input / weights / bias / activation. `quant`: its
    calibrated grid; `high`: the wider grid the suggestion evaluates; `label`: a short name for
    plots (the node name inside its cell).
    """

    name: str
    group: str
    kind: str
    quant: TensorQuant
    high: TensorQuant | None = None
    label: str = ""


QuantPlan = Mapping[str, TensorQuant]
"""Tensor name -> the grid it runs on; a tensor not in the plan runs float."""

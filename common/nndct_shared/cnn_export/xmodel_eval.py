"""Evaluate an XIR graph in NumPy, op by op, in XIR's own layout (NHWC / NLC).

Why: this is the proof that an exported xmodel computes what the quantized model computes. It
reads only the XGraph (typically `read_xmodel` of the written file): op types, attrs as XIR
defines them (kernel {w, h}, pad {l, r, t, b}, transposed-conv pad = k - 1 - actual pad, OHWI
weights, depthwise `[m, kh, kw, C]`), const bytes and fix ops (DPU round). Tests compare its
values with `reference.run_reference` exactly. Each XIR op type is evaluated by the entry of
the op registry that writes it (`OpDef.eval_xir`, `nndct_shared.graph.ops`), whose arithmetic
goes through the shared `kernels` after moving operands into their channels-first layout.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..graph.ops import xir_owner
from ..kernels import fix_neuron
from ..xmodel import XGraph, XOp, read_xmodel
from .layout import to_xir

__all__ = ["evaluate_xgraph", "evaluate_xmodel", "XirCustomImpl"]

#: A custom op: (input arrays, op attrs) -> output array.
XirCustomImpl = Callable[[list[np.ndarray], Mapping[str, Any]], np.ndarray]


def _fix(x: np.ndarray, op: XOp) -> np.ndarray:
    a = op.attrs
    if not a["if_signed"]:
        raise NotImplementedError(f"fix op {op.name!r}: unsigned fix is not evaluated")
    # DPU_ROUND, STD_ROUND, PY3_ROUND: names of the one rounding table (case-insensitive)
    return fix_neuron(np.ascontiguousarray(x, np.float32), int(a["bit_width"]),
                      int(a["fix_point"]), str(a["round_mode"]))


def _run(op: XOp, xs: list[np.ndarray], args: dict[str, list[np.ndarray]],
         custom: Mapping[str, XirCustomImpl]) -> np.ndarray:
    """One op: the xmodel's plumbing (const, fix, transpose) here, every other XIR op type by
    the op registry entry that owns it (`OpDef.eval_xir`), then the caller's custom ops."""
    t, a = op.type, op.attrs
    if t == "const":
        return op.const_array()
    if t == "fix":
        return _fix(xs[0], op)
    if t == "transpose":
        return np.ascontiguousarray(np.transpose(xs[0], list(a["order"])))
    owner = xir_owner(t)
    if owner is not None:
        return owner.eval_xir(op, xs, args, custom)
    if t in custom:
        return np.asarray(custom[t](xs, dict(a)), dtype=np.float32)
    raise NotImplementedError(f"op {op.name!r}: XIR op type {t!r} is not evaluated")


def evaluate_xgraph(
    xgraph: XGraph,
    inputs: Mapping[str, np.ndarray],
    custom_ops: Mapping[str, XirCustomImpl] | None = None,
    *,
    torch_layout_inputs: bool = True,
) -> dict[str, np.ndarray]:
    """Run every op of `xgraph`; returns {op name: value in XIR layout}.

    `inputs` are keyed by `data` op name; with `torch_layout_inputs` they are given in torch
    layout (NCHW / NCL) and moved to XIR layout here."""
    values: dict[str, np.ndarray] = {}
    custom = dict(custom_ops or {})
    for op in xgraph.topological_order():
        if op.type == "data":
            if op.name not in inputs:
                raise KeyError(f"no value given for data op {op.name!r}")
            x = np.asarray(inputs[op.name], dtype=np.float32)
            x = to_xir(x) if torch_layout_inputs else x
            if list(x.shape) != list(op.shape):
                raise ValueError(f"data op {op.name!r} expects shape {op.shape}, got "
                                 f"{list(x.shape)}")
            values[op.name] = x
            continue
        args = {arg: [values[p] for p in producers] for arg, producers in op.inputs.items()}
        out = _run(op, args.get("input", []), args, custom)
        values[op.name] = np.asarray(out, dtype=np.float32)
        if list(values[op.name].shape) != list(op.shape):
            raise ValueError(f"op {op.name!r} ({op.type}) computed shape "
                             f"{list(values[op.name].shape)}, the xmodel says {op.shape}")
    return values


def evaluate_xmodel(
    path: str | os.PathLike[str],
    inputs: Mapping[str, np.ndarray],
    custom_ops: Mapping[str, XirCustomImpl] | None = None,
) -> dict[str, np.ndarray]:
    """`evaluate_xgraph` of the file at `path` (read back with `read_xmodel`)."""
    return evaluate_xgraph(read_xmodel(Path(path)), inputs, custom_ops)

"""The CNN op registry: one entry per op of the neutral graph, declaring everything the op means.

Why: front ends (PyTorch today, Keras next) lower their framework ops to these op types, and
every back end (fix plan, CLE, the numpy reference executor, the xmodel writer and evaluator,
ONNX, the Inspector, the validator) reads the same `Graph`. Each op's contract and facets are
declared once, in its entry (`base.OpDef`, one small class per op in the modules of this
package, grouped by kind); the back ends look the entry up and call the facet, so adding an op
touches its entry and one capture rule per front end (README.md in this folder says how).

Conventions every producer of a CNN `Graph` follows
---------------------------------------------------
- Layout is PyTorch's channels-first layout: activations `(N, C)`, `(N, C, L)`,
  `(N, C, H, W)`; weights as `torch.nn` stores them: linear `[out, in]`, conv1d
  `[O, I/groups, K]`, conv2d `[O, I/groups, kh, kw]`, conv_transpose2d `[I, O/groups, kh,
  kw]`. Exporters that need NHWC (xmodel, bin dumps) convert.
- Every node's output tensor metadata (shape with batch dim, dtype) is recorded with
  `Graph.set_tensor` (or `Graph.add(..., shape=...)`).
- Params (`node.params[role]`, roles `weight` / `bias` / `other`) hold **already quantized**
  float32 values (on the grid `k * 2**-fix_point`) when the param is quantized, and carry
  `tensor.attrs["fix"] = (bit_width, fix_point)`; a float param has no `fix` attr.
- A quantized output carries `node.attrs["fix"] = (bit_width, fix_point)`; a node without it
  runs in float (outside a QuantStub/DeQuantStub region, or a float fallback).
- A quantized input of a node (the reference's "input" quant entries, e.g. on the model
  input) is `node.attrs["input_fix"] = {input_index: (bit_width, fix_point)}`.
- BatchNorm that follows a conv/linear is folded by the front end; a standalone BatchNorm
  becomes `scale` (per-channel `weight` and `bias` params on axis 1).
- A non-tensor operand of a binary op (`x * 0.5`) becomes a param with role `other`; its
  position is `attrs["other_index"]` (0 or 1).
- Optional attr `dpu_scale` (float) on avg_pool*/adaptive_avg_pool*/mean: the factor the
  quantized model multiplies the pooled value by before the output fix (the reference's DPU
  approximation, `nndct_shared.cnn_export.dpu_avgpool_scale(kernel)`); absent = 1.0. The
  xmodel writes it as the `<name>_i1` const of the avgpool's `mul`.
- Integer attrs that are per-spatial-dim are tuples in torch order: `(kh, kw)`, `(sh, sw)`,
  `(ph, pw)` (symmetric torch padding), `(dh, dw)`; 1-D ops use 1-tuples.

Loading: the entries are registered when the registry is first looked up (every module of this
package but `base` is imported then), not when this package is imported, because entries use
the exporters' and the Inspector's helpers, which themselves look entries up. So no module may
look an entry up while it is being imported.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping

from .base import (
    ANY,
    BINARY,
    NONE,
    REGISTRY,
    UNARY,
    VARIADIC,
    XIR_OWNERS,
    ExportUnsupported,
    OpContractError,
    OpDef,
    register,
)

__all__ = [
    "ANY", "BINARY", "CNN_OPS", "NONE", "UNARY", "VARIADIC", "ExportUnsupported", "OpContractError",
    "OpDef", "all_ops", "find_op", "get_op", "register", "required_attrs", "xir_owner",
]

_state = {"loaded": False, "loading": False}


def _load() -> None:
    """Import every entry module of this package once (see the module docstring)."""
    if _state["loaded"]:
        return
    if _state["loading"]:
        raise RuntimeError("the CNN op registry was looked up while its entries were being "
                           "imported; look entries up at call time, not at import time")
    _state["loading"] = True
    try:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name != "base" and not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _state["loaded"] = True
    finally:
        _state["loading"] = False


def find_op(op_type: str) -> OpDef | None:
    """The entry of `op_type`, or None for an op type the registry does not know."""
    _load()
    return REGISTRY.get(op_type)


def get_op(op_type: str) -> OpDef:
    """The entry of `op_type`; KeyError naming the known types otherwise."""
    entry = find_op(op_type)
    if entry is None:
        raise KeyError(f"{op_type!r} is not a CNN op of the neutral graph; known: "
                       f"{', '.join(sorted(REGISTRY))}")
    return entry


def all_ops() -> dict[str, OpDef]:
    """Every registered entry by op name."""
    _load()
    return dict(REGISTRY)


def required_attrs(op_type: str) -> tuple[str, ...]:
    """Attrs a producer must set on a node of this type."""
    return get_op(op_type).attrs


def xir_owner(xir_type: str) -> OpDef | None:
    """The entry that evaluates XIR op type `xir_type` in a written xmodel (None: not an op
    type of this registry, e.g. the xmodel's own const/fix/transpose or a custom op)."""
    _load()
    return XIR_OWNERS.get(xir_type)


class _OpNames(Mapping):
    """A read-only view of the registry by op name (`name in CNN_OPS`, `CNN_OPS[name]`)."""

    def __getitem__(self, op_type: str) -> OpDef:
        _load()
        return REGISTRY[op_type]

    def __iter__(self) -> Iterator[str]:
        _load()
        return iter(REGISTRY)

    def __len__(self) -> int:
        _load()
        return len(REGISTRY)


CNN_OPS: Mapping[str, OpDef] = _OpNames()
"""Every op type of the neutral CNN graph, mapped to its entry."""

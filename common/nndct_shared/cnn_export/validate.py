"""Check that a neutral `Graph` follows the CNN op contract (`nndct_shared.graph.ops`).

Why: every exporter reads the graph with the contract's assumptions (attr names, torch layouts,
quantized params already on their grid, one output per node). A graph that breaks one of them
would otherwise give a wrong file or a confusing crash deep inside an exporter; here it gives one
catalogued error (CNN_GRAPH_INVALID) naming the node and the problem before anything is written.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph import Graph, GraphError, Node, Tensor
from ..graph.ops import BINARY, NONE, UNARY, VARIADIC, CNN_OPS, OpContractError, OpDef, find_op
from ..graph.ops.base import is_int as _is_int
from ..messages import error

__all__ = ["validate_cnn_graph", "fix_of", "input_fix_of", "qparams_of", "refuse_float_scale",
           "tensor_shape"]

_Invalid = OpContractError


def _check_fix(value: Any, what: str) -> tuple[int, int]:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(_is_int(v) for v in value)):
        raise _Invalid(f"{what} must be (bit_width, fix_point) ints, got {value!r}")
    bw, fp = int(value[0]), int(value[1])
    if not 1 <= bw <= 32:
        raise _Invalid(f"{what} has bit width {bw}; expected 1..32")
    return bw, fp


def fix_of(node: Node) -> tuple[int, int] | None:
    """(bit_width, fix_point) of the node's output, or None when it runs in float."""
    value = node.attrs.get("fix")
    return None if value is None else (int(value[0]), int(value[1]))


def qparams_of(attrs: dict) -> dict | None:
    """The `qparams` attr of a float-scale tensor (node attrs or param attrs), or None.

    Keys: bit_width, signed, narrow_range, symmetric, scale, zero_point (the semantics of
    `nndct_shared.calibration.float_scale`)."""
    return attrs.get("qparams")


def refuse_float_scale(graph: Graph, format: str) -> None:
    """EXPORT_UNSUPPORTED naming the first node with a float-scale tensor (output or param):
    the DPU computes power-of-two symmetric fixed point, which such a tensor is not."""
    for node in graph.topological_order():
        names = [node.name] if qparams_of(node.attrs) else []
        names += [t.name for t in node.params.values() if qparams_of(t.attrs)]
        if names:
            raise error("EXPORT_UNSUPPORTED", format=format, node=node.name, op_type=node.op_type,
                        reason=f"'{names[0]}' is quantized with a float scale (scale_type 'float', "
                        "possibly asymmetric/unsigned/narrow range); the DPU computes power-of-two "
                        "symmetric fixed point only (export ONNX or TorchScript instead, or "
                        "calibrate with scale_type 'poweroftwo')")


def input_fix_of(node: Node) -> dict[int, tuple[int, int]]:
    """{input index: (bit_width, fix_point)} of the node's quantized inputs."""
    return {int(k): (int(v[0]), int(v[1])) for k, v in (node.attrs.get("input_fix") or {}).items()}


def tensor_shape(graph: Graph, name: str) -> tuple[int, ...]:
    """The recorded shape of an activation tensor (validated to exist)."""
    return tuple(graph.tensors[name].shape)


def _check_param(node: Node, role: str, tensor: Tensor) -> None:
    if tensor.data is None:
        raise _Invalid(f"param {role!r} ({tensor.name}) has no data")
    data = np.asarray(tensor.data)
    if data.dtype.kind != "f":
        raise _Invalid(f"param {role!r} ({tensor.name}) has dtype {data.dtype}; expected float")
    if not np.all(np.isfinite(data)):
        raise _Invalid(f"param {role!r} ({tensor.name}) holds NaN or inf")
    if "fix" in tensor.attrs:
        bw, fp = _check_fix(tensor.attrs["fix"], f"param {role!r} ({tensor.name}) fix")
        codes = np.ldexp(data.astype(np.float64), fp)
        low, high = -(2 ** (bw - 1)), 2 ** (bw - 1) - 1
        bad = (codes != np.round(codes)) | (codes < low) | (codes > high)
        if bad.any():
            index = int(np.flatnonzero(bad.reshape(-1))[0])
            raise _Invalid(
                f"param {role!r} ({tensor.name}) is marked fix={bw, fp} but value "
                f"{float(data.reshape(-1)[index])!r} (flat index {index}) is not a {bw}-bit code "
                f"times 2^-{fp}; params must be stored already quantized")


def _check_node(graph: Graph, node: Node) -> None:
    op = node.op_type
    spec = find_op(op)
    if spec is None:
        raise _Invalid(f"op type {op!r} is not in the CNN op contract; known: "
                       f"{', '.join(sorted(CNN_OPS))}")
    missing = [a for a in spec.attrs if a not in node.attrs]
    if missing:
        raise _Invalid(f"missing required attr(s) {missing}")
    if len(node.outputs) != 1:
        raise _Invalid(f"a CNN node has exactly one output tensor, got {node.outputs}")
    out = graph.tensors.get(node.outputs[0])
    if out is None or out.shape is None or len(out.shape) < 1:
        raise _Invalid(f"output tensor {node.outputs[0]!r} has no recorded shape (record it with "
                       "Graph.set_tensor or Graph.add(..., shape=...))")
    for name in node.inputs:
        if graph.producer(name) is None:
            raise _Invalid(f"input tensor {name!r} is produced by no node of the graph")
        meta = graph.tensors.get(name)
        if meta is None or meta.shape is None:
            raise _Invalid(f"input tensor {name!r} has no recorded shape")
    allowed = set(spec.params) | set(spec.optional_params)
    for role, tensor in node.params.items():
        if role not in allowed:
            raise _Invalid(f"param role {role!r} is not allowed for {op}; allowed: "
                           f"{sorted(allowed) or 'none'}")
        _check_param(node, role, tensor)
    for role in spec.params:
        if role not in node.params:
            raise _Invalid(f"required param {role!r} is missing")
    if "fix" in node.attrs and node.attrs["fix"] is not None:
        _check_fix(node.attrs["fix"], "attr 'fix'")
    input_fix = node.attrs.get("input_fix") or {}
    if not isinstance(input_fix, dict):
        raise _Invalid(f"attr 'input_fix' must be a dict {{input index: (bw, fp)}}, got "
                       f"{input_fix!r}")
    if input_fix and node.op_type == "input":
        raise _Invalid("an input node has no input to quantize; put the fix of the model input "
                       "in its attr 'fix'")
    for index, value in input_fix.items():
        if not _is_int(index) or not 0 <= int(index) < len(node.inputs):
            raise _Invalid(f"input_fix index {index!r} does not name one of the node's "
                           f"{len(node.inputs)} input(s)")
        _check_fix(value, f"input_fix[{index}]")
    _check_arity(spec, node)
    out_shape = tensor_shape(graph, node.outputs[0])
    in_shape = tensor_shape(graph, node.inputs[0]) if node.inputs else out_shape
    if spec.spatial is not None and len(in_shape) != spec.spatial + 2:
        raise _Invalid(f"{op} needs a rank-{spec.spatial + 2} input [N, C, ...], got shape "
                       f"{list(in_shape)}")
    spec.check(graph, node, in_shape, out_shape)


def _check_arity(spec: OpDef, node: Node) -> None:
    op, n = node.op_type, len(node.inputs)
    if spec.arity == NONE and n:
        raise _Invalid(f"an input node reads no tensor, got {node.inputs}")
    if spec.arity == UNARY and n != 1:
        raise _Invalid(f"{op} takes exactly 1 input tensor, got {n}")
    if spec.arity == BINARY:
        has_other = "other" in node.params
        if has_other:
            if n != 1:
                raise _Invalid(f"{op} with an 'other' param takes 1 input tensor, got {n}")
            if node.attrs.get("other_index") not in (0, 1):
                raise _Invalid(f"{op} with an 'other' param needs attrs other_index 0 or 1, got "
                               f"{node.attrs.get('other_index')!r}")
        elif n != 2:
            raise _Invalid(f"{op} takes 2 input tensors (or 1 and an 'other' param), got {n}")
    if spec.arity == VARIADIC and n < 1:
        raise _Invalid(f"{op} needs at least one input tensor")


def validate_cnn_graph(graph: Graph) -> None:
    """Raise CNN_GRAPH_INVALID (ModelStructureError) naming the first node that breaks the
    contract: unknown op, missing attr or param, bad shapes, params not on their fix grid,
    malformed fix facts, or a cycle. Returns None for a valid graph."""
    if not isinstance(graph, Graph):
        raise error("CNN_GRAPH_INVALID", graph="?", node="-", op_type="-",
                    problem=f"expected a nndct_shared.graph.Graph, got {type(graph).__name__}")
    try:
        order = graph.topological_order()
    except GraphError as exc:
        raise error("CNN_GRAPH_INVALID", graph=graph.name, node="-", op_type="-",
                    problem=str(exc)) from None
    if not any(n.op_type == "input" for n in order):
        raise error("CNN_GRAPH_INVALID", graph=graph.name, node="-", op_type="-",
                    problem="the graph has no 'input' node")
    for node in order:
        try:
            _check_node(graph, node)
        except _Invalid as exc:
            raise error("CNN_GRAPH_INVALID", graph=graph.name, node=node.name,
                        op_type=node.op_type, problem=exc.problem) from None


def batch_size(graph: Graph) -> int:
    """The batch dim of the graph's input nodes (the largest, if they differ)."""
    sizes: Sequence[int] = [tensor_shape(graph, n.outputs[0])[0] for n in graph.nodes
                            if n.op_type == "input"]
    return max(sizes)

"""Check that a neutral `Graph` follows the CNN op contract (`nndct_shared.graph.cnn_ops`).

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
from ..graph.cnn_ops import CNN_OPS, required_attrs
from ..messages import error

__all__ = ["validate_cnn_graph", "fix_of", "input_fix_of", "qparams_of", "refuse_float_scale",
           "tensor_shape"]

_SPATIAL = {"conv1d": 1, "conv2d": 2, "conv_transpose2d": 2, "max_pool1d": 1, "max_pool2d": 2,
            "avg_pool1d": 1, "avg_pool2d": 2, "adaptive_avg_pool1d": 1, "adaptive_avg_pool2d": 2,
            "adaptive_max_pool1d": 1, "adaptive_max_pool2d": 2}
_UNARY = {"relu", "relu6", "leaky_relu", "sigmoid", "tanh", "hardswish", "scale", "linear",
          "conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
          "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
          "adaptive_max_pool2d", "flatten", "reshape",
          "mean", "softmax"}
_BINARY = {"add", "sub", "mul"}


class _Invalid(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


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


def _int_tuple(node: Node, attr: str, length: int, minimum: int) -> tuple[int, ...]:
    value = node.attrs[attr]
    if (not isinstance(value, (tuple, list)) or len(value) != length
            or not all(_is_int(v) and v >= minimum for v in value)):
        raise _Invalid(f"attr {attr!r} must be a {length}-tuple of ints >= {minimum} (torch "
                       f"order), got {value!r}")
    return tuple(int(v) for v in value)


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
    if op not in CNN_OPS:
        raise _Invalid(f"op type {op!r} is not in the CNN op contract; known: "
                       f"{', '.join(sorted(CNN_OPS))}")
    missing = [a for a in required_attrs(op) if a not in node.attrs]
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
    spec = CNN_OPS[op]
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
    _check_arity(node)
    _check_op_attrs(graph, node)


def _check_arity(node: Node) -> None:
    op, n = node.op_type, len(node.inputs)
    if op == "input" and n:
        raise _Invalid(f"an input node reads no tensor, got {node.inputs}")
    if op in _UNARY and n != 1:
        raise _Invalid(f"{op} takes exactly 1 input tensor, got {n}")
    if op in _BINARY:
        has_other = "other" in node.params
        if has_other:
            if n != 1:
                raise _Invalid(f"{op} with an 'other' param takes 1 input tensor, got {n}")
            if node.attrs.get("other_index") not in (0, 1):
                raise _Invalid(f"{op} with an 'other' param needs attrs other_index 0 or 1, got "
                               f"{node.attrs.get('other_index')!r}")
        elif n != 2:
            raise _Invalid(f"{op} takes 2 input tensors (or 1 and an 'other' param), got {n}")
    if op == "concat" and n < 1:
        raise _Invalid("concat needs at least one input tensor")


def _axis(node: Node, attr: str, value: Any, rank: int) -> int:
    if not _is_int(value) or not -rank <= int(value) < rank:
        raise _Invalid(f"attr {attr!r} = {value!r} is not an axis of a rank-{rank} tensor")
    return int(value) % rank


def _check_op_attrs(graph: Graph, node: Node) -> None:
    op = node.op_type
    out_shape = tensor_shape(graph, node.outputs[0])
    in_shape = tensor_shape(graph, node.inputs[0]) if node.inputs else out_shape
    rank = len(in_shape)
    if op in _SPATIAL:
        nsp = _SPATIAL[op]
        if rank != nsp + 2:
            raise _Invalid(f"{op} needs a rank-{nsp + 2} input [N, C, ...], got shape "
                           f"{list(in_shape)}")
    if op in ("conv1d", "conv2d", "conv_transpose2d"):
        nsp = _SPATIAL[op]
        kernel = _int_tuple(node, "kernel", nsp, 1)
        _int_tuple(node, "stride", nsp, 1)
        _int_tuple(node, "padding", nsp, 0)
        _int_tuple(node, "dilation", nsp, 1)
        groups = node.attrs["groups"]
        if not _is_int(groups) or groups < 1:
            raise _Invalid(f"attr 'groups' must be an int >= 1, got {groups!r}")
        w = node.params["weight"].data
        c_in = in_shape[1]
        if tuple(w.shape[2:]) != kernel:
            raise _Invalid(f"weight shape {list(w.shape)} does not match kernel {list(kernel)}")
        if op == "conv_transpose2d":
            _int_tuple(node, "output_padding", nsp, 0)
            ok = w.shape[0] == c_in and c_in % groups == 0
            expect = f"[C_in={c_in}, C_out/groups, kh, kw]"
        else:
            ok = w.shape[1] * groups == c_in and w.shape[0] % groups == 0
            expect = f"[C_out, C_in/groups={c_in}/{groups}, ...]"
        if not ok:
            raise _Invalid(f"weight shape {list(w.shape)} does not fit input channels {c_in} "
                           f"and groups {groups}; expected {expect}")
        c_out = w.shape[1] * groups if op == "conv_transpose2d" else w.shape[0]
        if out_shape[1] != c_out:
            raise _Invalid(f"output shape {list(out_shape)} has {out_shape[1]} channels, the "
                           f"weight gives {c_out}")
        if "bias" in node.params and node.params["bias"].data.shape != (c_out,):
            raise _Invalid(f"bias shape {list(node.params['bias'].data.shape)} is not [{c_out}]")
    elif op == "linear":
        w = node.params["weight"].data
        if w.ndim != 2 or w.shape[1] != in_shape[-1]:
            raise _Invalid(f"weight shape {list(w.shape)} is not [out, in={in_shape[-1]}]")
        if "bias" in node.params and node.params["bias"].data.shape != (w.shape[0],):
            raise _Invalid(f"bias shape {list(node.params['bias'].data.shape)} is not "
                           f"[{w.shape[0]}]")
    elif op in ("max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"):
        nsp = _SPATIAL[op]
        kernel = _int_tuple(node, "kernel", nsp, 1)
        _int_tuple(node, "stride", nsp, 1)
        padding = _int_tuple(node, "padding", nsp, 0)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise _Invalid(f"padding {list(padding)} exceeds half the kernel {list(kernel)}")
    elif op in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
                "adaptive_max_pool2d"):
        _int_tuple(node, "output_size", _SPATIAL[op], 1)
    elif op == "scale":
        if node.attrs["axis"] not in (1, 1 - rank):
            raise _Invalid(f"scale works on the channel axis 1, got axis {node.attrs['axis']!r}")
        for role in ("weight", "bias"):
            if node.params[role].data.shape != (in_shape[1],):
                raise _Invalid(f"{role} shape {list(node.params[role].data.shape)} is not "
                               f"[C={in_shape[1]}]")
    elif op == "leaky_relu":
        if not isinstance(node.attrs["alpha"], (float, int, np.floating)):
            raise _Invalid(f"attr 'alpha' must be a number, got {node.attrs['alpha']!r}")
    elif op == "concat":
        axis = _axis(node, "axis", node.attrs["axis"], rank)
        for name in node.inputs:
            shape = tensor_shape(graph, name)
            if len(shape) != rank or any(a != b for i, (a, b) in enumerate(zip(shape, in_shape))
                                         if i != axis):
                raise _Invalid(f"concat inputs must agree except on axis {axis}: "
                               f"{list(in_shape)} vs {list(shape)}")
    elif op == "flatten":
        _axis(node, "start_dim", node.attrs["start_dim"], rank)
        _axis(node, "end_dim", node.attrs["end_dim"], rank)
    elif op == "reshape":
        shape = node.attrs["shape"]
        if (not isinstance(shape, (tuple, list)) or not all(_is_int(d) for d in shape)
                or sum(1 for d in shape if d == -1) > 1):
            raise _Invalid(f"attr 'shape' must be a full target shape of ints (one -1 at most), "
                           f"got {shape!r}")
        if int(np.prod(in_shape)) != int(np.prod(out_shape)):
            raise _Invalid(f"reshape from {list(in_shape)} to {list(out_shape)} changes the "
                           "element count")
    elif op == "mean":
        dims = node.attrs["dims"]
        if not isinstance(dims, (tuple, list)) or not dims:
            raise _Invalid(f"attr 'dims' must be a non-empty tuple of axes, got {dims!r}")
        for d in dims:
            _axis(node, "dims", d, rank)
    elif op == "softmax":
        _axis(node, "dim", node.attrs["dim"], rank)
    elif op == "custom":
        if not isinstance(node.attrs["op_name"], str) or not node.attrs["op_name"]:
            raise _Invalid(f"attr 'op_name' must be a non-empty str, got "
                           f"{node.attrs['op_name']!r}")
    if op in ("avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "mean"):
        scale = node.attrs.get("dpu_scale")
        if scale is not None and (not isinstance(scale, (float, int, np.floating))
                                  or not np.isfinite(scale) or scale <= 0):
            raise _Invalid(f"attr 'dpu_scale' must be a positive number, got {scale!r}")
    if op == "input" and out_shape[0] < 1:
        raise _Invalid(f"input shape {list(out_shape)} has no batch")


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

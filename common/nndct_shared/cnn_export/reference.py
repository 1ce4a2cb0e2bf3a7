"""Reference executor: runs a neutral CNN graph with its fix facts in NumPy (torch layout).

Why: it is the independent answer every exporter is checked against (the xmodel evaluated op by
op, the ONNX model in onnxruntime, the deploy-check dumps) and the front ends' tests compare
their quantized models with it. Semantics, per node in topological order:

1. each input listed in `attrs["input_fix"]` is fake-quantized (DPU round, kernels method 2);
2. the op runs in float (float64 inside, float32 out; see `kernels`), on params that are already
   quantized; avg pools and `mean` multiply by `attrs["dpu_scale"]` when the front end set it;
3. a quantized output (`attrs["fix"]`) is fake-quantized with DPU round.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..graph import Graph, Node
from ..kernels import fix_neuron
from ..kernels.methods import DPU_ROUND
from . import kernels as K
from .validate import fix_of, input_fix_of, tensor_shape, validate_cnn_graph

__all__ = ["run_reference", "run_node", "dpu_round", "CustomImpl"]

#: A custom op implementation: (inputs in torch layout, node attrs) -> output.
CustomImpl = Callable[[list[np.ndarray], Mapping[str, Any]], np.ndarray]

DPU_ROUND_METHOD = DPU_ROUND


def dpu_round(x: np.ndarray, fix: tuple[int, int],
              method: int | str = DPU_ROUND_METHOD) -> np.ndarray:
    """fix_neuron with DPU round (ties toward +inf) by default, float32 in and out."""
    return fix_neuron(np.ascontiguousarray(x, dtype=np.float32), fix[0], fix[1], method)


def _param(node: Node, role: str) -> np.ndarray | None:
    tensor = node.params.get(role)
    return None if tensor is None else np.asarray(tensor.data, dtype=np.float32)


def _pads(padding: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(int(p), int(p)) for p in padding]


def _binary(node: Node, xs: list[np.ndarray]) -> list[np.ndarray]:
    if "other" in node.params:
        other = _param(node, "other")
        return [other, xs[0]] if node.attrs["other_index"] == 0 else [xs[0], other]
    return xs


def _avg_scale(node: Node, out: np.ndarray) -> np.ndarray:
    scale = node.attrs.get("dpu_scale")
    return out if scale is None else K.scale_mul(out, scale)


def run_node(node: Node, xs: list[np.ndarray], out_shape: tuple[int, ...] | None = None,
             custom: Mapping[str, CustomImpl] | None = None) -> np.ndarray:
    """The float result of one node's op on its (already input-fixed) inputs, before its
    output fix. `out_shape` is the reshape target for the actual batch (default: the node's
    `shape` attr). Front ends use it to infer output shapes while they build a graph."""
    custom = custom or {}
    op, a = node.op_type, node.attrs
    x = xs[0] if xs else None
    if op == "linear":
        return K.linear(x, _param(node, "weight"), _param(node, "bias"))
    if op in ("conv1d", "conv2d"):
        return K.conv(x, _param(node, "weight"), _param(node, "bias"), a["stride"],
                      _pads(a["padding"]), a["dilation"], int(a["groups"]))
    if op == "conv_transpose2d":
        return K.conv_transpose(x, _param(node, "weight"), _param(node, "bias"), a["stride"],
                                a["padding"], a["output_padding"], a["dilation"],
                                int(a["groups"]))
    if op == "scale":
        shape = (1, -1) + (1,) * (x.ndim - 2)
        w = _param(node, "weight").astype(np.float64).reshape(shape)
        b = _param(node, "bias").astype(np.float64).reshape(shape)
        return K.f32(x.astype(np.float64) * w + b)
    if op == "relu":
        return np.maximum(x, np.float32(0))
    if op == "relu6":
        return np.clip(x, np.float32(0), np.float32(6))
    if op == "leaky_relu":
        return K.leaky_relu(x, a["alpha"])
    if op == "sigmoid":
        return K.sigmoid(x)
    if op == "tanh":
        return K.f32(np.tanh(x.astype(np.float64)))
    if op == "hardswish":
        return K.hardswish(x)
    if op in ("max_pool1d", "max_pool2d"):
        return K.max_pool(x, a["kernel"], a["stride"], a["padding"], bool(a["ceil_mode"]))
    if op in ("avg_pool1d", "avg_pool2d"):
        return _avg_scale(node, K.avg_pool(x, a["kernel"], a["stride"], a["padding"],
                                           bool(a["ceil_mode"]), bool(a["count_include_pad"])))
    if op in ("adaptive_avg_pool1d", "adaptive_avg_pool2d"):
        return _avg_scale(node, K.adaptive_avg_pool(x, a["output_size"]))
    if op in ("adaptive_max_pool1d", "adaptive_max_pool2d"):
        return K.adaptive_max_pool(x, a["output_size"])
    if op in ("add", "sub", "mul"):
        p, q = (np.asarray(v, np.float64) for v in _binary(node, xs))
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[op]
        return K.f32(fn(p, q))
    if op == "concat":
        return np.concatenate(xs, axis=int(a["axis"]))
    if op == "flatten":
        start, end = int(a["start_dim"]) % x.ndim, int(a["end_dim"]) % x.ndim
        return np.reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])
    if op == "reshape":
        return np.reshape(x, out_shape if out_shape is not None else tuple(a["shape"]))
    if op == "mean":
        dims = [int(d) % x.ndim for d in a["dims"]]
        return _avg_scale(node, K.mean(x, dims, bool(a["keepdim"])))
    if op == "softmax":
        return K.softmax(x, int(a["dim"]))
    if op == "custom":
        impl = custom.get(a["op_name"])
        if impl is None:
            raise KeyError(f"node {node.name!r}: no implementation given for custom op "
                           f"{a['op_name']!r}; pass custom_ops={{{a['op_name']!r}: fn}}")
        return np.asarray(impl(xs, a), dtype=np.float32)
    raise KeyError(f"node {node.name!r}: op type {op!r} has no reference implementation")


def run_reference(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    custom_ops: Mapping[str, CustomImpl] | None = None,
    round_method: int | str = DPU_ROUND_METHOD,
) -> dict[str, np.ndarray]:
    """Run `graph` on `inputs` (keyed by input node name, torch layout) and return every node
    output (keyed by tensor name, float32, torch layout), quantized where the graph says so.

    `round_method` (a kernels method, default DPU round) exists to model other runtimes, e.g.
    "half_even" for ONNX QuantizeLinear."""
    validate_cnn_graph(graph)
    custom = dict(custom_ops or {})
    values: dict[str, np.ndarray] = {}
    for node in graph.topological_order():
        out_name = node.outputs[0]
        if node.op_type == "input":
            if node.name not in inputs:
                raise KeyError(f"no value given for input node {node.name!r}")
            out = np.asarray(inputs[node.name], dtype=np.float32)
            expected = tensor_shape(graph, out_name)
            if out.shape[1:] != expected[1:]:
                raise ValueError(f"input {node.name!r} has shape {list(out.shape)}, the graph "
                                 f"expects {list(expected)} (any batch)")
        else:
            xs = [values[t] for t in node.inputs]
            for index, fix in input_fix_of(node).items():
                xs[index] = dpu_round(xs[index], fix, round_method)
            expected = tensor_shape(graph, out_name)
            out_shape = (xs[0].shape[0],) + tuple(expected[1:]) if xs else expected
            out = run_node(node, xs, out_shape, custom)
        fix = fix_of(node)
        values[out_name] = dpu_round(out, fix, round_method) if fix else np.asarray(out, np.float32)
    return values

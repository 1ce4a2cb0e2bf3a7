"""Reference executor: runs a neutral CNN graph with its fix facts in NumPy (torch layout).

Why: it is the independent answer every exporter is checked against (the xmodel evaluated op by
op, the ONNX model in onnxruntime, the deploy-check dumps) and the front ends' tests compare
their quantized models with it. Semantics, per node in topological order:

1. each input listed in `attrs["input_fix"]` is fake-quantized (DPU round, kernels method 2);
2. the op runs in float (float64 inside, float32 out; see `kernels`), on params that are already
   quantized, as its entry in the op registry says (`OpDef.reference`, `nndct_shared.graph.ops`);
   avg pools and `mean` multiply by `attrs["dpu_scale"]` when the front end set it;
3. a quantized output (`attrs["fix"]`) is fake-quantized with DPU round.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..graph import Graph, Node
from ..graph.ops import find_op
from ..kernels import fix_neuron
from ..kernels.methods import DPU_ROUND
from .validate import fix_of, input_fix_of, tensor_shape, validate_cnn_graph

__all__ = ["run_reference", "run_node", "dpu_round", "CustomImpl"]

#: A custom op implementation: (inputs in torch layout, node attrs) -> output.
CustomImpl = Callable[[list[np.ndarray], Mapping[str, Any]], np.ndarray]

DPU_ROUND_METHOD = DPU_ROUND


def dpu_round(x: np.ndarray, fix: tuple[int, int],
              method: int | str = DPU_ROUND_METHOD) -> np.ndarray:
    """fix_neuron with DPU round (ties toward +inf) by default, float32 in and out."""
    return fix_neuron(np.ascontiguousarray(x, dtype=np.float32), fix[0], fix[1], method)


def run_node(node: Node, xs: list[np.ndarray], out_shape: tuple[int, ...] | None = None,
             custom: Mapping[str, CustomImpl] | None = None) -> np.ndarray:
    """The float result of one node's op on its (already input-fixed) inputs, before its
    output fix: the op's `reference` facet (`nndct_shared.graph.ops`). `out_shape` is the
    reshape target for the actual batch (default: the node's `shape` attr). Front ends use it
    to infer output shapes while they build a graph."""
    op = find_op(node.op_type)
    if op is None:
        raise KeyError(f"node {node.name!r}: op type {node.op_type!r} has no reference implementation")
    return op.reference(node, xs, out_shape, custom or {})


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
        expected = tensor_shape(graph, out_name)
        if node.op_type == "input":
            if node.name not in inputs:
                raise KeyError(f"no value given for input node {node.name!r}")
            xs = [np.asarray(inputs[node.name], dtype=np.float32)]
            if xs[0].shape[1:] != expected[1:]:
                raise ValueError(f"input {node.name!r} has shape {list(xs[0].shape)}, the graph "
                                 f"expects {list(expected)} (any batch)")
        else:
            xs = [values[t] for t in node.inputs]
            for index, fix in input_fix_of(node).items():
                xs[index] = dpu_round(xs[index], fix, round_method)
        out_shape = (xs[0].shape[0],) + tuple(expected[1:]) if xs else expected
        out = run_node(node, xs, out_shape, custom)
        fix = fix_of(node)
        values[out_name] = dpu_round(out, fix, round_method) if fix else np.asarray(out, np.float32)
    return values

"""A flatten after channels-first feature maps, written as vai_q_pytorch 3.x writes it.

Torch flattens `[N, C, H, W]` in C, H, W order; XIR feature maps are `[N, H, W, C]`, so a literal
translation needs a `transpose` back to channels-first before the `flatten`, and an extra
transpose can split the DPU subgraph. The reference instead folds the reorder into the dense
layer that reads the flattened features: the xmodel reshapes the channels-last map as it is
(`reshape` to `[N, H*W*C]`) and the dense layer's weight columns are permuted to match, which
computes the same numbers (a sum over the same products in another order of the columns).

A shape-only node (flatten / reshape, `OpDef.shape_only`) is folded when it turns a rank-3/4
map into `[N, C*S]` (the batch kept), is not a model output, and every reader is an op whose
weight columns can absorb the permutation (`OpDef.folds_input_reorder`: linear) and reads it as
its input. The xmodel writer, its deploy-check dumps and the tests that compare xmodel values
with the model's all go through `folded_input_shape` / `xir_value` / `torch_value`.
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph, Node
from ..graph.ops import get_op
from .layout import from_xir, to_xir

__all__ = ["channels_last_order", "folded_input_shape", "reads_folded", "torch_value", "xir_value"]


def folded_input_shape(graph: Graph, node: Node) -> tuple[int, ...] | None:
    """The channels-first input shape of a folded flatten / reshape node, else None."""
    if not get_op(node.op_type).shape_only or len(node.inputs) != 1 or len(node.outputs) != 1:
        return None
    source, target = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    if source is None or target is None or source.shape is None or target.shape is None:
        return None
    in_shape, out_shape = tuple(source.shape), tuple(target.shape)
    if (len(in_shape) not in (3, 4) or len(out_shape) != 2 or out_shape[0] != in_shape[0]
            or out_shape[1] != int(np.prod(in_shape[1:]))):
        return None
    if node.name in {n.name for n in graph.outputs}:
        return None
    readers = graph.consumers(node.outputs[0])
    if not readers or any(not get_op(r.op_type).folds_input_reorder or r.inputs[0] != node.outputs[0]
                          or r.inputs.count(node.outputs[0]) != 1 for r in readers):
        return None
    return in_shape


def reads_folded(graph: Graph, node: Node) -> tuple[int, ...] | None:
    """For a reader of a folded node: the channels-first shape behind its input, else None."""
    producer = graph.producer(node.inputs[0]) if node.inputs else None
    return None if producer is None else folded_input_shape(graph, producer)


def channels_last_order(shape: tuple[int, ...]) -> np.ndarray:
    """For a channels-first map `shape` ([N, C, *S]): index k of its channels-last flattening
    holds element order[k] of its channels-first flattening."""
    per_sample = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:])
    return np.moveaxis(per_sample, 0, -1).reshape(-1)


def xir_value(graph: Graph, node: Node, value: np.ndarray) -> np.ndarray:
    """A node's output (torch layout) as the xmodel holds it."""
    shape = folded_input_shape(graph, node)
    if shape is None:
        return to_xir(value)
    value = np.asarray(value)
    return np.ascontiguousarray(value[:, channels_last_order(shape)])


def torch_value(graph: Graph, node: Node, value: np.ndarray) -> np.ndarray:
    """The inverse of `xir_value`: an xmodel value of the node's output in torch layout."""
    shape = folded_input_shape(graph, node)
    if shape is None:
        return from_xir(value)
    value = np.asarray(value)
    out = np.empty_like(value)
    out[:, channels_last_order(shape)] = value
    return out

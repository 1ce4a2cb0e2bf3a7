"""The graph input: the value a front end feeds (torch layout, any batch)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...cnn_export import layout as L
from ...inspector.partition import DPU
from ..naming import to_op_name
from .base import NONE, OpContractError, OpDef, register


@register("input", nndct_op="nndct_input", arity=NONE, graph_rule_late=True)
class Input(OpDef):
    """A graph input; its output tensor has the input shape (with a batch dim)."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        if out_shape[0] < 1:
            raise OpContractError(f"input shape {list(out_shape)} has no batch")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return np.asarray(xs[0], dtype=np.float32)   # the fed value (the executor checks its shape)

    def to_xmodel(self, b: Any, node, xs) -> str:
        return b.x.add_data(to_op_name(node.name), L.xir_shape(b.shape(node.outputs[0]))).name

    def to_onnx(self, b: Any, node, xs) -> str:
        return b.unique(node.name)

    def dpu_rule(self, graph, node, target) -> str:
        return ""

    def dpu_graph_rule(self, graph, node, target, device) -> str:
        children = graph.successors(node.name)
        if children and not any(device[c.name] == DPU for c in children):
            return "All the children nodes are assigned to CPU."
        return ""

    def dpu_engine(self, graph, node, target, device) -> str:
        return "Graph input of a DPU subgraph, read by the load engine."

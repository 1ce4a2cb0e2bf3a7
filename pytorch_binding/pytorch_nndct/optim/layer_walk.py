"""One pass over a converted CNN model, node by node, its float and its quantized version side by
side: what bias correction and fast finetune need, in about two forwards instead of two per layer.

Both algorithms visit the weighted layers in topological order and need, for each, the float
model's output of that layer and the quantized model's input of that layer, with every layer
before it already corrected (or finetuned). The earlier way recomputed the model from its
inputs up to each layer, twice per layer (float and quantized), which costs about
2 x (number of layers) / 2 forwards: 75 s for 64 images of a small ResNet whose forward takes 1 s.

`LayerWalk` runs each node once on every recorded batch: the float side with the node's
runtime removed (so its params are the float ones: a layer's float output is computed before
the algorithm changes that layer), the quantized side through a test-mode runtime with the
calibrated fix positions. At a weighted layer the caller's `visit` sees the layer's float
outputs and quantized inputs, may change the layer (bias, weights, their fix positions) and
returns its new quantized outputs, which the nodes after it then read. Values are freed after
their last reader. Every node computes exactly what the model's own forward computes on the
same inputs, so the results are those of the recomputation, bit for bit.

Memory: the live values of both sides for all recorded samples (`nndct_shared.cnn.walk_memory`
estimates the peak from the captured shapes, so that a caller can fall back to recomputation
when it would not fit).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from nndct_shared.cnn.walk_memory import MEMORY_FRACTION, walk_bytes, walk_fits
from nndct_shared.graph import Graph, Node
from nndct_shared.progress import progress

from ..nn.cnn_modules import NodeModule
from .layer_data import Batch, module_with, node_modules

__all__ = ["LayerWalk", "MEMORY_FRACTION", "Visit", "walk_bytes", "walk_fits"]

#: visit(node, module, float outputs per batch, quantized inputs per batch, quantize) -> new
#: quantized outputs per batch, or None to keep the module's quantized outputs as they are;
#: `quantize()` computes the module's quantized outputs now (with its current params).
Visit = Callable[[Node, NodeModule, list[torch.Tensor], list[tuple[torch.Tensor, ...]],
                  Callable[[], list[torch.Tensor]]], "list[torch.Tensor] | None"]


def _call(module: NodeModule, runtime: Any, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    with module_with(module, runtime), torch.no_grad():
        return module(*inputs)


class LayerWalk:
    """The node-by-node pass of the module docstring over `batches` (model inputs)."""

    def __init__(self, model: nn.Module, graph: Graph, batches: Sequence[Batch]) -> None:
        order = graph.topological_order()
        modules = node_modules(model)
        if [m.node_name for m in modules] != [n.name for n in order]:
            raise RuntimeError("the converted model's modules are not the captured graph's nodes in "
                               "topological order")
        self.steps = list(zip(order, modules))
        self.batches = list(batches)

    def walk(self, runtime: Any, visit: Visit, desc: str = "Layers") -> None:
        """Run every node on every batch (float, and quantized with `runtime`), calling `visit` at
        each node; `runtime`'s fix positions may be changed by `visit` for later nodes."""
        readers = Counter(t for node, _ in self.steps for t in node.inputs)
        floats: dict[str, list[torch.Tensor]] = {}
        quants: dict[str, list[torch.Tensor]] = {}
        inputs_seen = 0
        for node, module in progress(self.steps, desc=desc, unit="node"):
            if node.op_type == "input":
                xs_f = xs_q = [(batch[inputs_seen],) for batch in self.batches]
                inputs_seen += 1
            else:
                xs_f = [tuple(floats[t][i] for t in node.inputs) for i in range(len(self.batches))]
                xs_q = [tuple(quants[t][i] for t in node.inputs) for i in range(len(self.batches))]
            ys_f = [_call(module, None, x) for x in xs_f]

            def quantize(module: NodeModule = module, xs_q: list = xs_q) -> list[torch.Tensor]:
                return [_call(module, runtime, x) for x in xs_q]

            ys_q = visit(node, module, ys_f, xs_q, quantize)
            if ys_q is None:
                ys_q = quantize()
            floats[node.outputs[0]], quants[node.outputs[0]] = ys_f, ys_q
            for name in node.inputs:
                readers[name] -= 1
                if readers[name] == 0:
                    floats.pop(name, None)
                    quants.pop(name, None)

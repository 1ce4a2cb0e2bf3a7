"""Hardware-aware quantization: what the quantizer must change so a model fits a DPU target.

Why: with `torch_quantizer(..., target=...)` the reference quantized "with the power of the
Inspector" (user guide, Hardware-Aware Quantization Strategy): the quantization follows what
the target can run. This module states those changes as data, framework-neutral; the front
end's quantizer applies them (`nndct_shared.cnn.hardware_aware`).

Contract (for the quantizer that receives `target=`):

- `hardware_aware_partition(graph, target, quantized)` is the DPU/CPU assignment the quantizer
  follows: the float graph inspected with every LeakyReLU slope that will be changed already
  changed, and the nodes outside `quantized` (the model's QuantStub regions; None = all) kept
  in float. Quantized nodes are the quantized nodes on the DPU; a node on the CPU runs in float.
- `hardware_aware_adjustments(graph, target, quantized)` lists every change, in this order:
  first the node-local ones, in node order, then the partition ones, in node order:
  - ``kind == "leaky_relu_alpha"``: set the LeakyReLU node's negative slope to `new`
    (26/256 = 0.1015625) in the quantized model, and emit the catalogued warning
    ``warn("LEAKYRELU", node=adj.node, slope=adj.old)``. Only for LeakyReLUs that then run on
    the DPU (one on the CPU for another reason keeps its float slope);
  - ``kind == "bit_width"``: quantize the named tensor (`attr` = "output", "input <i>" or the
    param role) with `new` bits (8) whatever the bitwidth argument / config says (listed for a
    graph that already carries `fix` attrs; a quantizer planning fixes sets every width to
    `DpuTarget.bit_width`);
  - ``kind == "keep_float"``: the node runs on the CPU: do not quantize `attr` (its "output"
    when no DPU node reads it, and each of its params);
  - ``kind == "dpu_input"``: the node runs on the CPU but a DPU node reads its output: quantize
    that output as an input tensor of the DPU subgraph (as a QuantStub would).
- the target's global facts are `DpuTarget.bit_width` (8) and `DpuTarget.leaky_relu_alpha`.
Adjustments are pure data: applying them twice is harmless, and an empty list means the
model already fits the target.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from ..graph import Graph, Node
from .partition import CPU, DPU, InspectResult, inspect_graph, node_fixes
from .targets import DpuTarget, get_target

__all__ = ["Adjustment", "hardware_aware_adjustments", "hardware_aware_adjustments_for_nodes",
           "hardware_aware_partition"]


@dataclass(frozen=True)
class Adjustment:
    """One change: on `node`, set `attr` from `old` to `new` (`kind` names the rule)."""

    node: str
    kind: str
    attr: str
    old: Any
    new: Any
    reason: str

    def describe(self) -> str:
        if self.kind == "keep_float":
            return f"hardware-aware quantization keeps {self.attr} in float: {self.reason}"
        if self.kind == "dpu_input":
            return f"hardware-aware quantization quantizes {self.attr} as a DPU input: {self.reason}"
        return (f"hardware-aware quantization sets {self.attr} from {self.old} to {self.new}: "
                f"{self.reason}")


def hardware_aware_adjustments_for_nodes(nodes: Iterable[Node],
                                         target: DpuTarget) -> list[Adjustment]:
    """The node-local changes (LeakyReLU slope, bit widths), in node order."""
    found: list[Adjustment] = []
    for node in nodes:
        if node.op_type == "leaky_relu":
            alpha = float(node.attrs.get("alpha", 0.01))
            if alpha != target.leaky_relu_alpha:
                found.append(Adjustment(node.name, "leaky_relu_alpha", "alpha", alpha,
                                        target.leaky_relu_alpha,
                                        "the only LeakyReLU slope DPU supports"))
        for what, fix in node_fixes(node):
            if int(fix[0]) != target.bit_width:
                found.append(Adjustment(node.name, "bit_width", what, int(fix[0]),
                                        target.bit_width, "DPU computes in int8 only"))
    return found


def _with_alpha(graph: Graph, alphas: dict[str, float]) -> Graph:
    """A shallow copy of `graph` whose named LeakyReLU nodes have the given slopes."""
    if not alphas:
        return graph
    out = Graph(graph.name, graph.attrs)
    for node in graph.nodes:
        attrs = dict(node.attrs)
        if node.name in alphas:
            attrs["alpha"] = alphas[node.name]
        out.add_node(Node(node.name, node.op_type, attrs, list(node.inputs), list(node.outputs),
                          dict(node.params)))
    out.tensors = dict(graph.tensors)
    out.set_inputs([n.name for n in graph.inputs])
    out.set_outputs([n.name for n in graph.outputs])
    return out


def _in_scope(graph: Graph, quantized: Collection[str] | None) -> list[Node]:
    order = graph.topological_order()
    return order if quantized is None else [n for n in order if n.name in quantized]


def _partition(graph: Graph, dpu: DpuTarget, quantized: Collection[str] | None
               ) -> tuple[InspectResult, list[Adjustment]]:
    """(partition, slope adjustments of the LeakyReLUs that run on the DPU with the new slope)."""
    scope = _in_scope(graph, quantized)
    slopes = [a for a in hardware_aware_adjustments_for_nodes(scope, dpu)
              if a.kind == "leaky_relu_alpha"]
    float_nodes = () if quantized is None else [
        n.name for n in graph.topological_order() if n.name not in quantized and n.op_type != "input"]
    result = inspect_graph(_with_alpha(graph, {a.node: a.new for a in slopes}), dpu,
                           quantized=False, float_nodes=float_nodes)
    kept = [a for a in slopes if result.device_of(a.node) == DPU]
    if len(kept) != len(slopes):     # a LeakyReLU on the CPU anyway keeps its float slope
        result = inspect_graph(_with_alpha(graph, {a.node: a.new for a in kept}), dpu,
                               quantized=False, float_nodes=float_nodes)
    return result, kept


def hardware_aware_partition(graph: Graph, target: str | int | DpuTarget,
                             quantized: Collection[str] | None = None) -> InspectResult:
    """The DPU/CPU assignment hardware-aware quantization follows (see the module docstring)."""
    return _partition(graph, get_target(target), quantized)[0]


def hardware_aware_adjustments(graph: Graph, target: str | int | DpuTarget,
                               quantized: Collection[str] | None = None) -> list[Adjustment]:
    """Everything the quantizer must change for `target` (see the module docstring).

    `quantized`: the nodes the model quantizes (its QuantStub regions); None: every node."""
    dpu = get_target(target)
    result, slopes = _partition(graph, dpu, quantized)
    scope = _in_scope(graph, quantized)
    found = [a for a in hardware_aware_adjustments_for_nodes(scope, dpu)
             if a.kind != "leaky_relu_alpha" or a in slopes]
    for node in scope:
        assignment = result.assignments[node.name]
        if assignment.device != CPU or node.op_type == "input":
            continue
        why = f"it runs on CPU ({assignment.reason})"
        for role in node.params:
            found.append(Adjustment(node.name, "keep_float", role, None, None, why))
        readers = [r.name for r in graph.successors(node.name) if result.device_of(r.name) == DPU]
        if readers:
            found.append(Adjustment(node.name, "dpu_input", "output", None, None,
                                    f"it runs on CPU ({assignment.reason}) and DPU node "
                                    f"'{readers[0]}' reads it"))
        else:
            found.append(Adjustment(node.name, "keep_float", "output", None, None, why))
    return found

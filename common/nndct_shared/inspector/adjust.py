"""Hardware-aware quantization: what the quantizer must change so a model fits a DPU target.

Why: with `torch_quantizer(..., target=...)` the reference quantized "with the power of the
Inspector" (user guide, Hardware-Aware Quantization Strategy): the quantization follows what
the target can run. This module states those changes as data, framework-neutral; the front
end's quantizer applies them.

Contract (for the quantizer that receives `target=`):

- call `hardware_aware_adjustments(graph, target)` on the captured neutral graph (float or
  already carrying `fix` attrs) before calibration, and apply every `Adjustment` in order:
  - ``kind == "leaky_relu_alpha"``: set the LeakyReLU node's negative slope to `new`
    (26/256 = 0.1015625) in the quantized model, and emit the catalogued warning
    ``warn("LEAKYRELU", node=adj.node, slope=adj.old)``;
  - ``kind == "bit_width"``: quantize the named tensor (`attr` = "output", "input <i>" or the
    param role) with `new` bits (8) whatever the bitwidth argument / config says;
  - ``kind == "keep_float"``: the node runs on the CPU and no DPU node reads its output, so do
    not quantize its output (leave the node without `fix`).
- the target's global facts are `DpuTarget.bit_width` (8) and `DpuTarget.leaky_relu_alpha`.
Adjustments are pure data: applying them twice is harmless, and an empty list means the
model already fits the target.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..graph import Graph, Node
from .partition import node_fixes
from .targets import DpuTarget, get_target

__all__ = ["Adjustment", "hardware_aware_adjustments", "hardware_aware_adjustments_for_nodes"]


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


def hardware_aware_adjustments(graph: Graph, target: str | int | DpuTarget) -> list[Adjustment]:
    """Everything the quantizer must change for `target` (see the module docstring)."""
    from .partition import CPU, DPU, inspect_graph

    dpu = get_target(target)
    order = graph.topological_order()
    found = hardware_aware_adjustments_for_nodes(order, dpu)
    result = inspect_graph(graph, dpu, quantized=False)
    for node in order:
        assignment = result.assignments[node.name]
        if assignment.device != CPU or node.op_type == "input":
            continue
        readers = graph.successors(node.name)
        if any(result.device_of(r.name) == DPU for r in readers):
            continue
        if node.op_type == "leaky_relu" and assignment.reason.startswith("Its alpha"):
            continue    # the slope adjustment moves it to the DPU
        found.append(Adjustment(node.name, "keep_float", "output", None, None,
                                f"it runs on CPU ({assignment.reason})"))
    return found

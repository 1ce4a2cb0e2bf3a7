"""Where fix points go in a captured CNN graph (the reference's placement for DPU targets).

Rules, applied to the nodes that run quantized (all nodes, or those inside QuantStub /
DeQuantStub regions):

- every param (weight, bias, `other` constant) of a quantized node gets a fix;
- the output of a quantized node gets a fix, except
  - shape-only ops (`flatten`, `reshape`): their output is their input, already on its grid;
  - a conv/linear/scale/add whose only consumer is a quantized relu/relu6/leaky_relu (and that
    is not a graph output): the DPU fuses the activation into the conv, so the one fix sits
    after the activation (the reference's `FFN::FFN/input.2` entry for `l1` + relu);
  (which ops are shape-only, fused activations and fusing producers is declared by each op's
  entry in the op registry, `nndct_shared.graph.ops`: `shape_only`, `fused_activation`,
  `fusing_producer`);
- graph inputs feeding the quantized part, and float outputs that enter a region through a
  QuantStub, get a fix of kind `input` (the reference calibrates those with search range 1);
  the output of a layer that a config option keeps in float gets kind `activation` where a
  quantized node reads it (it is a layer output, `keep_float`).

The plan is structural only; the front end resolves bit widths and methods from the config.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from nndct_shared.graph import Graph, Node
from nndct_shared.graph.ops import get_op

__all__ = ["FixPlan", "PlannedTensor", "plan_fixes"]

_PARAM_KINDS = {"weight": "weights", "bias": "bias", "other": "weights"}


@dataclass(frozen=True)
class PlannedTensor:
    """One tensor to quantize: `kind` is the config's tensor kind (input / weights / bias /
    activation), `node` the node it belongs to, `role` the param role (None for outputs)."""

    name: str
    kind: str
    node: str
    role: str | None = None


@dataclass
class FixPlan:
    """Params and node outputs to quantize, in graph order (the order of quant_info.json)."""

    params: dict[str, PlannedTensor] = field(default_factory=dict)
    outputs: dict[str, PlannedTensor] = field(default_factory=dict)


def _fused_into_activation(graph: Graph, node: Node, quantized: Collection[str],
                           graph_outputs: set[str]) -> bool:
    if not get_op(node.op_type).fusing_producer or node.name in graph_outputs:
        return False
    consumers = graph.consumers(node.outputs[0])
    return (len(consumers) == 1 and get_op(consumers[0].op_type).fused_activation
            and consumers[0].name in quantized)


def plan_fixes(graph: Graph, quantized: Collection[str], quant_inputs: Collection[str] = (),
               activation_inputs: Collection[str] = ()) -> FixPlan:
    """The fix placement for `graph`.

    `quantized`: names of nodes that run quantized. `quant_inputs`: names of float nodes (or
    graph inputs) whose output enters a quantized region, and is therefore quantized as an
    input tensor; those also in `activation_inputs` are quantized as activations instead (a
    layer output that a config option keeps in float, `keep_float`).
    """
    quantized = set(quantized)
    graph_outputs = {n.name for n in graph.outputs}
    plan = FixPlan()
    for node in graph.topological_order():
        if node.name in quantized:
            for role, tensor in node.params.items():
                plan.params[tensor.name] = PlannedTensor(tensor.name, _PARAM_KINDS.get(role, "weights"),
                                                         node.name, role)
        if node.op_type == "input" or node.name in quant_inputs:
            if node.op_type == "input" and node.name not in quant_inputs and node.name not in quantized:
                continue
            kind = "activation" if node.name in activation_inputs else "input"
            plan.outputs[node.name] = PlannedTensor(node.name, kind, node.name)
            continue
        if node.name not in quantized or get_op(node.op_type).shape_only:
            continue
        if _fused_into_activation(graph, node, quantized, graph_outputs):
            continue
        plan.outputs[node.name] = PlannedTensor(node.name, "activation", node.name)
    return plan

"""Layers the config keeps in float: `keep_first_last_layer_accuracy` and
`keep_add_layer_accuracy`.

The guide lists both switches (its example config sets them false) without saying more; the
reference tool reserved them ("whether to skip quantization of the first and last layers" /
"of add layers", never implemented). Here they do what those words say, on the captured graph,
before the fix plan is made:

- a *layer* is a weighted node (an op whose registry entry has a `weight_axis`: linear,
  conv1d, conv2d, conv_transpose2d) or an ``add`` node, together with the activation it fuses
  with (its only reader, an op the registry marks `fused_activation`: relu, relu6, leaky_relu,
  a relu-like clamp; the DPU's one layer, as `fix_plan` places its one fix);
- first layers: the weighted nodes that a model input reaches without passing another
  weighted node; last layers: those that reach a model output without passing another one
  (one of each for a plain chain; a branchy model can have several);
- add layers: every ``add`` node;
- a kept layer runs in float: its params and its output are not quantized. When a quantized
  node reads its output, that output is quantized, as at a QuantStub boundary (the quantized
  part computes on the fixed-point grid; the fix sits on the tensor, so every reader sees it),
  with the activation settings it would have had (kind ``activation``, not ``input``: it is a
  layer output, and the input kind's maxmin calibration would cost accuracy); a model input
  read only by kept layers is not quantized at all, so a float first layer sees the exact input.

The result is only a new (quantized nodes, quant inputs) pair, so hardware-aware quantization,
the exports and the Inspector treat kept layers like any other float region.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from nndct_shared.graph import Graph
from nndct_shared.graph.ops import get_op
from nndct_shared.messages import note

__all__ = ["add_layers", "first_and_last_layers", "is_weighted", "keep_in_float",
           "keep_layers_in_float", "layer_nodes"]


def is_weighted(op_type: str) -> bool:
    """Whether `op_type` is a weighted layer (its registry entry has a weight axis)."""
    return get_op(op_type).weight_axis is not None


def _reach(graph: Graph, starts: Iterable[str], forward: bool) -> list[str]:
    """Weighted nodes reached from `starts` (forward or backward) without passing another."""
    found: list[str] = []
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = graph.node(name)
        if is_weighted(node.op_type):
            found.append(name)
            continue
        neighbours = graph.successors(name) if forward else graph.predecessors(name)
        stack.extend(n.name for n in neighbours)
    return found


def first_and_last_layers(graph: Graph) -> list[str]:
    """The first and the last weighted nodes (see the module docstring), in graph order."""
    first = _reach(graph, (n.name for n in graph.inputs), forward=True)
    last = _reach(graph, (n.name for n in graph.outputs), forward=False)
    wanted = set(first) | set(last)
    return [n.name for n in graph.topological_order() if n.name in wanted]


def add_layers(graph: Graph) -> list[str]:
    """Every ``add`` node, in graph order."""
    return [n.name for n in graph.topological_order() if n.op_type == "add"]


def layer_nodes(graph: Graph, names: Iterable[str]) -> set[str]:
    """`names` with the activation each one fuses with (its only reader, not a model output)."""
    outputs = {n.name for n in graph.outputs}
    result = set(names)
    for name in list(result):
        node = graph.node(name)
        readers = graph.consumers(node.outputs[0])
        if (name not in outputs and len(readers) == 1
                and get_op(readers[0].op_type).fused_activation):
            result.add(readers[0].name)
    return result


def keep_in_float(graph: Graph, quantized: Collection[str], keep: Collection[str]
                  ) -> tuple[set[str], set[str]]:
    """(quantized nodes, quant inputs) with the nodes `keep` in float (module docstring).

    `quantized` are the nodes that run quantized before; the quant inputs returned are every
    float node (or model input) whose output a quantized node reads; those of them in `keep`
    are the activation-kind boundaries (`plan_fixes(activation_inputs=...)`).
    """
    now = set(quantized) - set(keep)
    for node in graph.inputs:
        readers = graph.successors(node.name)
        if node.name in now and readers and all(r.name in keep for r in readers):
            now.discard(node.name)
    quant_inputs = {n.name for n in graph if n.name not in now
                    and any(s.name in now for s in graph.successors(n.name))}
    return now, quant_inputs


def keep_layers_in_float(graph: Graph, quantized: Collection[str], quant_inputs: Collection[str],
                         config: Any) -> tuple[set[str], set[str], set[str]]:
    """(quantized nodes, quant inputs, activation-kind boundaries) after the config's
    keep_first_last_layer_accuracy and keep_add_layer_accuracy (unchanged, and no boundaries,
    when both are false), with a KEEP_FLOAT_LAYERS note per option naming the layers."""
    keep: set[str] = set()
    for option, find in (("keep_first_last_layer_accuracy", first_and_last_layers),
                         ("keep_add_layer_accuracy", add_layers)):
        if not getattr(config, option):
            continue
        heads = [name for name in find(graph) if name in quantized]
        note("KEEP_FLOAT_LAYERS", option=option, count=len(heads),
             names=", ".join(f"'{name}'" for name in heads) or "(none)")
        keep |= layer_nodes(graph, heads)
    if not keep:
        return set(quantized), set(quant_inputs), set()
    now, inputs = keep_in_float(graph, quantized, keep)
    return now, inputs, inputs & keep

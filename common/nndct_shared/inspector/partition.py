"""Assign every node of a neutral CNN graph to the DPU or the CPU, with the reason, and cut the
graph into device subgraphs.

Why: users want to know before deployment which ops fall back to the CPU and why (the
reference Inspector's `inspect_<target>.txt`); hardware-aware quantization needs the same
answer to decide what to keep in float. The rules follow the vai_q_pytorch Inspector's
per-op filters (kernel, stride, padding, channel and weight-buffer limits from the target's
engines) and its messages' style ("'kernel'(17 x 17) is not in DPU supported range([1-16])."):
each op's rule is its entry's `dpu_rule` / `dpu_graph_rule` / `dpu_engine` in the op registry
(`nndct_shared.graph.ops`), with the helpers of `rules`.

Rules that hold for every node, checked first:
- an op with no quantized form (its entry's `quantizable` is False: GELU, LayerNorm, ...)
  runs in float on the CPU, for its entry's reason ("DPU does not support gelu.");
- quantization: in a quantized graph (some node has `fix`), a node outside the quantized part
  runs in float ("Not in quantizable part."). A node is inside when it has a fix on its output,
  an input or a param, when it is a shape-only op (flatten, reshape) reading the quantized part,
  or when it is a conv/linear/scale/add whose only reader is a quantized relu/relu6/leaky_relu
  (the fix sits after the fused activation, `nndct_shared.cnn.fix_plan`). Any
  `fix`/`input_fix`/param `fix` bit width other than 8 goes to the CPU. A float graph (no `fix`
  anywhere, the Inspector's input) is inspected as if it were quantized to 8 bits; there,
  `float_nodes` names the nodes the user keeps in float (outside QuantStub regions).
- outputs of more than 4 dimensions go to the CPU.
Then the op's own rule, then graph rules in topological order: graph inputs follow their
consumers; reshape/flatten need a DPU producer and keep the batch dimension at a DPU/CPU
boundary; a concat whose inputs all come from the CPU goes to the CPU.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..graph import Graph, Node
from ..graph.ops import find_op, get_op
from .rules import output_shape
from .targets import DpuTarget, get_target

__all__ = ["DPU", "CPU", "NodeAssignment", "Subgraph", "InspectResult", "inspect_graph"]

DPU = "DPU"
CPU = "CPU"


@dataclass(frozen=True)
class NodeAssignment:
    """Where one node runs: `device` "DPU" or "CPU"; `reason` says why a node is on the CPU
    (empty on the DPU); `engine` says which DPU engine runs a DPU node (empty on the CPU);
    `notes` carry extra facts (e.g. what hardware-aware quantization changes)."""

    name: str
    op_type: str
    device: str
    reason: str = ""
    notes: tuple[str, ...] = ()
    engine: str = ""

    @property
    def why(self) -> str:
        """The reason for the assignment, whichever the device: the DPU engine that runs the
        node, or the hardware constraint that sends it to the CPU."""
        return self.engine if self.device == DPU else self.reason


@dataclass(frozen=True)
class Subgraph:
    """A maximal connected set of nodes on one device (edges between same-device nodes)."""

    name: str
    device: str
    nodes: tuple[str, ...]


@dataclass
class InspectResult:
    """The assignment of every node (in topological order) and the device subgraphs."""

    graph: Graph
    target: DpuTarget
    assignments: dict[str, NodeAssignment]
    subgraphs: tuple[Subgraph, ...] = field(default_factory=tuple)

    def device_of(self, node_name: str) -> str:
        return self.assignments[node_name].device

    def on(self, device: str) -> list[NodeAssignment]:
        return [a for a in self.assignments.values() if a.device == device]

    @property
    def cpu_nodes(self) -> list[NodeAssignment]:
        return self.on(CPU)

    @property
    def dpu_nodes(self) -> list[NodeAssignment]:
        return self.on(DPU)


def node_fixes(node: Node) -> list[tuple[str, Any]]:
    """Every `(what, (bit_width, fix_point))` of a node: its output, quantized inputs, params."""
    fixes: list[tuple[str, Any]] = []
    if "fix" in node.attrs:
        fixes.append(("output", node.attrs["fix"]))
    for index, fix in dict(node.attrs.get("input_fix", {})).items():
        fixes.append((f"input {index}", fix))
    for role, tensor in node.params.items():
        if "fix" in tensor.attrs:
            fixes.append((role, tensor.attrs["fix"]))
    return fixes


def _bit_width_problem(node: Node, target: DpuTarget) -> str:
    for what, fix in node_fixes(node):
        if int(fix[0]) != target.bit_width:
            return (f"Its {what} is quantized to {int(fix[0])} bits, but DPU only supports "
                    f"{target.bit_width}-bit quantization.")
    return ""


def _in_quantized_part(graph: Graph, node: Node) -> bool:
    """Whether `node` of a quantized graph runs quantized (see the module docstring)."""
    if node_fixes(node):
        return True
    op = find_op(node.op_type)
    if op is not None and op.shape_only:
        parents = graph.predecessors(node.name)
        return bool(parents) and all(_in_quantized_part(graph, p) for p in parents)
    if op is not None and op.fusing_producer and node.outputs:
        readers = graph.consumers(node.outputs[0])
        reader = find_op(readers[0].op_type) if len(readers) == 1 else None
        return reader is not None and reader.fused_activation and "fix" in readers[0].attrs
    return False


_FLOAT = "Not in quantizable part."


def _node_rule(graph: Graph, node: Node, target: DpuTarget, quantized: bool,
               float_nodes: frozenset[str] = frozenset()) -> str:
    """The reason `node` cannot run on the DPU, or "" if its own checks pass."""
    op = find_op(node.op_type)
    if op is None:
        return f"{node.op_type} can't be converted to XIR."
    refusal = op.dpu_refusal(node)
    if refusal:
        return refusal
    if not op.quantizable:          # no quantized form (LayerNorm, GELU, ...): never on a DPU
        return op.dpu_rule(graph, node, target)
    if node.op_type != "input":
        if node.name in float_nodes or (quantized and not _in_quantized_part(graph, node)):
            return _FLOAT
    msg = _bit_width_problem(node, target)
    if msg:
        return msg
    out_shape = output_shape(graph, node)
    if out_shape is not None and len(out_shape) > target.max_tensor_dims:
        return (f"DPU only supports tensors of up to {target.max_tensor_dims} dimensions, "
                f"its output has {len(out_shape)}.")
    return op.dpu_rule(graph, node, target)


# --- graph rules ----------------------------------------------------------------------------


def _graph_rules(graph: Graph, order: list[Node], device: dict[str, str],
                 reason: dict[str, str], target: DpuTarget) -> None:
    """Each op's `dpu_graph_rule` on the nodes still on the DPU, in topological order; the
    rules of graph inputs (`graph_rule_late`) after every other node's."""
    for late in (False, True):
        for node in order:
            if device[node.name] != DPU:
                continue
            op = get_op(node.op_type)          # a node on the DPU has a known op
            if op.graph_rule_late != late:
                continue
            why = op.dpu_graph_rule(graph, node, target, device)
            if why:
                device[node.name], reason[node.name] = CPU, why


def _partition(graph: Graph, order: list[Node], device: dict[str, str]) -> tuple[Subgraph, ...]:
    """Connected components of same-device nodes, numbered per device in topological order."""
    component: dict[str, int] = {}
    members: list[list[str]] = []
    for node in order:
        if node.name in component:
            continue
        index = len(members)
        members.append([])
        stack = [node]
        component[node.name] = index
        while stack:
            current = stack.pop()
            members[index].append(current.name)
            for other in graph.predecessors(current.name) + graph.successors(current.name):
                if other.name not in component and device[other.name] == device[node.name]:
                    component[other.name] = index
                    stack.append(other)
    position = {n.name: i for i, n in enumerate(order)}
    counters = {DPU: 0, CPU: 0}
    result = []
    for names in members:
        dev = device[names[0]]
        result.append(Subgraph(f"subgraph_{dev.lower()}_{counters[dev]}", dev,
                               tuple(sorted(names, key=position.__getitem__))))
        counters[dev] += 1
    return tuple(result)


def inspect_graph(graph: Graph, target: str | int | DpuTarget, *, quantized: bool | None = None,
                  float_nodes: Collection[str] = ()) -> InspectResult:
    """Assign every node of `graph` (a CNN graph following the op registry `nndct_shared.graph.ops`) to DPU or CPU.

    `target` is a name, fingerprint or `DpuTarget`. `quantized` says whether the graph carries
    quantization (`fix` attrs); None decides from the graph (any node with `fix`). A float
    graph is inspected as if every node were quantized to 8 bits, except `float_nodes` (nodes
    the model keeps in float, e.g. outside its QuantStub regions): they run on the CPU.
    """
    dpu = get_target(target)
    order = graph.topological_order()
    if quantized is None:
        quantized = any(node_fixes(n) for n in order)
    kept_float = frozenset(float_nodes)
    device: dict[str, str] = {}
    reason: dict[str, str] = {}
    for node in order:
        why = _node_rule(graph, node, dpu, quantized, kept_float)
        device[node.name] = CPU if why else DPU
        reason[node.name] = why
    _graph_rules(graph, order, device, reason, dpu)
    notes = _notes(order, dpu)
    assignments = {n.name: NodeAssignment(n.name, n.op_type, device[n.name], reason[n.name],
                                          notes.get(n.name, ()),
                                          _engine(graph, n, dpu, device) if device[n.name] == DPU
                                          else "")
                   for n in order}
    return InspectResult(graph, dpu, assignments, _partition(graph, order, device))


# --- which engine runs a DPU node -----------------------------------------------------------


def _engine(graph: Graph, node: Node, t: DpuTarget, device: dict[str, str]) -> str:
    """Why a DPU node runs on the DPU: the engine that computes it (its op's `dpu_engine`; the
    limits it was checked against are in the report's target info)."""
    return get_op(node.op_type).dpu_engine(graph, node, t, device)


def _notes(order: list[Node], target: DpuTarget) -> dict[str, tuple[str, ...]]:
    """Hints for the report: what hardware-aware quantization would change on the node."""
    from .adjust import hardware_aware_adjustments_for_nodes
    notes: dict[str, list[str]] = {}
    for adjustment in hardware_aware_adjustments_for_nodes(order, target):
        if adjustment.kind == "leaky_relu_alpha" and "leaky_relu" not in target.activations():
            continue        # no LeakyReLU on this DPU at all: its slope is not changed
        notes.setdefault(adjustment.node, []).append(adjustment.describe())
    return {k: tuple(v) for k, v in notes.items()}

"""The framework-neutral graph: named nodes connected by tensor names.

The PyTorch and Keras front ends both lower their models to this IR (the LSTM cell graph and
the CNN flow), and the exporters (xmodel, deploy-check dumps) read it, so it stays small and
generic: nodes in insertion order, tensors looked up by name, and a stable topological order.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .node import Node
from .tensor import Tensor


class GraphError(ValueError):
    """A structural problem: duplicate names, a tensor with two producers, a cycle..."""


class GraphCycleError(GraphError):
    """The graph has a cycle, so it has no topological order."""


class Graph:
    """Nodes keyed by name (insertion order kept) plus tensor metadata keyed by name.

    `inputs` / `outputs` are the source / sink nodes unless set explicitly with
    `set_inputs` / `set_outputs` (e.g. an LSTM cell's outputs are h_next then c_next).
    """

    def __init__(self, name: str, attrs: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"graph name must be a non-empty str, got {name!r}")
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.tensors: dict[str, Tensor] = {}
        self._nodes: dict[str, Node] = {}
        self._producers: dict[str, str] = {}
        self._input_names: list[str] | None = None
        self._output_names: list[str] | None = None

    # --- building -------------------------------------------------------------------------

    def add_node(self, node: Node) -> Node:
        if not isinstance(node, Node):
            raise GraphError(f"add_node expects a Node, got {type(node).__name__}")
        if node.name in self._nodes:
            raise GraphError(f"graph {self.name!r} already has a node named {node.name!r}")
        for tensor in node.outputs:
            if tensor in self._producers:
                raise GraphError(
                    f"tensor {tensor!r} is already produced by node {self._producers[tensor]!r}; "
                    f"node {node.name!r} cannot produce it too"
                )
        self._nodes[node.name] = node
        for tensor in node.outputs:
            self._producers[tensor] = node.name
        return node

    def add(
        self,
        name: str,
        op_type: str,
        inputs: Sequence[str] = (),
        *,
        attrs: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        params: Mapping[str, Tensor] | None = None,
        shape: Sequence[int] | None = None,
        dtype: str = "float32",
    ) -> Node:
        """Create and add a node; with `shape`, also record its (single) output tensor."""
        node = self.add_node(Node(name, op_type, dict(attrs or {}), list(inputs),
                                  None if outputs is None else list(outputs), dict(params or {})))
        if shape is not None:
            if len(node.outputs) != 1:
                raise GraphError(f"node {name!r}: shape= needs exactly one output tensor")
            self.set_tensor(Tensor(node.outputs[0], tuple(shape), dtype))
        return node

    def set_tensor(self, tensor: Tensor) -> Tensor:
        """Record metadata (shape, dtype) of an activation tensor."""
        self.tensors[tensor.name] = tensor
        return tensor

    def set_inputs(self, node_names: Iterable[str]) -> None:
        self._input_names = self._known(node_names, "inputs")

    def set_outputs(self, node_names: Iterable[str]) -> None:
        self._output_names = self._known(node_names, "outputs")

    def _known(self, names: Iterable[str], what: str) -> list[str]:
        names = list(names)
        missing = [n for n in names if n not in self._nodes]
        if missing:
            raise GraphError(f"graph {self.name!r}: {what} {missing} are not nodes of the graph")
        return names

    # --- lookup ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    @property
    def nodes(self) -> list[Node]:
        """Nodes in insertion order."""
        return list(self._nodes.values())

    def node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError(f"graph {self.name!r} has no node {name!r}") from None

    def get(self, name: str) -> Node | None:
        return self._nodes.get(name)

    def tensor(self, name: str) -> Tensor | None:
        return self.tensors.get(name)

    def producer(self, tensor_name: str) -> Node | None:
        """The node whose outputs include `tensor_name` (None for external tensors)."""
        name = self._producers.get(tensor_name)
        return None if name is None else self._nodes[name]

    def consumers(self, tensor_name: str) -> list[Node]:
        return [n for n in self._nodes.values() if tensor_name in n.inputs]

    def predecessors(self, node_name: str) -> list[Node]:
        """Distinct producers of the node's inputs, in input order."""
        seen: dict[str, Node] = {}
        for tensor in self.node(node_name).inputs:
            producer = self.producer(tensor)
            if producer is not None:
                seen.setdefault(producer.name, producer)
        return list(seen.values())

    def successors(self, node_name: str) -> list[Node]:
        outputs = set(self.node(node_name).outputs)
        return [n for n in self._nodes.values() if outputs.intersection(n.inputs)]

    @property
    def inputs(self) -> list[Node]:
        """Explicit inputs, else the source nodes (nodes that read no tensor)."""
        if self._input_names is not None:
            return [self._nodes[n] for n in self._input_names]
        return [n for n in self._nodes.values() if not n.inputs]

    @property
    def outputs(self) -> list[Node]:
        """Explicit outputs, else nodes whose outputs no node reads (sinks)."""
        if self._output_names is not None:
            return [self._nodes[n] for n in self._output_names]
        read = {t for n in self._nodes.values() for t in n.inputs}
        return [n for n in self._nodes.values() if not read.intersection(n.outputs)]

    # --- order ------------------------------------------------------------------------------

    def topological_order(self) -> list[Node]:
        """Producers before consumers; among ready nodes the earliest inserted first, so an
        insertion order that is already topological is returned unchanged. Raises
        GraphCycleError naming the nodes of one cycle."""
        index = {name: i for i, name in enumerate(self._nodes)}
        names = list(self._nodes)
        pending = {name: len(self.predecessors(name)) for name in names}
        users: dict[str, list[str]] = {name: [] for name in names}
        for name in names:
            for producer in self.predecessors(name):
                users[producer.name].append(name)
        ready = [index[n] for n, count in pending.items() if count == 0]
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            name = names[heapq.heappop(ready)]
            order.append(self._nodes[name])
            for user in users[name]:
                pending[user] -= 1
                if pending[user] == 0:
                    heapq.heappush(ready, index[user])
        if len(order) != len(names):
            cycle = self._find_cycle({n for n, c in pending.items() if c > 0})
            raise GraphCycleError(
                f"graph {self.name!r} has a cycle: {' -> '.join(cycle)}; a node cannot depend "
                "on its own output (break the loop, e.g. feed recurrent state as a graph input)"
            )
        return order

    def _find_cycle(self, stuck: set[str]) -> list[str]:
        """One cycle among `stuck` nodes, as a closed path [a, b, ..., a]."""
        start = min(stuck, key=list(self._nodes).index)
        path, position = [start], {start: 0}
        current = start
        while True:
            nxt = next(p.name for p in self.predecessors(current) if p.name in stuck)
            if nxt in position:
                cycle = path[position[nxt]:] + [nxt]
                return list(reversed(cycle))
            position[nxt] = len(path)
            path.append(nxt)
            current = nxt

    # --- text -----------------------------------------------------------------------------

    def dump_text(self) -> str:
        """One line per node in topological order, with attrs, params and output shapes."""
        lines = [f"Graph {self.name!r}: {len(self)} nodes"]
        if self.attrs:
            lines.append("  attrs: " + ", ".join(f"{k}={_short(v)}" for k, v in self.attrs.items()))
        lines.append("  inputs: " + ", ".join(n.name for n in self.inputs))
        lines.append("  outputs: " + ", ".join(n.name for n in self.outputs))
        for i, node in enumerate(self.topological_order()):
            outs = []
            for out in node.outputs:
                meta = self.tensors.get(out)
                outs.append(meta.describe() if meta is not None else out)
            call = f"{node.op_type}({', '.join(node.inputs)})"
            line = f"  [{i}] {node.name} = {call} -> {', '.join(outs)}"
            if node.params:
                line += "  params{" + ", ".join(
                    f"{role}: {t.describe()}" + (f" {_short(t.attrs)}" if t.attrs else "")
                    for role, t in node.params.items()) + "}"
            if node.attrs:
                line += "  {" + ", ".join(f"{k}={_short(v)}" for k, v in node.attrs.items()) + "}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes)"


def _short(value: Any, limit: int = 8) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {list(value.shape)} {value.dtype}>"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_short(v, limit)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and len(value) > limit:
        return f"[{', '.join(_short(v) for v in value[:limit])}, ... ({len(value)} items)]"
    return repr(value)

"""A recurrent cell as a graph of named nodes, and its evaluation with any tensors quantized.

Why a graph description and not the cell code: the report must run a cell with *some* tensors
quantized (one node only, all but one, a few at 16 bits) and compare it with the float cell fed
the same inputs, step by step. The fixed-point datapath (C++) only runs the whole cell quantized
at one width, which is what the hardware does; this evaluation is the float cell graph in which
each quantized tensor is fake-quantized the way the datapath quantizes it, so with every tensor
quantized it reproduces the datapath's codes exactly (the report checks that on every run, and
the tests check it). A cell type is described once by its node list (`CellGraph`): the LSTM's is
`lstm_graph.LSTM_CELL`, the GRU variants' are in `gru_graph`.

Node ops, each on the values of earlier nodes of the same step (or the previous step's, for
`state`), with what "quantized" means for it (the recurrent datapath's semantics):

- ``input``: the step's input x_t; quantized: floor onto its grid and clamp.
- ``state``: the state `args[0]` (e.g. "h") carried from the previous step (its initial value
  at step 0); quantized: floor and clamp (the datapath re-reads the state at this node's grid).
- ``dense``: ``args[0] @ W.T`` (+ bias): `args[1]` is the weight parameter, `args[2]` the optional
  bias; quantized: the product floored and clamped, the bias added, floored and clamped again.
- ``add``, ``sub``, ``mul``: element-wise on two nodes; quantized: floor and clamp.
- ``sigmoid``, ``tanh``: float: the functions; quantized: the 2048-entry lookup tables of the
  datapath (input step 1/128 resp. 1/256, saturating beyond +-8 / +-4, output on the 2^-15
  grid), then floored onto the node's grid when that is coarser.

Parameters are quantized with the rounding their `TensorQuant.method` names (the flows use
std_round, half away from zero), through the C++ fix kernel the datapath uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from .. import kernels
from .quant import QuantPlan, TensorQuant

__all__ = ["CellGraph", "CellNode", "CellEvaluator", "StepValues"]

OPS = ("input", "state", "dense", "add", "sub", "mul", "sigmoid", "tanh")
TABLE_FIX_POS = 15
_TABLES = {"sigmoid": (128.0, 0), "tanh": (256.0, -32768)}


@dataclass(frozen=True)
class CellNode:
    """One node: `op` (see the module docstring) on `args`; `kind` is its config tensor kind."""

    name: str
    op: str
    args: tuple[str, ...] = ()
    kind: str = "activation"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"node {self.name!r}: unknown op {self.op!r} (one of {OPS})")


@dataclass(frozen=True)
class CellGraph:
    """A cell type: nodes in processing order, parameter names and kinds, the output node, and
    the recurrent states as (state name, node whose value carries it to the next step);
    `variant` tells apart graphs of one kind (the GRU's reset after / before), `note` says what
    a reader of the report should know about the cell (e.g. that it has no cell state)."""

    kind: str
    nodes: tuple[CellNode, ...]
    params: Mapping[str, str]
    output: str
    states: tuple[tuple[str, str], ...]
    variant: str = ""
    note: str = ""
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {n.name: i for i, n in enumerate(self.nodes)})
        known = set(self.params)
        for node in self.nodes:
            refs = node.args[1:] if node.op == "dense" else () if node.op in ("input", "state") else node.args
            for ref in refs:
                if ref not in known:
                    raise ValueError(f"cell {self.kind}: node {node.name!r} reads {ref!r} before it is defined")
            known.add(node.name)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def table_nodes(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes if n.op in _TABLES)

    def tensor_kind(self, name: str) -> str:
        if name in self.params:
            return self.params[name]
        return self.nodes[self.index[name]].kind


@dataclass
class StepValues:
    """Every node's value at one step, for the rows that are active (t < length).

    `pre[name]` is the value before the node's own quantization and `post[name]` after it (the
    same array when the node runs float); both [rows, width]. `rows` are the batch rows."""

    t: int
    rows: np.ndarray
    pre: dict[str, np.ndarray]
    post: dict[str, np.ndarray]


def floor_quantize(v: np.ndarray, q: TensorQuant) -> np.ndarray:
    """clamp(floor(v * 2^fp)) * 2^-fp: the datapath's activation quantization."""
    fp = int(q.fix_pos)
    codes = np.clip(np.floor(v * 2.0 ** fp), q.qmin, q.qmax)
    return codes * 2.0 ** -fp


def table_lookup(op: str, v: np.ndarray) -> np.ndarray:
    """The datapath's sigmoid / tanh table of a value (on any grid), on the 2^-15 grid."""
    steps_per_unit, low = _TABLES[op]
    table = (kernels.sigmoid_table() if op == "sigmoid" else kernels.tanh_table()).astype(np.float64)
    k = np.floor(v * steps_per_unit)
    out = table[np.clip(k, -1024, 1023).astype(np.int64) + 1024]
    out = np.where(k >= 1024, 32767.0, np.where(k < -1024, float(low), out))
    return out * 2.0 ** -TABLE_FIX_POS


def quantize_param(value: np.ndarray, q: TensorQuant) -> np.ndarray:
    """A parameter fake-quantized by the fix kernel with its own rounding method."""
    return kernels.fix_neuron(np.ascontiguousarray(value, dtype=np.float64), q.bit_width, int(q.fix_pos),
                              q.method or "std_round")


class CellEvaluator:
    """Runs one cell graph over sequences with the tensors of `plan` quantized (others float).

    `params`: the float parameters by name. `plan` keys are the cell's node and parameter names.
    Arrays: x [batch, steps, input], lengths [batch] or None, initial states by state name
    [batch, width] or None (zeros). `reverse` processes each sequence from its last valid
    position, as a backward cell; outputs are aligned with the input positions.
    """

    def __init__(self, graph: CellGraph, params: Mapping[str, np.ndarray], plan: QuantPlan) -> None:
        self.graph = graph
        self.plan = dict(plan)
        self.params = {n: (quantize_param(v, self.plan[n]) if n in self.plan else np.asarray(v, dtype=np.float64))
                       for n, v in params.items()}
        self.hidden = next(p.shape[0] for n, p in self.params.items() if graph.params[n] == "weights")

    def steps(self, x: np.ndarray, lengths: np.ndarray | None = None,
              init: Mapping[str, np.ndarray | None] | None = None, reverse: bool = False) -> Iterator[StepValues]:
        """Yields every step's node values in processing order (the running states are kept
        between yields; consume the iterator to the end or drop it)."""
        x = np.asarray(x, dtype=np.float64)
        batch, steps = x.shape[0], x.shape[1]
        lens = np.full(batch, steps, np.int64) if lengths is None else np.clip(np.asarray(lengths, np.int64), 0, steps)
        init = init or {}
        state = {}
        for name, _ in self.graph.states:
            value = init.get(name)
            state[name] = np.zeros((batch, self.hidden)) if value is None else np.array(value, dtype=np.float64)
        for t in range(steps):
            rows = np.flatnonzero(t < lens)
            if rows.size == 0:
                break
            pos = lens[rows] - 1 - t if reverse else np.full(rows.size, t)
            values = self._step(x[rows, pos], {k: v[rows] for k, v in state.items()}, t, rows)
            for name, node in self.graph.states:
                state[name][rows] = values.post[node]
            yield values
        self.final_states = state

    def run(self, x: np.ndarray, lengths: np.ndarray | None = None,
            init: Mapping[str, np.ndarray | None] | None = None,
            reverse: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(out [batch, steps, width] with zeros past each length, final states by name)."""
        x = np.asarray(x, dtype=np.float64)
        batch, steps = x.shape[0], x.shape[1]
        lens = np.full(batch, steps, np.int64) if lengths is None else np.clip(np.asarray(lengths, np.int64), 0, steps)
        out = np.zeros((batch, steps, self.hidden))
        for values in self.steps(x, lengths, init, reverse):
            pos = lens[values.rows] - 1 - values.t if reverse else np.full(values.rows.size, values.t)
            out[values.rows, pos] = values.post[self.graph.output]
        return out, self.final_states  # set when the step iterator ends

    def _step(self, xt: np.ndarray, state: dict[str, np.ndarray], t: int, rows: np.ndarray) -> StepValues:
        pre: dict[str, np.ndarray] = {}
        post: dict[str, np.ndarray] = {}
        for node in self.graph.nodes:
            q = self.plan.get(node.name)
            op, args = node.op, node.args
            if op == "input":
                value = xt
            elif op == "state":
                value = state[args[0]]
            elif op == "dense":
                value = post[args[0]] @ self.params[args[1]].T
                if q is not None:
                    value = floor_quantize(value, q)
                if len(args) > 2:
                    value = value + self.params[args[2]]
            elif op == "add":
                value = post[args[0]] + post[args[1]]
            elif op == "sub":
                value = post[args[0]] - post[args[1]]
            elif op == "mul":
                value = post[args[0]] * post[args[1]]
            else:  # sigmoid / tanh
                arg = post[args[0]]
                if q is not None:
                    pre[node.name] = 1.0 / (1.0 + np.exp(-arg)) if op == "sigmoid" else np.tanh(arg)
                    table = table_lookup(op, arg)
                    post[node.name] = table if int(q.fix_pos) >= TABLE_FIX_POS else floor_quantize(table, q)
                    continue
                value = 1.0 / (1.0 + np.exp(-arg)) if op == "sigmoid" else np.tanh(arg)
            pre[node.name] = value
            post[node.name] = value if q is None else floor_quantize(value, q)
        return StepValues(t, rows, pre, post)

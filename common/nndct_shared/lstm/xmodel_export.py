"""The XIR graph of one quantized StandardLstmCell (`<graph>_int.xmodel`).

72 ops: 3 data, 12 const (quantized weights as float32), 8 matmul, 5 add, 3 mul, 3 sigmoid,
2 tanh, and a fix op after each of them, with the reference's names, attributes and op order (the
order the reference's XIR writer produces, so that our files list like the golden ones).
`CellGraphBuilder` is the part every cell kind shares (the GRU's graphs use it too).
"""
from __future__ import annotations

from ..xmodel import XGraph
from .cell import QuantizedLstmCell
from .cell_base import QuantizedCell
from .naming import op_name, scoped

_ACTIVATION = {"i": ("it", "sigmoid"), "f": ("ft", "sigmoid"), "g": ("cct", "tanh"), "o": ("ot", "sigmoid")}
_GATE_EMIT_ORDER = ("o", "g", "f", "i")


class CellGraphBuilder:
    """Builds the xmodel graph of a cell that has fix positions (test mode), op by op: every op
    is named after its node (`<graph>::<local>` with non-alphanumerics as `_`) and followed by a
    `fix` op at its fix position; consumers read the fix ops."""

    def __init__(self, cell: QuantizedCell) -> None:
        self.cell = cell
        self.fix = cell._require_fix()
        self.params = cell.quantized_params()
        self.index = cell.definition.node_index
        self.graph = XGraph(cell.graph_name)

    def name(self, local: str) -> str:
        return op_name(scoped(self.cell.graph_name, local))

    def fixed(self, local: str) -> str:
        return self.name(local) + "_fix"

    def data(self, local: str, size: int) -> None:
        self.graph.add_data(self.name(local), [1, size])
        self.graph.add_fix(self.name(local), self.fix.node_width(self.index[local]), self.fix.node[self.index[local]])

    def const(self, local: str) -> None:
        self.graph.add_const(self.name(local), self.params[local])
        self.graph.add_fix(self.name(local), self.fix.param_width(local), self.fix.param[local])

    def node(self, local: str, op_type: str, inputs: list[str], bias: str | None = None) -> None:
        """A [1, hidden] op; a matmul gets transpose_b and its bias argument (empty without)."""
        args = {"input": [self.fixed(i) for i in inputs]}
        attrs = {}
        if op_type == "matmul":
            args["bias"] = [self.fixed(bias)] if bias else []
            attrs = {"transpose_a": False, "transpose_b": True}
        self.graph.add_op(self.name(local), op_type, inputs=args, attrs=attrs, shape=[1, self.cell.hidden_size])
        self.graph.add_fix(self.name(local), self.fix.node_width(self.index[local]), self.fix.node[self.index[local]])

    def finish(self, returns: list[str]) -> XGraph:
        """The graph with its `direction` and `return_ops` (the fix ops of `returns`)."""
        self.graph.attrs["direction"] = "backward" if self.cell.reverse else "forward"
        self.graph.set_return_ops([self.fixed(r) for r in returns])
        return self.graph


def cell_xgraph(cell: QuantizedLstmCell) -> XGraph:
    """Builds the xmodel graph of a cell that has fix positions (test mode)."""
    b = CellGraphBuilder(cell)
    for local, size in (("input_2", cell.hidden_size), ("input_1", cell.hidden_size), ("input_0", cell.input_size)):
        b.data(local, size)
    for g in _GATE_EMIT_ORDER:
        b.const(f"weight_h{g}")
        b.node(f"w_h{g} * input_1", "matmul", ["input_1", f"weight_h{g}"])
        b.const(f"bias_{g}")
        b.const(f"weight_i{g}")
        b.node(f"w_i{g} * input_0 + bias_{g}", "matmul", ["input_0", f"weight_i{g}"], bias=f"bias_{g}")
        b.node(f"y_{g}", "add", [f"w_i{g} * input_0 + bias_{g}", f"w_h{g} * input_1"])
        act, op_type = _ACTIVATION[g]
        b.node(act, op_type, [f"y_{g}"])
        if g == "f":
            b.node("ft*input_2", "mul", ["ft", "input_2"])
        if g == "i":
            b.node("it*cct", "mul", ["it", "cct"])
    b.node("c_next", "add", ["it*cct", "ft*input_2"])
    b.node("c_temp", "tanh", ["c_next"])
    b.node("h_next", "mul", ["ot", "c_temp"])
    return b.finish(["h_next", "c_next"])

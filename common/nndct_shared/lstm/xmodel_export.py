"""The XIR graph of one quantized StandardLstmCell (`<graph>_int.xmodel`).

72 ops: 3 data, 12 const (quantized weights as float32), 8 matmul, 5 add, 3 mul, 3 sigmoid,
2 tanh, and a fix op after each of them, with the reference's names, attributes and op order (the
order the reference's XIR writer produces, so that our files list like the golden ones).
"""
from __future__ import annotations

from ..xmodel import XGraph
from .cell import QuantizedLstmCell
from .naming import NODE_INDEX, op_name, scoped

_ACTIVATION = {"i": ("it", "sigmoid"), "f": ("ft", "sigmoid"), "g": ("cct", "tanh"), "o": ("ot", "sigmoid")}
_GATE_EMIT_ORDER = ("o", "g", "f", "i")


def cell_xgraph(cell: QuantizedLstmCell) -> XGraph:
    """Builds the xmodel graph of a cell that has fix positions (test mode)."""
    fix = cell._require_fix()
    params = cell.quantized_params()
    bw = fix.bit_width
    graph = XGraph(cell.graph_name)

    def name(local: str) -> str:
        return op_name(scoped(cell.graph_name, local))

    def fixed(local: str) -> str:
        return name(local) + "_fix"

    def node(local: str, op_type: str, inputs: list[str], bias: str | None = None) -> None:
        args = {"input": [fixed(i) for i in inputs]}
        if op_type == "matmul":
            args["bias"] = [fixed(bias)] if bias else []
        attrs = {"transpose_a": False, "transpose_b": True} if op_type == "matmul" else {}
        graph.add_op(name(local), op_type, inputs=args, attrs=attrs, shape=[1, cell.hidden_size])
        graph.add_fix(name(local), bw, fix.node[NODE_INDEX[local]])

    def const(local: str) -> None:
        graph.add_const(name(local), params[local])
        graph.add_fix(name(local), bw, fix.param[local])

    for local, size in (("input_2", cell.hidden_size), ("input_1", cell.hidden_size), ("input_0", cell.input_size)):
        graph.add_data(name(local), [1, size])
        graph.add_fix(name(local), bw, fix.node[NODE_INDEX[local]])
    for g in _GATE_EMIT_ORDER:
        const(f"weight_h{g}")
        node(f"w_h{g} * input_1", "matmul", ["input_1", f"weight_h{g}"])
        const(f"bias_{g}")
        const(f"weight_i{g}")
        node(f"w_i{g} * input_0 + bias_{g}", "matmul", ["input_0", f"weight_i{g}"], bias=f"bias_{g}")
        node(f"y_{g}", "add", [f"w_i{g} * input_0 + bias_{g}", f"w_h{g} * input_1"])
        act, op_type = _ACTIVATION[g]
        node(act, op_type, [f"y_{g}"])
        if g == "f":
            node("ft*input_2", "mul", ["ft", "input_2"])
        if g == "i":
            node("it*cct", "mul", ["it", "cct"])
    node("c_next", "add", ["it*cct", "ft*input_2"])
    node("c_temp", "tanh", ["c_next"])
    node("h_next", "mul", ["ot", "c_temp"])
    graph.attrs["direction"] = "backward" if cell.reverse else "forward"
    graph.set_return_ops([fixed("h_next"), fixed("c_next")])
    return graph

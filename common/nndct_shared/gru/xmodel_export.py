"""The XIR graph of one quantized StandardGruCell (`<graph>_int.xmodel`).

XIR ops only, as for the LSTM: data (x, h), const (the quantized weights and biases as float32),
matmul (transpose_b, with its bias), add, sub, mul, sigmoid and tanh, each followed by a `fix`
op carrying its fix position. Reset after: 2 data, 12 const, 6 matmul, 4 add, 1 sub, 3 mul,
2 sigmoid, 1 tanh (31 ops, 62 with the fix ops); reset before: 9 const (28 ops, 56). The DPU's
RNN compiler accepts only StandardLstmCell graphs; these files are for simulators and custom
hardware that read XIR.
"""
from __future__ import annotations

from ..lstm.naming import op_name, scoped
from ..xmodel import XGraph
from .cell import QuantizedGruCell

_GATE_NODES = {"i": ("y_i", "it", "sigmoid"), "f": ("y_f", "ft", "sigmoid")}


def gru_cell_xgraph(cell: QuantizedGruCell) -> XGraph:
    """Builds the xmodel graph of a cell that has fix positions (test mode)."""
    fix = cell._require_fix()
    params = cell.quantized_params()
    index = cell.definition.node_index
    bw = fix.bit_width
    graph = XGraph(cell.graph_name)

    def name(local: str) -> str:
        return op_name(scoped(cell.graph_name, local))

    def fixed(local: str) -> str:
        return name(local) + "_fix"

    def node(local: str, op_type: str, inputs: list[str], bias: str | None = None) -> None:
        args = {"input": [fixed(i) for i in inputs]}
        attrs = {}
        if op_type == "matmul":
            args["bias"] = [fixed(bias)] if bias else []
            attrs = {"transpose_a": False, "transpose_b": True}
        graph.add_op(name(local), op_type, inputs=args, attrs=attrs, shape=[1, cell.hidden_size])
        graph.add_fix(name(local), bw, fix.node[index[local]])

    def const(local: str) -> None:
        graph.add_const(name(local), params[local])
        graph.add_fix(name(local), bw, fix.param[local])

    def dense(local: str, data: str, weight: str, bias: str | None) -> None:
        const(weight)
        if bias:
            const(bias)
        node(local, "matmul", [data, weight], bias=bias)

    for local, size in (("input_1", cell.hidden_size), ("input_0", cell.input_size)):
        graph.add_data(name(local), [1, size])
        graph.add_fix(name(local), bw, fix.node[index[local]])
    nodes = cell.definition.node_names
    after = cell.reset_after
    for g, (sum_name, act, op_type) in _GATE_NODES.items():
        dense_x, dense_h = nodes[index[sum_name] - 2], nodes[index[sum_name] - 1]
        dense(dense_x, "input_0", f"weight_i{g}", f"bias_i{g}" if after else f"bias_{g}")
        dense(dense_h, "input_1", f"weight_h{g}", f"bias_h{g}" if after else None)
        node(sum_name, "add", [dense_x, dense_h])
        node(act, op_type, [sum_name])
    dense_xg, branch_a, branch_b = nodes[10], nodes[11], nodes[12]
    dense(dense_xg, "input_0", "weight_ig", "bias_ig" if after else "bias_g")
    if after:  # it * (W_hg h + b_hg)
        dense(branch_a, "input_1", "weight_hg", "bias_hg")
        node(branch_b, "mul", ["it", branch_a])
    else:      # W_hg (it * h)
        node(branch_a, "mul", ["it", "input_1"])
        dense(branch_b, branch_a, "weight_hg", None)
    node("y_g", "add", [dense_xg, branch_b])
    node("cct", "tanh", ["y_g"])
    node("ft*cct", "mul", ["ft", "cct"])
    node("cct-ft*cct", "sub", ["cct", "ft*cct"])
    node("ft*input_1", "mul", ["ft", "input_1"])
    node("h_next", "add", ["cct-ft*cct", "ft*input_1"])
    graph.attrs["direction"] = "backward" if cell.reverse else "forward"
    graph.set_return_ops([fixed("h_next")])
    return graph

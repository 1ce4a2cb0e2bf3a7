"""The XIR graph of one quantized StandardGruCell (`<graph>_int.xmodel`).

XIR ops only, as for the LSTM: data (x, h), const (the quantized weights and biases as float32),
matmul (transpose_b, with its bias), add, sub, mul, sigmoid and tanh, each followed by a `fix`
op carrying its fix position. Reset after: 2 data, 12 const, 6 matmul, 4 add, 1 sub, 3 mul,
2 sigmoid, 1 tanh (31 ops, 62 with the fix ops); reset before: 9 const (28 ops, 56). The DPU's
RNN compiler accepts only StandardLstmCell graphs; these files are for simulators and custom
hardware that read XIR.
"""
from __future__ import annotations

from ..lstm.xmodel_export import CellGraphBuilder
from ..xmodel import XGraph
from .cell import QuantizedGruCell

_GATE_NODES = {"i": ("y_i", "it", "sigmoid"), "f": ("y_f", "ft", "sigmoid")}


def gru_cell_xgraph(cell: QuantizedGruCell) -> XGraph:
    """Builds the xmodel graph of a cell that has fix positions (test mode), in node order with
    each parameter just before its matmul."""
    b = CellGraphBuilder(cell)
    after = cell.reset_after

    def dense(local: str, data: str, weight: str, bias: str | None) -> None:
        b.const(weight)
        if bias:
            b.const(bias)
        b.node(local, "matmul", [data, weight], bias=bias)

    b.data("input_1", cell.hidden_size)
    b.data("input_0", cell.input_size)
    nodes = cell.definition.node_names
    for g, (sum_name, act, op_type) in _GATE_NODES.items():
        dense_x, dense_h = nodes[b.index[sum_name] - 2], nodes[b.index[sum_name] - 1]
        dense(dense_x, "input_0", f"weight_i{g}", f"bias_i{g}" if after else f"bias_{g}")
        dense(dense_h, "input_1", f"weight_h{g}", f"bias_h{g}" if after else None)
        b.node(sum_name, "add", [dense_x, dense_h])
        b.node(act, op_type, [sum_name])
    dense_xg, branch_a, branch_b = nodes[10], nodes[11], nodes[12]
    dense(dense_xg, "input_0", "weight_ig", "bias_ig" if after else "bias_g")
    if after:  # it * (W_hg h + b_hg)
        dense(branch_a, "input_1", "weight_hg", "bias_hg")
        b.node(branch_b, "mul", ["it", branch_a])
    else:      # W_hg (it * h)
        b.node(branch_a, "mul", ["it", "input_1"])
        dense(branch_b, branch_a, "weight_hg", None)
    b.node("y_g", "add", [dense_xg, branch_b])
    b.node("cct", "tanh", ["y_g"])
    b.node("ft*cct", "mul", ["ft", "cct"])
    b.node("cct-ft*cct", "sub", ["cct", "ft*cct"])
    b.node("ft*input_1", "mul", ["ft", "input_1"])
    b.node("h_next", "add", ["cct-ft*cct", "ft*input_1"])
    return b.finish(["h_next"])

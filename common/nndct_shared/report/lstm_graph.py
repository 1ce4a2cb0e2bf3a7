"""The reference's StandardLstmCell as a `CellGraph`: the 24 nodes of `lstm.naming` in their
processing order, each with the op the fixed-point datapath computes there."""
from __future__ import annotations

from ..lstm.naming import GATES, NODE_NAMES, PARAM_NAMES
from .cell_graph import CellGraph, CellNode

__all__ = ["LSTM_CELL"]


def _nodes() -> tuple[CellNode, ...]:
    nodes = [CellNode("input_0", "input", kind="input"), CellNode("input_1", "state", ("h",)),
             CellNode("input_2", "state", ("c",))]
    for g in GATES:
        dx, dh = f"w_i{g} * input_0 + bias_{g}", f"w_h{g} * input_1"
        nodes += [CellNode(dx, "dense", ("input_0", f"weight_i{g}", f"bias_{g}")),
                  CellNode(dh, "dense", ("input_1", f"weight_h{g}")),
                  CellNode(f"y_{g}", "add", (dx, dh))]
    nodes += [CellNode("it", "sigmoid", ("y_i",)), CellNode("ft", "sigmoid", ("y_f",)),
              CellNode("cct", "tanh", ("y_g",)), CellNode("ot", "sigmoid", ("y_o",)),
              CellNode("it*cct", "mul", ("it", "cct")), CellNode("ft*input_2", "mul", ("ft", "input_2")),
              CellNode("c_next", "add", ("it*cct", "ft*input_2")), CellNode("c_temp", "tanh", ("c_next",)),
              CellNode("h_next", "mul", ("ot", "c_temp"))]
    assert tuple(n.name for n in nodes) == NODE_NAMES
    return tuple(nodes)


LSTM_CELL = CellGraph(
    kind="StandardLstmCell",
    nodes=_nodes(),
    params={name: ("bias" if name.startswith("bias") else "weights") for name in PARAM_NAMES},
    output="h_next",
    states=(("h", "h_next"), ("c", "c_next")),
)

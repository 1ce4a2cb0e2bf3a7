"""The StandardGruCell variants as `CellGraph`s: the 19 nodes of `gru.naming` in their processing
order, each with the op the fixed-point datapath computes there.

Reset after (PyTorch nn.GRU, Keras reset_after=True): the candidate's recurrent branch is the
dense node `w_hg * input_1 + bias_hg` times the reset gate; reset before (Keras
reset_after=False): the reset gate times h, then the dense node. h_next = (n - z*n) + z*h as the
datapath computes it (`1 - z` is never formed). The only recurrent state is h: a GRU has no
cell state c, so the report's drift of a GRU cell has one curve.
"""
from __future__ import annotations

from ..gru.naming import GATES, GRU_CELL, GRU_CELL_RESET_BEFORE
from .cell_graph import CellGraph, CellNode

__all__ = ["GRU_GRAPH_RESET_AFTER", "GRU_GRAPH_RESET_BEFORE", "gru_cell_graph"]


def _nodes(reset_after: bool) -> tuple[CellNode, ...]:
    names = (GRU_CELL if reset_after else GRU_CELL_RESET_BEFORE).node_names
    nodes = [CellNode("input_0", "input", kind="input"), CellNode("input_1", "state", ("h",))]
    for g, y in (("i", "y_i"), ("f", "y_f")):
        dx, dh = names[names.index(y) - 2], names[names.index(y) - 1]
        x_bias = f"bias_i{g}" if reset_after else f"bias_{g}"
        h_args = ("input_1", f"weight_h{g}", f"bias_h{g}") if reset_after else ("input_1", f"weight_h{g}")
        nodes += [CellNode(dx, "dense", ("input_0", f"weight_i{g}", x_bias)), CellNode(dh, "dense", h_args),
                  CellNode(y, "add", (dx, dh))]
    nodes += [CellNode("it", "sigmoid", ("y_i",)), CellNode("ft", "sigmoid", ("y_f",))]
    dx, first, second = names[10], names[11], names[12]
    nodes.append(CellNode(dx, "dense", ("input_0", "weight_ig", "bias_ig" if reset_after else "bias_g")))
    if reset_after:
        nodes += [CellNode(first, "dense", ("input_1", "weight_hg", "bias_hg")),
                  CellNode(second, "mul", ("it", first))]
    else:
        nodes += [CellNode(first, "mul", ("it", "input_1")), CellNode(second, "dense", (first, "weight_hg"))]
    nodes += [CellNode("y_g", "add", (dx, second)), CellNode("cct", "tanh", ("y_g",)),
              CellNode("ft*cct", "mul", ("ft", "cct")), CellNode("cct-ft*cct", "sub", ("cct", "ft*cct")),
              CellNode("ft*input_1", "mul", ("ft", "input_1")),
              CellNode("h_next", "add", ("cct-ft*cct", "ft*input_1"))]
    assert tuple(n.name for n in nodes) == names and len(GATES) == 3
    return tuple(nodes)


def _graph(reset_after: bool) -> CellGraph:
    definition = GRU_CELL if reset_after else GRU_CELL_RESET_BEFORE
    return CellGraph(
        kind=definition.kind,
        nodes=_nodes(reset_after),
        params={name: ("bias" if name.startswith("bias") else "weights") for name in definition.param_names},
        output="h_next",
        states=(("h", "h_next"),),
        variant="reset_after" if reset_after else "reset_before",
        note="a GRU carries one recurrent state, h; it has no cell state c",
    )


GRU_GRAPH_RESET_AFTER = _graph(True)
GRU_GRAPH_RESET_BEFORE = _graph(False)


def gru_cell_graph(reset_after: bool) -> CellGraph:
    """The cell graph of the variant."""
    return GRU_GRAPH_RESET_AFTER if reset_after else GRU_GRAPH_RESET_BEFORE

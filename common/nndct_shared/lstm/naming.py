"""Names of the StandardLstmCell graphs, nodes and parameters, exactly as the reference writes them.

The names are part of the contract with the hardware flow: quant_info.json keys, xmodel op names
and deploy-check file names are all derived from them, and a quant_info.json written by the
reference tool for the same model must load unchanged.
"""
from __future__ import annotations

from ..graph.naming import scoped_name as scoped
from ..graph.naming import to_op_name as op_name
from .cell_definition import CellDefinition

GATES = ("i", "f", "g", "o")
"""PyTorch gate order (Keras' i, f, c, o is the same order)."""

CELL_KIND = "StandardLstmCell"


def _dense_x(gate: str) -> str:
    return f"w_i{gate} * input_0 + bias_{gate}"


def _dense_h(gate: str) -> str:
    return f"w_h{gate} * input_1"


NODE_NAMES: tuple[str, ...] = (
    "input_0",
    "input_1",
    "input_2",
    *(name for g in GATES for name in (_dense_x(g), _dense_h(g), f"y_{g}")),
    "it",
    "ft",
    "cct",
    "ot",
    "it*cct",
    "ft*input_2",
    "c_next",
    "c_temp",
    "h_next",
)
"""The 24 node names in processing order; the position is the node index used everywhere."""

NODE_INDEX = {name: i for i, name in enumerate(NODE_NAMES)}
DENSE_X_NODES = tuple(NODE_INDEX[_dense_x(g)] for g in GATES)
DENSE_H_NODES = tuple(NODE_INDEX[_dense_h(g)] for g in GATES)
SUM_NODES = tuple(NODE_INDEX[f"y_{g}"] for g in GATES)
TABLE_NODES = tuple(NODE_INDEX[n] for n in ("it", "ft", "cct", "ot", "c_temp"))
"""Sigmoid and tanh nodes: their outputs live on the 2^-15 grid of the lookup tables."""
INPUT_NODES = (0, 1, 2)
H_NEXT = NODE_INDEX["h_next"]
C_NEXT = NODE_INDEX["c_next"]

PARAM_NAMES: tuple[str, ...] = tuple(
    name for g in GATES for name in (f"weight_i{g}", f"bias_{g}", f"weight_h{g}")
)
"""The 12 parameter names in the order the reference lists them in quant_info.json."""

LSTM_CELL = CellDefinition(
    kind=CELL_KIND,
    node_names=NODE_NAMES,
    param_names=PARAM_NAMES,
    table_nodes=TABLE_NODES,
    bias_nodes=tuple((f"bias_{g}", dense) for g, dense in zip(GATES, DENSE_X_NODES)),
    output_node=H_NEXT,
)


def prefix_from_module_path(path: str, class_name: str = "LSTM") -> str:
    """The reference's graph-name prefix of the module at attribute path `path`.

    '.' becomes '_', the path is split on '_', each piece is `str.capitalize()`d and the pieces are
    joined: `decoder.rnn1` -> `DecoderRnn1`, `lstm` -> `Lstm`. The reference never names a top
    module that is itself the LSTM (its path is empty); we use the class name the same way
    (`LSTM` -> `Lstm`).
    """
    source = path if path else class_name
    return "".join(piece.capitalize() for piece in source.replace(".", "_").split("_"))


def cell_graph_name(prefix: str, layer: int, reverse: bool, kind: str = CELL_KIND) -> str:
    """`<Prefix>_StandardLstmCell_layer_<i>_<forward|backward>` (`kind` names other cells the
    same way: `<Prefix>_StandardGruCell_layer_<i>_<forward|backward>`)."""
    direction = "backward" if reverse else "forward"
    return f"{prefix}_{kind}_layer_{layer}_{direction}"


__all__ = ["GATES", "LSTM_CELL", "NODE_NAMES", "PARAM_NAMES", "cell_graph_name", "op_name", "prefix_from_module_path", "scoped"]

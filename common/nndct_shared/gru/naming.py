"""Names of the StandardGruCell graphs, nodes and parameters.

The reference RNN quantizer carries an unsupported `basic_gru` graph (PyTorch front end) whose
node and parameter names these follow: gate letters i, f, g for the reset gate r, the update gate
z and the candidate n (the rows of PyTorch's W_ih / W_hh in order), one dense node per matmul
with its bias, and h_next = n - z*n + z*h (the reference's `cct-ft*cct` + `ft*input_1`), which
needs no constant 1 (1 - z at the table's fix position 15 would need the code 2^15, one past the
16-bit range). Graphs are named like the LSTM's, `<Prefix>_StandardGruCell_layer_<i>_<dir>`
(the reference's basic_gru had no prefix, so two GRUs of one model would have clashed).

Two variants, each with its own graph:
* reset after (PyTorch nn.GRU, Keras GRU(reset_after=True)): n = tanh(W_in x + b_in +
  r * (W_hn h + b_hn)); a bias on both sides of every gate (12 parameters);
* reset before (Keras GRU(reset_after=False)): n = tanh(W_in x + b_in + W_hn (r * h)); one bias
  per gate, on the input side (9 parameters).
Both have 19 nodes with the same indices except 11 and 12 (the candidate's recurrent branch).
"""
from __future__ import annotations

from ..lstm.cell_definition import CellDefinition
from ..lstm.naming import cell_graph_name

CELL_KIND = "StandardGruCell"
GATES = ("i", "f", "g")
"""The reference's gate letters for r (reset), z (update), n (candidate), in PyTorch row order."""

TABLE_NODES = (8, 9, 14)
"""it (sigmoid, r), ft (sigmoid, z), cct (tanh, n)."""
H_NEXT = 18


def _nodes(dense_h: tuple[str, str], candidate_branch: tuple[str, str], bias: str) -> tuple[str, ...]:
    dense_x = [f"w_i{g} * input_0 + bias_{bias.format(g=g)}" for g in GATES]
    return (
        "input_0",
        "input_1",
        dense_x[0], dense_h[0], "y_i",
        dense_x[1], dense_h[1], "y_f",
        "it",
        "ft",
        dense_x[2], *candidate_branch, "y_g",
        "cct",
        "ft*cct",
        "cct-ft*cct",
        "ft*input_1",
        "h_next",
    )


RESET_AFTER_NODE_NAMES = _nodes(
    ("w_hi * input_1 + bias_hi", "w_hf * input_1 + bias_hf"),
    ("w_hg * input_1 + bias_hg", "it*(w_hg * input_1 + bias_hg)"),
    bias="i{g}",
)
RESET_BEFORE_NODE_NAMES = _nodes(
    ("w_hi * input_1", "w_hf * input_1"),
    ("it*input_1", "w_hg * (it*input_1)"),
    bias="{g}",
)

RESET_AFTER_PARAM_NAMES: tuple[str, ...] = tuple(
    name for g in GATES for name in (f"weight_i{g}", f"bias_i{g}", f"weight_h{g}", f"bias_h{g}"))
"""In node order, as the reference lists a graph's parameters in quant_info.json."""
RESET_BEFORE_PARAM_NAMES: tuple[str, ...] = tuple(
    name for g in GATES for name in (f"weight_i{g}", f"bias_{g}", f"weight_h{g}"))

GRU_CELL = CellDefinition(
    kind=CELL_KIND,
    node_names=RESET_AFTER_NODE_NAMES,
    param_names=RESET_AFTER_PARAM_NAMES,
    table_nodes=TABLE_NODES,
    bias_nodes=(("bias_ii", 2), ("bias_hi", 3), ("bias_if", 5), ("bias_hf", 6), ("bias_ig", 10), ("bias_hg", 11)),
    output_node=H_NEXT,
)
"""The reset-after StandardGruCell (PyTorch nn.GRU, Keras GRU(reset_after=True))."""

GRU_CELL_RESET_BEFORE = CellDefinition(
    kind=CELL_KIND,
    node_names=RESET_BEFORE_NODE_NAMES,
    param_names=RESET_BEFORE_PARAM_NAMES,
    table_nodes=TABLE_NODES,
    bias_nodes=(("bias_i", 2), ("bias_f", 5), ("bias_g", 10)),
    output_node=H_NEXT,
)
"""The reset-before StandardGruCell (Keras GRU(reset_after=False))."""


def gru_definition(reset_after: bool) -> CellDefinition:
    return GRU_CELL if reset_after else GRU_CELL_RESET_BEFORE


def gru_graph_name(prefix: str, layer: int, reverse: bool) -> str:
    """`<Prefix>_StandardGruCell_layer_<i>_<forward|backward>`."""
    return cell_graph_name(prefix, layer, reverse, CELL_KIND)


__all__ = ["CELL_KIND", "GATES", "GRU_CELL", "GRU_CELL_RESET_BEFORE", "gru_definition", "gru_graph_name"]

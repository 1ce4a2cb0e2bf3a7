"""What the flow needs to know about a kind of RNN cell graph, independent of how it computes.

The session, the calibration statistics, the export-time alignment, quant_info.json and the
deploy-check dumps only see node and parameter names and a few roles (which nodes are table
activations, which dense node each bias belongs to, which node is h_next). Describing a cell kind
by this data lets the StandardLstmCell and the StandardGruCell variants share all of that code.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellDefinition:
    """The graph of one cell kind. Node positions are node indices everywhere (C++ loops,
    histograms, dumps); `node_names[0]` is `input_0`, the cell's x input."""

    kind: str
    node_names: tuple[str, ...]
    param_names: tuple[str, ...]
    table_nodes: tuple[int, ...]
    """Sigmoid and tanh nodes: their outputs live on the 2^-15 grid of the lookup tables."""
    bias_nodes: tuple[tuple[str, int], ...]
    """(bias parameter, index of the dense node it is added in): a bias takes that node's fix
    position at the export-time alignment."""
    output_node: int
    """h_next: the node every other recurrent-datapath node is aligned to."""

    def __post_init__(self) -> None:
        if self.node_names[:1] != ("input_0",):
            raise ValueError("a cell graph starts with its input node 'input_0'")
        names = set(self.param_names)
        if any(b not in names for b, _ in self.bias_nodes):
            raise ValueError("every bias must be one of the cell's parameters")

    @property
    def node_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.node_names)}

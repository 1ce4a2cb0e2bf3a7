"""Bit widths of the tensors of one recurrent cell (mixed widths), and the node classes a
configuration selects them by.

The reference quantizes every node and parameter of a cell at one `bitwidth`; `CellWidths`
holds one width per node and per parameter, with `CellWidths.uniform` the reference's case. The
classes are derived from the cell graph's names, so they cover the StandardLstmCell and the
StandardGruCell variants alike:

- ``input``: ``input_0`` (the cell's x); ``weights`` / ``bias``: the parameters;
- ``hidden_state``: ``input_1`` and ``h_next``; ``cell_state``: ``input_2`` and ``c_next``;
- ``nonlinearity``: the sigmoid / tanh table outputs (``it``, ``ft``, ``cct``, ``ot``,
  ``c_temp``);
- ``dense``: the matrix products (``w_* * input_*`` nodes); ``sum``: the adds (``y_*`` and the
  GRU's ``cct-ft*cct``); ``product``: the element-wise products (``it*cct``, ``ft*input_2``, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .cell_definition import CellDefinition

MIN_BIT_WIDTH = 2
MAX_BIT_WIDTH = 16

NODE_CLASSES = ("input", "weights", "bias", "hidden_state", "cell_state", "nonlinearity", "dense", "sum", "product")
"""Every class a width configuration may name (see the module docstring)."""

_STATES = {"input_1": "hidden_state", "h_next": "hidden_state", "input_2": "cell_state", "c_next": "cell_state"}


def tensor_class(definition: CellDefinition, name: str) -> str:
    """The class of node or parameter `name` of a cell of kind `definition`."""
    if name in definition.param_names:
        return "bias" if name.startswith("bias") else "weights"
    index = definition.node_index[name]
    if index == 0:
        return "input"
    if name in _STATES:
        return _STATES[name]
    if index in definition.table_nodes:
        return "nonlinearity"
    if name.startswith("w_"):
        return "dense"
    if name.startswith("y_") or "-" in name:
        return "sum"
    return "product"


def tensor_kind(definition: CellDefinition, name: str) -> str:
    """The reference config's quantizable_data_type of a cell tensor: input / weights / bias /
    activation (as the report and quant_info.json key it)."""
    cls = tensor_class(definition, name)
    return cls if cls in ("input", "weights", "bias") else "activation"


@dataclass(frozen=True)
class CellWidths:
    """One bit width per node (in node order) and per parameter of a cell."""

    node: tuple[int, ...]
    param: Mapping[str, int]

    @classmethod
    def uniform(cls, definition: CellDefinition, bit_width: int) -> "CellWidths":
        return cls(tuple([bit_width] * len(definition.node_names)), {n: bit_width for n in definition.param_names})

    @property
    def is_uniform(self) -> bool:
        return len({*self.node, *self.param.values()}) == 1

    @property
    def widest(self) -> int:
        return max(*self.node, *self.param.values())

    def of(self, definition: CellDefinition, name: str) -> int:
        """The width of node or parameter `name`."""
        if name in self.param:
            return self.param[name]
        return self.node[definition.node_index[name]]

    def to_state(self) -> dict:
        return {"node": list(self.node), "param": dict(self.param)}

    @classmethod
    def from_state(cls, state: dict) -> "CellWidths":
        return cls(tuple(int(w) for w in state["node"]), {k: int(v) for k, v in state["param"].items()})


__all__ = ["CellWidths", "MAX_BIT_WIDTH", "MIN_BIT_WIDTH", "NODE_CLASSES", "tensor_class", "tensor_kind"]

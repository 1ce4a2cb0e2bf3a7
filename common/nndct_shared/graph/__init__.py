"""Framework-neutral graph IR shared by the PyTorch and Keras front ends and the exporters.

`Graph` holds `Node`s connected by tensor names; parameters are `Tensor`s with numpy data
attached to their node by role. `naming` forms names the way the reference quantizer does.
"""
from __future__ import annotations

from .graph import Graph, GraphCycleError, GraphError
from .naming import (
    SCOPE_SEPARATOR,
    local_name,
    nndct_node_names,
    rename_nodes,
    scoped_name,
    to_file_name,
    to_op_name,
)
from .node import Node
from .tensor import Tensor

__all__ = [
    "Graph",
    "GraphCycleError",
    "GraphError",
    "Node",
    "SCOPE_SEPARATOR",
    "Tensor",
    "local_name",
    "nndct_node_names",
    "rename_nodes",
    "scoped_name",
    "to_file_name",
    "to_op_name",
]

"""Draw an XGraph with Graphviz (python `graphviz` package + the `dot` program)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..graph.naming import to_op_name
from ..atomic_io import write_bytes_atomic
from .xgraph import XGraph


class GraphvizNotFoundError(RuntimeError):
    """Graphviz (the `dot` program or the python `graphviz` package) is not installed."""


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError:
        raise GraphvizNotFoundError(
            "drawing an xmodel needs the python package 'graphviz': pip install graphviz "
            "(and the Graphviz program 'dot')"
        ) from None
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(
            "the Graphviz program 'dot' is not on PATH; install Graphviz "
            "(apt-get install graphviz, brew install graphviz or conda install graphviz)"
        )
    return graphviz


def to_digraph(xgraph: XGraph) -> Any:
    """A `graphviz.Digraph`: one box per op (name without the `<graph>__` prefix, type,
    shape, fix), edges from producers labelled with the arg name when it is not `input`."""
    graphviz = _graphviz()
    dot = graphviz.Digraph(xgraph.name, graph_attr={"rankdir": "TB", "label": xgraph.name},
                           node_attr={"shape": "box", "fontname": "Helvetica", "fontsize": "10"})
    prefix = to_op_name(xgraph.name) + "__"  # ops are named <graph>__<local>; show <local>
    for i, op in enumerate(xgraph.topological_order()):
        short = op.name[len(prefix):] if op.name.startswith(prefix) else op.name
        short = short or op.name
        label = [short, op.type, str(op.shape)]
        style: dict[str, str] = {}
        if op.fix is not None:
            label.append(f"bw={op.fix[0]} fp={op.fix[1]}")
        if op.type == "fix":
            style = {"style": "rounded,filled", "fillcolor": "#eeeeee"}
        elif op.type in ("data", "const"):
            style = {"style": "filled", "fillcolor": "#dde8f5"}
        dot.node(f"op{i}", "\n".join(label), **style)
    ids = {op.name: f"op{i}" for i, op in enumerate(xgraph.topological_order())}
    for op in xgraph.topological_order():
        for arg, producers in op.inputs.items():
            for producer in producers:
                dot.edge(ids[producer], ids[op.name], label="" if arg == "input" else arg)
    return dot


def render_svg(xgraph: XGraph, path: str | os.PathLike[str]) -> Path:
    """Write the drawing of `xgraph` as SVG to `path` (atomically)."""
    svg = to_digraph(xgraph).pipe(format="svg")
    return write_bytes_atomic(path, svg)

"""`graph_md5`: a stable hash of a neutral graph's structure (quant_info.json's "graph_md5").

Why: vai_q_pytorch 3.x records a hash of the graph it calibrated, so that test mode can tell a
calibration result of another model from one of this model even when every tensor name
matches (names are op types and positions, `<Model>::nndct_conv2d_1`, so two different models
easily share them). Ours covers what makes two graphs compute differently given the same
weights, and nothing that changes from run to run:

- the graph name; per node in topological order: its name, op type, input and output tensor
  names, attrs (sorted by key; see below), param roles with their names and shapes, and the
  shape of each output without its batch dim;
- left out: param values (weights are what calibration adapts: CLE, bias correction, fast
  finetune, a retrained checkpoint of the same architecture), the batch size, and the attrs
  that hold calibration results or weight-derived values (`fix`, `input_fix`, `qparams`,
  ReLU6's CLE `clip`) or the batch (`shape`, a reshape's full target shape: its target without
  the batch is the output shape, which is covered).

The text hashed is one canonical JSON line per node (keys sorted, tuples as lists, numpy
values as Python numbers), so the hash is the same on every platform and Python version.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from .graph import Graph

__all__ = ["UNHASHED_ATTRS", "graph_md5"]

#: Node attrs the hash leaves out (see the module docstring).
UNHASHED_ATTRS = frozenset({"fix", "input_fix", "qparams", "clip", "shape"})


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _node_line(graph: Graph, node: Any) -> str:
    shapes = []
    for name in node.outputs:
        meta = graph.tensor(name)
        shapes.append(None if meta is None or meta.shape is None else list(meta.shape[1:]))
    record = {
        "name": node.name,
        "op": node.op_type,
        "inputs": list(node.inputs),
        "outputs": list(node.outputs),
        "attrs": {k: _canonical(v) for k, v in sorted(node.attrs.items()) if k not in UNHASHED_ATTRS},
        "params": {role: [t.name, None if t.shape is None else list(t.shape)]
                   for role, t in sorted(node.params.items())},
        "shapes": shapes,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True)


def graph_md5(graph: Graph) -> str:
    """The hex md5 of the graph's canonical text (see the module docstring)."""
    lines = [json.dumps(graph.name)] + [_node_line(graph, n) for n in graph.topological_order()]
    return hashlib.md5("\n".join(lines).encode("utf-8")).hexdigest()

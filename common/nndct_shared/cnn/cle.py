"""Cross-layer equalization of the captured graph (config key `include_cle`).

Runs on the neutral graph after capture and BatchNorm folding, before the converted model is
built, so calib and test mode (which capture the same float model) get identical weights and
the float function of the model does not change.

Which pairs qualify (each op's `cle` facet in the op registry, `nndct_shared.graph.ops`): a
weighted node A (conv1d, conv2d, linear) whose output reaches a weighted node B (conv1d, conv2d,
linear) only through ops that commute with a positive per-channel scale, f(x / s) = f(x) / s
for s > 0:

* ReLU and LeakyReLU (positively homogeneous: both are linear on each half-line through 0);
* max pooling (the max of positively scaled values is the scaled max) and average / adaptive
  average pooling (linear, zero padding included);
* no op at all (A feeds B directly).

ReLU6 does NOT qualify (min(x/s, 6) != min(x, 6)/s: the clip level is not scaled), nor do
sigmoid, tanh, hardswish, softmax, add/concat (other operands are not scaled), flatten/reshape
(the channel axis is mixed with space), conv_transpose2d (its output channels are weight axis 1)
or a standalone BatchNorm (Scale). Every tensor between A and B must have exactly one reader and
must not be a model output, otherwise another reader would see the scaled values. With
`convert_relu6_to_relu` on, ReLU6 is captured as ReLU and so qualifies.

Chains (A -> B -> C) are iterated until the scales converge (DFQ's procedure), since B takes part
in two pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np

from nndct_shared.algorithms import (
    equalization_scales,
    input_channel_ranges,
    output_channel_ranges,
    scale_pair,
)
from nndct_shared.graph import Graph, Node
from nndct_shared.graph.ops import find_op

__all__ = ["ClePair", "equalize_graph", "find_cle_pairs"]


def _cle_role(node: Node) -> str | None:
    """The op's `cle` facet: "weighted" (either side of a pair: weight output channels on axis
    0), "transparent" (allowed between the sides: commutes with a positive per-channel scale)."""
    op = find_op(node.op_type)
    return None if op is None else op.cle


@dataclass(frozen=True)
class ClePair:
    """Node A, node B and the transparent nodes between them."""

    first: str
    second: str
    between: tuple[str, ...]


def _groups(node: Node) -> int:
    return int(node.attrs.get("groups", 1)) if node.op_type != "linear" else 1


def _only_reader(graph: Graph, node: Node, outputs: set[str]) -> Node | None:
    if len(node.outputs) != 1 or node.name in outputs:
        return None
    readers = graph.consumers(node.outputs[0])
    if len(readers) != 1 or readers[0].inputs.count(node.outputs[0]) != 1:
        return None
    return readers[0]


def find_cle_pairs(graph: Graph, eligible: Collection[str] | None = None) -> list[ClePair]:
    """The qualifying (A, B) pairs in topological order of A (see the module docstring).

    `eligible`: if given, both A and B must be in it (the nodes that run quantized: equalizing
    a layer that stays float only perturbs its float arithmetic, for no gain).
    """
    outputs = {n.name for n in graph.outputs}
    pairs: list[ClePair] = []
    for node in graph.topological_order():
        if _cle_role(node) != "weighted" or "weight" not in node.params:
            continue
        if eligible is not None and node.name not in eligible:
            continue
        between: list[str] = []
        reader = _only_reader(graph, node, outputs)
        while reader is not None and _cle_role(reader) == "transparent":
            between.append(reader.name)
            reader = _only_reader(graph, reader, outputs)
        if reader is None or _cle_role(reader) != "weighted" or "weight" not in reader.params:
            continue
        if eligible is not None and reader.name not in eligible:
            continue
        w1, w2 = node.params["weight"].data, reader.params["weight"].data
        if w1 is None or w2 is None or w2.ndim < 2 or w1.shape[0] != w2.shape[1] * _groups(reader):
            continue
        pairs.append(ClePair(node.name, reader.name, tuple(between)))
    return pairs


def _equalize_pair(graph: Graph, pair: ClePair) -> float:
    a, b = graph.node(pair.first), graph.node(pair.second)
    w1 = a.params["weight"].data
    b1 = a.params["bias"].data if "bias" in a.params else None
    w2 = b.params["weight"].data
    groups = _groups(b)
    scales = equalization_scales(output_channel_ranges(w1), input_channel_ranges(w2, groups))
    new_w1, new_b1, new_w2 = scale_pair(w1, b1, w2, groups, scales)
    a.params["weight"].data = new_w1
    if new_b1 is not None:
        a.params["bias"].data = new_b1
    b.params["weight"].data = new_w2
    return float(np.max(np.abs(np.log(scales)))) if scales.size else 0.0


def equalize_graph(graph: Graph, max_iterations: int = 20, tolerance: float = 1e-6,
                   eligible: Collection[str] | None = None) -> list[ClePair]:
    """Equalize every qualifying pair in place (params' numpy data); returns the pairs.

    Stops when no scale moves by more than `tolerance` (in log) or after `max_iterations` sweeps.
    """
    pairs = find_cle_pairs(graph, eligible)
    for _ in range(max_iterations if pairs else 0):
        change = max(_equalize_pair(graph, pair) for pair in pairs)
        if change <= tolerance:
            break
    return pairs


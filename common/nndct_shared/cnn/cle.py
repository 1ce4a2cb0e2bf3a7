"""Cross-layer equalization of the captured graph (config keys `include_cle`, `cle_extensions`).

Runs on the neutral graph after capture and BatchNorm folding, before the converted model is
built, so calib and test mode (which capture the same float model) get identical weights and
the float function of the model does not change.

By default it is the reference's (vai_q_pytorch 3.x, spec reference-cnn-flow-3x.md): the
scale formula of `nndct_shared.algorithms.cle` (bias-aware ranges with the shrink factor, the
`< 0.5` rule), one pass over the pairs, and these pairs, read from each op's CLE role in the op
registry (`OpDef.cle`, `nndct_shared.graph.ops`):

* "weighted": convolutions (conv1d, conv2d incl. depthwise and grouped, conv_transpose2d with
  groups 1) are the two sides of a pair; each conv is the second of one pair and the first of
  the next along a chain;
* "transparent": ReLU, max pooling and average pooling (incl. adaptive average) may sit between
  the two sides (they commute with a positive per-channel scale);
* "clip": ReLU6 may sit between them too; its clip level becomes a per-channel 6 / s (node attr
  `clip`), which keeps the float function exact;
* anything else ends the chain, and so does a tensor between the sides with more than one
  reader or that is a model output (another reader would see the scaled values).

`cle_extensions: true` adds this project's extensions (roles declared with `cle_extension`):
linear layers as sides, LeakyReLU and adaptive max pooling between them, and sweeps repeated
until the scales converge (DFQ's procedure, since a layer in the middle of a chain takes part in
two pairs). The README's CNN section measures what they gain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np

from nndct_shared.algorithms import (
    equalization_scales,
    first_layer_ranges,
    input_channel_ranges,
    output_channel_rows,
    scale_input_channels,
    scale_output_channels,
)
from nndct_shared.graph import Graph, Node
from nndct_shared.graph.ops import find_op

__all__ = ["CLE_MAX_SWEEPS", "CLE_TOLERANCE", "ClePair", "cle_role", "equalize_graph", "find_cle_pairs"]

#: `cle_extensions`: the most sweeps over the pairs, and the log-scale change that ends them.
CLE_MAX_SWEEPS = 20
CLE_TOLERANCE = 1e-6


def cle_role(node: Node, extensions: bool = False) -> str | None:
    """The node's role in CLE from its op's registry entry: "weighted", "transparent", "clip" or
    None (a role declared as an extension only counts with `extensions`)."""
    op = find_op(node.op_type)
    if op is None or (op.cle_extension and not extensions):
        return None
    return op.cle


@dataclass(frozen=True)
class ClePair:
    """Node A, node B and the nodes between them (transparent or clip)."""

    first: str
    second: str
    between: tuple[str, ...]


def _out_axis(node: Node) -> int:
    op = find_op(node.op_type)
    return 0 if op is None or op.weight_axis is None else int(op.weight_axis)


def _groups(node: Node) -> int:
    return int(node.attrs.get("groups", 1))


def _takes_part(node: Node, extensions: bool) -> bool:
    if cle_role(node, extensions) != "weighted" or "weight" not in node.params:
        return False
    return _out_axis(node) == 0 or _groups(node) == 1


def _only_reader(graph: Graph, node: Node, outputs: set[str]) -> Node | None:
    if len(node.outputs) != 1 or node.name in outputs:
        return None
    readers = graph.consumers(node.outputs[0])
    if len(readers) != 1 or readers[0].inputs.count(node.outputs[0]) != 1:
        return None
    return readers[0]


def _channels_match(a: Node, b: Node) -> bool:
    w1, w2 = a.params["weight"].data, b.params["weight"].data
    if w1 is None or w2 is None or w2.ndim < 2:
        return False
    out_a = w1.shape[_out_axis(a)] * (_groups(a) if _out_axis(a) == 1 else 1)
    in_b = w2.shape[0] if _out_axis(b) == 1 else w2.shape[1] * _groups(b)
    return out_a == in_b


def find_cle_pairs(graph: Graph, eligible: Collection[str] | None = None,
                   extensions: bool = False) -> list[ClePair]:
    """The qualifying (A, B) pairs in topological order of A (see the module docstring).

    `eligible`: if given, both A and B must be in it (the nodes whose weights are quantized:
    equalizing a layer that stays float only perturbs its float arithmetic, for no gain).
    """
    outputs = {n.name for n in graph.outputs}
    pairs: list[ClePair] = []
    for node in graph.topological_order():
        if not _takes_part(node, extensions) or (eligible is not None and node.name not in eligible):
            continue
        between: list[str] = []
        reader = _only_reader(graph, node, outputs)
        while reader is not None and cle_role(reader, extensions) in ("transparent", "clip"):
            between.append(reader.name)
            reader = _only_reader(graph, reader, outputs)
        if reader is None or not _takes_part(reader, extensions):
            continue
        if (eligible is not None and reader.name not in eligible) or not _channels_match(node, reader):
            continue
        pairs.append(ClePair(node.name, reader.name, tuple(between)))
    return pairs


def _equalize_pair(graph: Graph, pair: ClePair, extensions: bool) -> float:
    """Scale one pair in place; returns max |log s| (how far the pair moved)."""
    a, b = graph.node(pair.first), graph.node(pair.second)
    axis_a, axis_b = _out_axis(a), _out_axis(b)
    w1 = a.params["weight"].data
    b1 = a.params["bias"].data if "bias" in a.params else None
    w2 = b.params["weight"].data
    r_a = first_layer_ranges(output_channel_rows(w1, axis_a), b1)
    r_b = input_channel_ranges(w2, _groups(b), axis_b)
    scales = equalization_scales(r_a, r_b)
    a.params["weight"].data = scale_output_channels(w1, scales, axis_a).astype(w1.dtype)
    if b1 is not None:
        a.params["bias"].data = (np.asarray(b1, np.float32) / scales).astype(b1.dtype)
    b.params["weight"].data = scale_input_channels(w2, scales, _groups(b), axis_b).astype(w2.dtype)
    for name in pair.between:
        node = graph.node(name)
        if cle_role(node, extensions) == "clip":
            clip = np.asarray(node.attrs.get("clip", 6.0), dtype=np.float32)
            node.attrs["clip"] = tuple(float(v) for v in np.broadcast_to(clip, scales.shape) / scales)
    return float(np.max(np.abs(np.log(scales.astype(np.float64))))) if scales.size else 0.0


def equalize_graph(graph: Graph, eligible: Collection[str] | None = None,
                   extensions: bool = False) -> list[ClePair]:
    """Equalize every qualifying pair in place (params' numpy data, ReLU6 `clip` attrs); returns
    the pairs. One pass (the reference's); with `extensions`, sweeps until no scale moves by more
    than CLE_TOLERANCE (in log) or CLE_MAX_SWEEPS sweeps."""
    pairs = find_cle_pairs(graph, eligible, extensions)
    for _ in range((CLE_MAX_SWEEPS if extensions else 1) if pairs else 0):
        change = max(_equalize_pair(graph, pair, extensions) for pair in pairs)
        if change <= CLE_TOLERANCE:
            break
    return pairs

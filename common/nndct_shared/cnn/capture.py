"""What a front end's capture hands to the neutral CNN session (`nndct_shared.cnn.session`).

A front end (torch.fx today) lowers the user's float model to the neutral `Graph` of the op
registry (`nndct_shared.graph.ops`), folds BatchNorm, and records which nodes run quantized;
everything after that (fix plan, settings, target, CLE, quant_info, export graphs) is the
session's, so it is the same code for every framework.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from nndct_shared.graph import Graph

__all__ = ["CapturedModel"]


@dataclass
class CapturedModel:
    """The captured float model.

    `graph` follows the op registry (`nndct_shared.graph.ops`) with float params (BatchNorm
    folded); `layer_types` maps node names to the layer type the config's `layer_type` matches
    (e.g. `torch.nn.Conv2d`, `relu`);
    `quantized` are the nodes that run quantized and `quant_inputs` the float nodes (or inputs)
    whose output enters a QuantStub region; `sources` the user's source line of every node.
    """

    graph: Graph
    layer_types: dict[str, str] = field(default_factory=dict)
    quantized: set[str] = field(default_factory=set)
    quant_inputs: set[str] = field(default_factory=set)
    sources: dict[str, str] = field(default_factory=dict)
    output_names: list[str] = field(default_factory=list)

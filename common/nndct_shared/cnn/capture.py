"""What a front end's capture hands to the neutral CNN session (`nndct_shared.cnn.session`).

A front end (torch.fx today) lowers the user's float model to the neutral `Graph` of the op
registry (`nndct_shared.graph.ops`), folds BatchNorm, and records which nodes run quantized;
everything after that (node names, fix plan, settings, target, CLE, quant_info, export graphs)
is the session's, so it is the same code for every framework.

Names: a front end names nodes as it traces them (`<Model>::<scope>/<name>`); the session then
renames them to the reference's `<Model>::nndct_<op>_<index>` (`apply_nndct_names`, computed
from the neutral graph by `graph.naming.nndct_node_names`), keeping each traced name in
`traced_names` for the generated `<Model>.py` comments, config layer names and older
quant_info.json files written with traced names.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from nndct_shared.graph import Graph, nndct_node_names, rename_nodes

__all__ = ["CapturedModel"]


@dataclass
class CapturedModel:
    """The captured float model.

    `graph` follows the op registry (`nndct_shared.graph.ops`) with float params (BatchNorm
    folded); `layer_types` maps node names to the layer type the config's `layer_type` matches
    (e.g. `torch.nn.Conv2d`, `relu`);
    `quantized` are the nodes that run quantized and `quant_inputs` the float nodes (or inputs)
    whose output enters a QuantStub region; `sources` the user's source line of every node;
    `traced_names` maps each node's nndct name to the name the front end traced (empty until
    `apply_nndct_names`).
    """

    graph: Graph
    layer_types: dict[str, str] = field(default_factory=dict)
    quantized: set[str] = field(default_factory=set)
    quant_inputs: set[str] = field(default_factory=set)
    sources: dict[str, str] = field(default_factory=dict)
    output_names: list[str] = field(default_factory=list)
    traced_names: dict[str, str] = field(default_factory=dict)

    @property
    def nndct_named(self) -> bool:
        return bool(self.traced_names)

    def apply_nndct_names(self) -> None:
        """Rename every node to `<Model>::nndct_<op>_<index>` (once; see the module docstring),
        with every node-keyed field of this object."""
        if self.nndct_named or len(self.graph) == 0:
            return
        names = nndct_node_names(self.graph)
        self.graph = rename_nodes(self.graph, names)
        self.layer_types = {names.get(k, k): v for k, v in self.layer_types.items()}
        self.quantized = {names.get(k, k) for k in self.quantized}
        self.quant_inputs = {names.get(k, k) for k in self.quant_inputs}
        self.sources = {names.get(k, k): v for k, v in self.sources.items()}
        self.output_names = [names.get(k, k) for k in self.output_names]
        self.traced_names = {new: old for old, new in names.items()}

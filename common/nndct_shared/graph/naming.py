"""Names as the reference quantizer forms them.

Node and tensor names are scoped by their graph (`<Graph>::<local>`, e.g.
`Lstm_StandardLstmCell_layer_0_forward::w_ii * input_0 + bias_i`); xmodel op names and
deploy-check file names replace every character outside [0-9A-Za-z] with `_`, so that name
becomes `Lstm_StandardLstmCell_layer_0_forward__w_ii___input_0___bias_i`.

CNN graphs are named as vai_q_pytorch 3.x names them: `<Model>::nndct_<op>_<index>`
(`nndct_node_names`, applied by the CNN session to every front end's capture, `rename_nodes`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, Union

if TYPE_CHECKING:
    from .graph import Graph

SCOPE_SEPARATOR = "::"
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


class _Named(Protocol):
    name: str


def scoped_name(graph: Union[str, _Named], local: str) -> str:
    """`<graph name>::<local>`; `graph` is a graph name or anything with a `.name`."""
    graph_name = graph if isinstance(graph, str) else graph.name
    if not graph_name or not local:
        raise ValueError(
            f"scoped_name needs a graph name and a local name, got {graph_name!r} and {local!r}"
        )
    return f"{graph_name}{SCOPE_SEPARATOR}{local}"


def local_name(name: str) -> str:
    """The part after the first `::` (the whole name if it is not scoped)."""
    scope, sep, local = name.partition(SCOPE_SEPARATOR)
    return local if sep else scope


def to_op_name(name: str) -> str:
    """XIR op name of a node/tensor name: every `[^0-9A-Za-z]` character becomes `_`."""
    return _NON_ALNUM.sub("_", name)


def to_file_name(name: str) -> str:
    """Deploy-check file stem of a node/tensor name; the same mapping as `to_op_name`, so a
    dump file and its xmodel op share one name."""
    return _NON_ALNUM.sub("_", name)


# --- the reference's node names of the CNN flow (vai_q_pytorch 3.x) -------------------------------

_NON_NAME_RUN = re.compile(r"[^0-9A-Za-z_]+")


def nndct_type_token(nndct_type: str) -> str:
    """The op part of a node name: the nndct op type with each run of characters outside
    `[0-9A-Za-z_]` made one `_` (`nndct_conv2d` stays, `aten::avg_pool1d` -> `aten_avg_pool1d`)."""
    return _NON_NAME_RUN.sub("_", nndct_type)


def nndct_node_names(graph: "Graph") -> dict[str, str]:
    """{current node name: `<Graph>::<nndct op type>_<index>`} for every node of a CNN graph.

    Why: vai_q_pytorch 3.x names every node of its parsed graph this way (the op type its op
    registry entry declares, `OpDef.nndct_type`, and the node's position in the topological
    node list, counting every node, also those without a fix such as `flatten`), and writes
    those names to quant_info.json, bias_corr.pth, the xmodel and the dumps. Computing them here,
    on the neutral graph, gives every front end the same names for the same graph."""
    from .ops import get_op  # the registry's entries import this module

    return {node.name: f"{graph.name}{SCOPE_SEPARATOR}"
                       f"{nndct_type_token(get_op(node.op_type).nndct_type(node))}_{index}"
            for index, node in enumerate(graph.topological_order())}


def rename_nodes(graph: "Graph", names: Mapping[str, str]) -> "Graph":
    """A copy of `graph` whose nodes are renamed by `names` (old -> new; absent: kept).

    An output tensor named like its node follows the node; a binary op's `other` constant
    named `<node>.<suffix>` follows it too; other params keep their names (module paths). Params' data and attrs are shared with `graph`, node attrs are copied."""
    from .graph import Graph
    from .node import Node
    from .tensor import Tensor

    tensors: dict[str, str] = {}
    for node in graph:
        new = names.get(node.name, node.name)
        for t in node.outputs:
            tensors[t] = new if t == node.name else t
    out = Graph(graph.name, graph.attrs)
    for node in graph:
        new = names.get(node.name, node.name)
        params = {}
        for role, p in node.params.items():
            if role == "other" and p.name.startswith(node.name + ".") and new != node.name:
                p = Tensor(new + p.name[len(node.name):], data=p.data, attrs=p.attrs)
            params[role] = p
        out.add_node(Node(new, node.op_type, dict(node.attrs), [tensors.get(t, t) for t in node.inputs],
                          [tensors[t] for t in node.outputs], params))
    for name, meta in graph.tensors.items():
        renamed = tensors.get(name, name)
        out.set_tensor(meta if renamed == name else Tensor(renamed, meta.shape, meta.dtype))
    out.set_inputs([names.get(n.name, n.name) for n in graph.inputs])
    out.set_outputs([names.get(n.name, n.name) for n in graph.outputs])
    return out

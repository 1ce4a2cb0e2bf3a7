"""Names as the reference quantizer forms them.

Node and tensor names are scoped by their graph (`<Graph>::<local>`, e.g.
`Lstm_StandardLstmCell_layer_0_forward::w_ii * input_0 + bias_i`); xmodel op names and
deploy-check file names replace every character outside [0-9A-Za-z] with `_`, so that name
becomes `Lstm_StandardLstmCell_layer_0_forward__w_ii___input_0___bias_i`.
"""
from __future__ import annotations

import re
from typing import Protocol, Union

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

"""XIR `.xmodel` files: an in-memory XGraph, its reader/writer and tools around it.

    from nndct_shared.xmodel import XGraph, write_xmodel, read_xmodel
    g = XGraph("Cell")
    g.add_data("x", [1, 16]); g.add_fix("x", 16, 12)
    write_xmodel(g, "cell.xmodel")

The protobuf schema (`xir.proto`, package `serial_v2`) is built in Python at import time by
`proto_schema`, so no `protoc` is needed. `python -m nndct_shared.xmodel FILE` lists a file.
"""
from __future__ import annotations

from .attr_value import ATTR_KINDS, TypedAttr, infer_kind
from .op_defs import (
    BUILTIN_OP_DEFS,
    ArgDef,
    ArgOccur,
    AttrDef,
    AttrOccur,
    DataType,
    OpDef,
    custom_op_def,
)
from .render import GraphvizNotFoundError, render_svg
from .text_dump import format_xgraph
from .to_graph import xgraph_to_graph
from .xgraph import TypedAttrs, XGraph, XGraphError, XOp, XSubgraph, XTensor, numpy_dtype
from .xmodel_io import (
    XModelFormatError,
    read_xmodel,
    write_xmodel,
    xgraph_from_bytes,
    xgraph_to_bytes,
)

__all__ = [
    "ATTR_KINDS",
    "ArgDef",
    "ArgOccur",
    "AttrDef",
    "AttrOccur",
    "BUILTIN_OP_DEFS",
    "DataType",
    "GraphvizNotFoundError",
    "OpDef",
    "TypedAttr",
    "TypedAttrs",
    "XGraph",
    "XGraphError",
    "XModelFormatError",
    "XOp",
    "XSubgraph",
    "XTensor",
    "custom_op_def",
    "format_xgraph",
    "infer_kind",
    "numpy_dtype",
    "read_xmodel",
    "render_svg",
    "write_xmodel",
    "xgraph_from_bytes",
    "xgraph_to_bytes",
    "xgraph_to_graph",
]

"""Read and write XIR `.xmodel` files (one serialized `serial_v2.Graph`).

Writer rules (from XIR's serialize_v2, see the project's xmodel format notes):
  * `op_node` in topological order (producers first);
  * every op gets one `OpArg` per input arg of its op def, in def order, even when empty;
  * attribute keys starting with `__` are dropped;
  * `subg_root` is one leaf `root` listing all ops (a tree read from a file is kept);
  * `op_defs` embeds a def for every op type used (a graph read from a file keeps the file's);
  * fields are emitted in field-number order, which protobuf does for us.

Map entries (attrs) are written in the XGraph's insertion order: XIR emits them in the order
of a hash map, which differs even between ops with the same keys in one file and cannot be
reproduced, so the reader keeps the file's order and a read-then-written file is
byte-identical to the original.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from . import attr_value
from ..atomic_io import write_bytes_atomic
from ..messages import XmodelFormatError, error
from .attr_value import TypedAttr
from .op_defs import op_def_from_proto, op_def_to_proto
from .proto_schema import messages
from .xgraph import TypedAttrs, XGraph, XGraphError, XOp, XSubgraph, XTensor

_DROPPED_PREFIX = "__"


XModelFormatError = XmodelFormatError
"""The bytes are not a readable XIR xmodel (truncated, foreign or inconsistent).

The catalogue's class (a ValueError): every reader error is raised as catalogue entry
XMODEL_INVALID, naming the file and the problem, so users get the ID and the fix."""


def _schema() -> Any:
    return messages(ordered_maps=True)


# --- writing ----------------------------------------------------------------------------


def _write_attrs(entries: Any, attrs: TypedAttrs, where: str) -> None:
    for name, kind, value in attrs.typed_items():
        if name.startswith(_DROPPED_PREFIX):
            continue
        entry = entries.add()
        entry.key = name
        try:
            attr_value.to_proto(kind, value, entry.value)
        except (TypeError, ValueError) as exc:
            raise XGraphError(f"{where}: attr {name!r}: {exc}") from None


def _write_subgraph(message: Any, subgraph: XSubgraph) -> None:
    message.subgraph_name = subgraph.name
    message.op_name.extend(subgraph.ops if not subgraph.children else [])
    _write_attrs(message.subg_attr, subgraph.attrs, f"subgraph {subgraph.name!r}")
    for child in subgraph.children:
        _write_subgraph(message.subg_child.add(), child)


def _subgraph_for_write(xgraph: XGraph, order: list[XOp]) -> XSubgraph:
    names = [op.name for op in order]
    stored = xgraph.subgraph
    if stored is not None and sorted(stored.leaf_ops()) == sorted(names):
        return stored
    if stored is not None and stored.children:
        raise XGraphError(
            f"graph {xgraph.name!r}: its subgraph tree (read from a file) no longer lists "
            "exactly the graph's ops; set xgraph.subgraph = None to write a single root leaf"
        )
    root = XSubgraph(stored.name if stored is not None else "root", names)
    if stored is not None:
        root.attrs = stored.attrs
    return root


def xgraph_to_message(xgraph: XGraph) -> Any:
    """The `serial_v2.Graph` message (ordered-map schema variant) for `xgraph`."""
    xgraph.validate()
    order = xgraph.topological_order()
    graph = _schema().Graph()
    graph.graph_name = xgraph.name
    for op in order:
        node = graph.op_node.add()
        node.op_name = op.name
        node.op_type = op.type
        _write_attrs(node.op_attr, op.attrs, f"op {op.name!r}")
        for arg in op.op_def.args:
            out = node.args.add()
            out.arg_name = arg.name
            out.arg_ops.extend(op.inputs.get(arg.name, []))
        tensor = node.output_tensor
        tensor.tensor_name = op.output.name
        tensor.tensor_dim.extend(op.output.shape)
        tensor.data_type = int(op.output.data_type)
        tensor.tensor_bit_width = int(op.output.bit_width)
        _write_attrs(tensor.tensor_attr, op.output.attrs, f"tensor of op {op.name!r}")
    _write_subgraph(graph.subg_root, _subgraph_for_write(xgraph, order))
    _write_attrs(graph.graph_attr, xgraph.attrs, f"graph {xgraph.name!r}")
    defs = dict(xgraph.op_defs)
    for op in order:
        defs.setdefault(op.type, op.op_def)
    for op_def in defs.values():
        op_def_to_proto(op_def, graph.op_defs.add())
    return graph


def xgraph_to_bytes(xgraph: XGraph) -> bytes:
    """Serialize `xgraph` to xmodel bytes (validates it first; raises XGraphError)."""
    return xgraph_to_message(xgraph).SerializeToString()


def write_xmodel(xgraph: XGraph, path: str | os.PathLike[str]) -> Path:
    """Write `xgraph` to `path` atomically (temp file + os.replace). Returns the path."""
    return write_bytes_atomic(path, xgraph_to_bytes(xgraph))


# --- reading ----------------------------------------------------------------------------


class _Invalid(Exception):
    """Internal: why the parsed message is not an XIR graph; the entry point adds the file."""


def _invalid(source: str, reason: str) -> XmodelFormatError:
    exc = error("XMODEL_INVALID", path=source, reason=reason)
    assert isinstance(exc, XmodelFormatError)
    return exc


def _read_attrs(entries: Any, where: str, into: TypedAttrs | None = None) -> TypedAttrs:
    attrs = TypedAttrs() if into is None else into
    for entry in entries:
        if not entry.key:
            raise _Invalid(f"{where}: an attribute has an empty name")
        try:
            kind, value = attr_value.from_proto(entry.value)
        except ValueError as exc:
            raise _Invalid(f"{where}: attr {entry.key!r}: {exc}") from None
        attrs[entry.key] = TypedAttr(kind, value)
    return attrs


def _read_subgraph(message: Any) -> XSubgraph:
    ops, children = list(message.op_name), list(message.subg_child)
    if ops and children:
        raise _Invalid(f"subgraph {message.subgraph_name!r} has both ops and child subgraphs")
    if not ops and not children:
        raise _Invalid(f"subgraph {message.subgraph_name!r} has neither ops nor child subgraphs")
    return XSubgraph(
        message.subgraph_name,
        ops,
        _read_attrs(message.subg_attr, f"subgraph {message.subgraph_name!r}"),
        [_read_subgraph(child) for child in children],
    )


def _has_unknown_fields(message: Any) -> bool:
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
    except ImportError:  # pragma: no cover - every supported runtime has it
        return False
    return len(UnknownFieldSet(message)) > 0


def _convert(graph: Any) -> XGraph:
    """The XGraph of a parsed message; raises _Invalid (or XGraphError from the XGraph
    constructors) for anything XIR would reject."""
    if not graph.graph_name:
        raise _Invalid("the graph has no name, so it is not an XIR xmodel")
    if len(graph.op_node) == 0:
        raise _Invalid(f"graph {graph.graph_name!r} has no ops")
    xgraph = XGraph(graph.graph_name)
    for message in graph.op_defs:
        try:
            op_def = op_def_from_proto(message)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        if op_def.name in xgraph.op_defs:
            raise _Invalid(f"op def {op_def.name!r} appears twice")
        xgraph.op_defs[op_def.name] = op_def

    if not graph.HasField("subg_root"):
        raise _Invalid(
            f"graph {graph.graph_name!r} has no subgraph root (every XIR-written file has one); "
            "the file is truncated or was not written by XIR"
        )
    for node in graph.op_node:
        where = f"op {node.op_name!r}"
        if not node.op_name or not node.op_type:
            raise _Invalid("an op has no name or no type")
        if node.op_type not in xgraph.op_defs:
            raise _Invalid(
                f"{where}: op type {node.op_type!r} has no op def in the file (XIR embeds one "
                "for every op type); the file is truncated or was not written by XIR"
            )
        if node.op_name in xgraph:
            raise _Invalid(f"{where} appears twice")
        tensor = node.output_tensor
        op = XOp(
            node.op_name,
            node.op_type,
            xgraph.op_defs[node.op_type],
            XTensor(tensor.tensor_name, list(tensor.tensor_dim), tensor.data_type,
                    tensor.tensor_bit_width, _read_attrs(tensor.tensor_attr, where)),
        )
        _read_attrs(node.op_attr, where, into=op.attrs)
        for arg in node.args:
            if arg.arg_name in op.inputs:
                raise _Invalid(f"{where}: input arg {arg.arg_name!r} appears twice")
            op.inputs[arg.arg_name] = list(arg.arg_ops)
        xgraph._ops[op.name] = op  # file order kept; validated below

    for op in xgraph:
        unknown = [p for p in op.input_ops if p not in xgraph]
        if unknown:
            raise _Invalid(f"op {op.name!r} reads {unknown}, which are not ops of the graph")

    xgraph.subgraph = _read_subgraph(graph.subg_root)
    strangers = [name for name in xgraph.subgraph.leaf_ops() if name not in xgraph]
    if strangers:
        raise _Invalid(f"the subgraph tree lists unknown ops {strangers}")
    _read_attrs(graph.graph_attr, "graph attrs", into=xgraph.attrs)
    # What XIR checks when it loads a graph (a cycle, arg counts, required attrs and their
    # kinds, return_ops): a graph that passes here can be written back and used as it is.
    xgraph.validate()
    return xgraph


def xgraph_from_message(graph: Any, source: str = "xmodel") -> XGraph:
    """Convert a parsed `serial_v2.Graph` (ordered-map variant) to an XGraph.

    Raises XModelFormatError (catalogue entry XMODEL_INVALID naming `source`) for a graph
    XIR would reject."""
    try:
        return _convert(graph)
    except (_Invalid, XGraphError) as exc:
        raise _invalid(source, str(exc)) from None


def xgraph_from_bytes(data: bytes, source: str = "xmodel bytes") -> XGraph:
    """Parse xmodel bytes. Raises XModelFormatError (catalogue entry XMODEL_INVALID) for
    anything that is not an xmodel, and TypeError when `data` is not bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"xgraph_from_bytes expects bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise _invalid(source, "it is empty")
    if data[0] != 0x0A:
        raise _invalid(
            source,
            "it is not an XIR xmodel: it must start with the graph name (byte 0x0a), found "
            f"0x{data[0]:02x}",
        )
    graph = _schema().Graph()
    try:
        graph.ParseFromString(data)
    except DecodeError as exc:
        raise _invalid(
            source,
            f"it is not a complete XIR xmodel (protobuf decoding failed: {exc}); the file may be "
            "truncated or of another format",
        ) from None
    if _has_unknown_fields(graph):
        raise _invalid(
            source,
            "it holds fields that are not part of an XIR xmodel; it is another protobuf format",
        )
    return xgraph_from_message(graph, source)


def read_xmodel(path: str | os.PathLike[str]) -> XGraph:
    """Read an `.xmodel` file into an XGraph. Raises XModelFormatError (catalogue entry
    XMODEL_INVALID) if it is not one, FileNotFoundError if there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"xmodel file {path} does not exist")
    return xgraph_from_bytes(path.read_bytes(), str(path))

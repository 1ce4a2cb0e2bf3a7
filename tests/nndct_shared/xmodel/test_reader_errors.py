"""Anything that is not a complete xmodel gives XModelFormatError, never a DecodeError."""
from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from nndct_shared.xmodel import XModelFormatError, read_xmodel, xgraph_from_bytes
from nndct_shared.xmodel.proto_schema import messages


def test_error_class_is_a_value_error() -> None:
    assert issubclass(XModelFormatError, ValueError)


@pytest.mark.parametrize("fraction", [0.001, 0.1, 0.5, 0.9, 0.999])
def test_truncated_golden_file(decoder_xmodel: Path, fraction: float) -> None:
    data = decoder_xmodel.read_bytes()
    with pytest.raises(XModelFormatError, match="truncated"):
        xgraph_from_bytes(data[: int(len(data) * fraction)])


def test_truncated_at_every_op_boundary(decoder_xmodel: Path) -> None:
    """A cut between two complete ops still decodes as protobuf; the reader must notice."""
    data = decoder_xmodel.read_bytes()
    graph = messages(ordered_maps=True).Graph.FromString(data)
    offset = len(b"\x0a") + 1 + len(graph.graph_name)
    for op in graph.op_node:
        size = len(op.SerializeToString())
        header = 1 + len(_varint(size))
        offset += header + size
        with pytest.raises(XModelFormatError):
            xgraph_from_bytes(data[:offset])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_empty_and_foreign_bytes() -> None:
    with pytest.raises(XModelFormatError, match="empty"):
        xgraph_from_bytes(b"")
    with pytest.raises(XModelFormatError, match="must start with the graph name"):
        xgraph_from_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(XModelFormatError, match="not a complete XIR xmodel"):
        xgraph_from_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    foreign = descriptor_pb2.FileDescriptorProto(name="x.proto", package="pkg")
    with pytest.raises(XModelFormatError, match="another protobuf format"):
        xgraph_from_bytes(foreign.SerializeToString())
    with pytest.raises(TypeError, match="expects bytes"):
        xgraph_from_bytes("not bytes")  # type: ignore[arg-type]


def test_inconsistent_graphs(decoder_xmodel: Path) -> None:
    Graph = messages(ordered_maps=True).Graph
    golden = Graph.FromString(decoder_xmodel.read_bytes())

    no_ops = Graph(graph_name="g")
    no_ops.subg_root.subgraph_name = "root"
    with pytest.raises(XModelFormatError, match="has no ops"):
        xgraph_from_bytes(no_ops.SerializeToString())

    dangling = Graph()
    dangling.CopyFrom(golden)
    dangling.op_node[1].args[0].arg_ops[0] = "ghost"
    with pytest.raises(XModelFormatError, match=r"reads \['ghost'\]"):
        xgraph_from_bytes(dangling.SerializeToString())

    twice = Graph()
    twice.CopyFrom(golden)
    twice.op_node.add().CopyFrom(golden.op_node[0])
    with pytest.raises(XModelFormatError, match="appears twice"):
        xgraph_from_bytes(twice.SerializeToString())

    bad_subgraph = Graph()
    bad_subgraph.CopyFrom(golden)
    bad_subgraph.subg_root.subg_child.add(subgraph_name="child", op_name=["x"])
    with pytest.raises(XModelFormatError, match="has both ops and child subgraphs"):
        xgraph_from_bytes(bad_subgraph.SerializeToString())

    untyped = Graph()
    untyped.CopyFrom(golden)
    untyped.op_node[0].op_attr[0].value.Clear()
    with pytest.raises(XModelFormatError, match="empty AttrValue"):
        xgraph_from_bytes(untyped.SerializeToString())


def test_read_xmodel_on_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_xmodel(tmp_path / "none.xmodel")
    text = tmp_path / "notes.xmodel"
    text.write_text("just some text\n")
    with pytest.raises(XModelFormatError, match=r"notes\.xmodel' is not a readable xmodel: it is not an XIR xmodel"):
        read_xmodel(text)

"""Building XGraphs by hand, writing them and reading them back."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nndct_shared.xmodel import (
    TypedAttr,
    XGraph,
    XGraphError,
    read_xmodel,
    write_xmodel,
    xgraph_from_bytes,
    xgraph_to_bytes,
)
from nndct_shared.xmodel.proto_schema import messages


def _dense_graph() -> tuple[XGraph, np.ndarray, np.ndarray]:
    """x[1,4] -> matmul(W[3,4], transpose_b) + b -> add(h) -> fix, quantized at 8 bits."""
    w = (np.arange(12, dtype=np.float32).reshape(3, 4) - 6) / 8
    b = np.array([0.5, -0.25, 0.125], dtype=np.float32)
    g = XGraph("Dense")
    g.add_data("x", [1, 4])
    g.add_fix("x", 8, 4)
    g.add_data("h", [1, 3])
    g.add_fix("h", 8, 4)
    g.add_const("w", w)
    g.add_fix("w", 8, 3)
    g.add_const("b", b)
    g.add_fix("b", 8, 3)
    g.add_op("y", "matmul", inputs={"input": ["x_fix", "w_fix"], "bias": ["b_fix"]},
             attrs={"transpose_a": False, "transpose_b": True}, shape=[1, 3])
    g.add_fix("y", 8, 4)
    g.add_op("z", "add", inputs={"input": ["y_fix", "h_fix"]}, shape=[1, 3])
    g.add_fix("z", 8, 4)
    g.attrs["direction"] = "forward"
    g.set_return_ops(["z_fix"])
    return g, w, b


def _canonical_ops(data: bytes) -> dict[str, bytes]:
    """Each op_node of a file, serialized with sorted map keys (order-independent)."""
    graph = messages().Graph.FromString(data)
    return {op.op_name: op.SerializeToString(deterministic=True) for op in graph.op_node}


def test_write_then_read_a_hand_built_graph(tmp_path: Path) -> None:
    g, w, b = _dense_graph()
    path = write_xmodel(g, tmp_path / "dense.xmodel")
    back = read_xmodel(path)
    assert [op.name for op in back] == [op.name for op in g]
    for op in g:
        other = back.op(op.name)
        assert (other.type, other.shape, dict(other.attrs)) == (op.type, op.shape, dict(op.attrs))
        assert {a: ps for a, ps in other.inputs.items() if ps} == op.inputs
    assert np.array_equal(back.op("w").const_array(), w)
    assert np.array_equal(back.op("b").const_array(), b)
    assert back.op("y").inputs == {"input": ["x_fix", "w_fix"], "bias": ["b_fix"]}
    assert back.op("z").inputs == {"input": ["y_fix", "h_fix"]}
    assert dict(back.attrs) == {"direction": "forward", "return_ops": ["z_fix"]}
    assert back.subgraph.name == "root" and back.subgraph.ops == [op.name for op in g]
    # only the op types used are embedded, in order of first use
    assert list(back.op_defs) == ["data", "fix", "const", "matmul", "add"]
    assert xgraph_to_bytes(back) == path.read_bytes()


def test_attrs_use_the_op_def_kinds_on_the_wire() -> None:
    g, _, _ = _dense_graph()
    graph = messages(ordered_maps=True).Graph.FromString(xgraph_to_bytes(g))
    ops = {op.op_name: op for op in graph.op_node}
    fix_attrs = {e.key: e.value.WhichOneof("value") for e in ops["w_fix"].op_attr}
    assert fix_attrs == {"fix_point": "int32_value", "bit_width": "int32_value",
                         "round_mode": "string_value", "if_signed": "bool_value"}
    assert [e.key for e in ops["w_fix"].op_attr] == ["fix_point", "bit_width", "round_mode",
                                                     "if_signed"]  # op-def order
    const_attrs = {e.key: e.value.WhichOneof("value") for e in ops["w"].op_attr}
    assert const_attrs == {"shape": "int32_vec_value", "data_type": "string_value",
                           "data": "bytes_value"}
    assert {e.key: e.value.string_value for e in ops["w"].op_attr}["data_type"] == "float32"
    data_attrs = {e.key: e.value.string_value for e in ops["x"].op_attr}
    assert data_attrs["data_type"] == "FLOAT32"
    # every def arg is present, in def order, even when empty
    assert [(a.arg_name, list(a.arg_ops)) for a in ops["y"].args] == [
        ("input", ["x_fix", "w_fix"]), ("bias", ["b_fix"])]
    assert [a.arg_name for a in ops["x"].args] == []
    for op in graph.op_node:
        assert op.output_tensor.data_type == 4 and op.output_tensor.tensor_bit_width == 32
    assert graph.graph_attr[1].value.WhichOneof("value") == "string_vec_value"


def test_matmul_without_bias_writes_an_empty_bias_arg() -> None:
    g = XGraph("NoBias")
    g.add_data("x", [1, 2])
    g.add_const("w", np.ones((2, 2), np.float32))
    g.add_op("y", "matmul", inputs={"input": ["x", "w"]},
             attrs={"transpose_a": False, "transpose_b": True}, shape=[1, 2])
    graph = messages(ordered_maps=True).Graph.FromString(xgraph_to_bytes(g))
    assert [(a.arg_name, list(a.arg_ops)) for a in graph.op_node[2].args] == [
        ("input", ["x", "w"]), ("bias", [])]


def test_ops_added_out_of_order_are_written_topologically() -> None:
    g = XGraph("Reversed")
    g.add_op("s_fix", "fix", inputs={"input": ["s"]},
             attrs={"bit_width": 16, "fix_point": 15, "round_mode": "DPU_ROUND",
                    "if_signed": True}, shape=[1, 4])
    g.add_op("s", "sigmoid", inputs={"input": ["x"]}, shape=[1, 4])
    g.add_data("x", [1, 4])
    assert [op.name for op in g.topological_order()] == ["x", "s", "s_fix"]
    back = xgraph_from_bytes(xgraph_to_bytes(g))
    assert [op.name for op in back] == ["x", "s", "s_fix"]
    assert back.subgraph.ops == ["x", "s", "s_fix"]


def test_cycles_and_unknown_producers_are_reported() -> None:
    g = XGraph("Loop")
    g.add_op("a", "relu", inputs={"input": ["b"]}, shape=[1])
    g.add_op("b", "relu", inputs={"input": ["a"]}, shape=[1])
    with pytest.raises(XGraphError, match=r"cycle among ops \['a', 'b'\]"):
        xgraph_to_bytes(g)
    g2 = XGraph("Dangling")
    g2.add_op("a", "relu", inputs={"input": ["ghost"]}, shape=[1])
    with pytest.raises(XGraphError, match=r"op 'a' \(relu\) reads \['ghost'\]"):
        xgraph_to_bytes(g2)


def test_builder_rejects_what_xir_would_reject() -> None:
    g = XGraph("Bad")
    g.add_data("x", [1, 2])
    with pytest.raises(XGraphError, match="already has an op named 'x'"):
        g.add_data("x", [1, 2])
    with pytest.raises(XGraphError, match="required attr 'transpose_b' is missing"):
        g.add_op("m", "matmul", inputs={"input": ["x", "x"]}, attrs={"transpose_a": False},
                 shape=[1, 2])
    with pytest.raises(XGraphError, match="no input arg 'weights'; its args are"):
        g.add_op("m", "matmul", inputs={"weights": ["x"]}, shape=[1, 2])
    with pytest.raises(XGraphError, match="'input' is REQUIRED: it takes exactly 1 op, got 2"):
        g.add_op("s", "sigmoid", inputs={"input": ["x", "x"]}, shape=[1, 2])
    with pytest.raises(XGraphError, match="REQUIRED_AND_REPEATED"):
        g.add_op("a", "add", shape=[1, 2])
    with pytest.raises(XGraphError, match="attribute 'fix_point'.*does not fit XIR kind 'int32'"):
        g.add_fix("x", 16, 2**31)
    with pytest.raises(XGraphError, match="attribute 'transpose_a'.*expected a bool"):
        g.add_op("m", "matmul", inputs={"input": ["x", "x"]},
                 attrs={"transpose_a": 0, "transpose_b": True}, shape=[1, 2])
    with pytest.raises(XGraphError, match="pass shape="):
        g.add_op("m", "matmul", inputs={"input": ["x", "x"]},
                 attrs={"transpose_a": False, "transpose_b": True})
    with pytest.raises(XGraphError, match="no op 'nope' to quantize"):
        g.add_fix("nope", 8, 4)
    with pytest.raises(XGraphError, match="kind 'int64', the op def says 'int32'"):
        g.add_op("f", "fix", inputs={"input": ["x"]},
                 attrs={"bit_width": TypedAttr("int64", 8), "fix_point": 1,
                        "round_mode": "DPU_ROUND", "if_signed": True})
    assert [op.name for op in g] == ["x"], "failed adds leave the graph unchanged"
    assert list(g.op_defs) == ["data"], "and register no op def"


def test_negative_fix_point_and_attr_edits() -> None:
    g = XGraph("Neg")
    g.add_data("x", [2])
    g.add_fix("x", 8, -2)
    data = xgraph_to_bytes(g)
    assert b"\x28" + b"\xfe" + b"\xff" * 8 + b"\x01" in data  # int32 -2, 10-byte varint
    back = xgraph_from_bytes(data)
    assert back.op("x_fix").fix == (8, -2)
    back.op("x_fix").attrs["fix_point"] = 3  # a plain value keeps the attr's kind
    assert back.op("x_fix").attrs.kind("fix_point") == "int32"
    assert xgraph_from_bytes(xgraph_to_bytes(back)).op("x_fix").fix == (8, 3)


def test_double_underscore_attrs_are_not_written() -> None:
    g = XGraph("Private")
    op = g.add_data("x", [1])
    op.attrs["__note"] = "kept in memory only"
    op.output.attrs["__tmp"] = 1
    g.attrs["__build"] = "x"
    back = xgraph_from_bytes(xgraph_to_bytes(g))
    assert "__note" not in back.op("x").attrs and "__build" not in back.attrs
    assert "__tmp" not in back.op("x").output.attrs
    assert op.attrs["__note"] == "kept in memory only"


def test_extra_and_tensor_attrs_are_typed_by_value() -> None:
    g = XGraph("Extra")
    g.add_data("x", [1, 3, 3, 2])
    g.add_const("w", np.zeros((4, 3, 3, 2), np.float32))
    conv = g.add_op(
        "c", "conv2d", inputs={"input": ["x"], "weights": ["w"]},
        attrs={"kernel": [3, 3], "stride": [1, 1], "pad_mode": "FLOOR", "pad": [1, 1, 1, 1],
               "bias_term": False, "in_dim": 2, "out_dim": 4,
               "scale64": TypedAttr("int64", 7)},
        shape=[1, 3, 3, 4], tensor_attrs={"shape_info": [1, 3, 3, 4]})
    assert [conv.attrs.kind(n) for n in conv.attrs] == [
        "int32_vec", "int32_vec", "string", "int32_vec", "bool", "int32", "int32", "int64"]
    back = xgraph_from_bytes(xgraph_to_bytes(g)).op("c")
    assert dict(back.attrs) == dict(conv.attrs)
    assert back.attrs.kind("scale64") == "int64"
    assert back.output.attrs.kind("shape_info") == "int32_vec"
    assert back.inputs == {"input": ["x"], "weights": ["w"], "bias": []}


def test_custom_op_gets_xir_custom_def_and_shape_attrs() -> None:
    g = XGraph("Custom")
    g.add_data("x", [1, 8, 4])
    op = g.add_op("p", "aten::adaptive_avg_pool1d", inputs={"input": ["x"]}, shape=[1, 2, 4])
    assert dict(op.attrs) == {"shape": [1, 2, 4], "data_type": "FLOAT32"}
    back = xgraph_from_bytes(xgraph_to_bytes(g))
    assert back.op_defs["aten::adaptive_avg_pool1d"].annotation == (
        "This operator is not defined by XIR.")
    assert back.op("p").shape == [1, 2, 4]


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    g, _, _ = _dense_graph()
    path = tmp_path / "m.xmodel"
    path.write_bytes(b"old")
    write_xmodel(g, path)
    assert path.read_bytes() == xgraph_to_bytes(g)
    assert sorted(os.listdir(tmp_path)) == ["m.xmodel"], "no temp file left behind"
    bad = XGraph("Bad")
    bad.add_op("a", "relu", inputs={"input": ["ghost"]}, shape=[1])
    with pytest.raises(XGraphError):
        write_xmodel(bad, path)
    assert path.read_bytes() == xgraph_to_bytes(g), "a failed write keeps the old file"
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        write_xmodel(g, tmp_path / "missing_dir" / "m.xmodel")


def test_rebuilding_the_golden_cell_from_plain_values(decoder_xmodel) -> None:
    """Re-create every op of the reference file through the builder API with plain Python
    values only: the kinds come from the op defs and must equal what XIR wrote."""
    golden = read_xmodel(decoder_xmodel)
    g = XGraph(golden.name)
    for op in golden:
        if op.type == "const":
            g.add_const(op.name, op.const_array())
        elif op.type == "fix":
            g.add_fix(op.inputs["input"][0], op.attrs["bit_width"], op.attrs["fix_point"])
        else:
            g.add_op(op.name, op.type, inputs={a: ps for a, ps in op.inputs.items() if ps},
                     attrs=dict(op.attrs), shape=op.shape)
    g.attrs["direction"] = golden.attrs["direction"]
    g.set_return_ops(golden.return_ops)
    data = xgraph_to_bytes(g)
    assert _canonical_ops(data) == _canonical_ops(decoder_xmodel.read_bytes())
    rebuilt = messages().Graph.FromString(data)
    reference = messages().Graph.FromString(decoder_xmodel.read_bytes())
    assert rebuilt.graph_attr == reference.graph_attr
    assert rebuilt.subg_root == reference.subg_root
    assert sorted(d.name for d in rebuilt.op_defs) == sorted(
        ["data", "fix", "const", "matmul", "add", "sigmoid", "tanh", "mul"])
    reference_defs = {d.name: d for d in reference.op_defs}
    for d in rebuilt.op_defs:  # same defs as XIR's, up to the annotation texts
        ref = reference_defs[d.name]
        for msg in (d, ref):
            msg.ClearField("annotation")
            for part in (*msg.input_args, *msg.attrs):
                part.ClearField("annotation")
        assert d == ref, d.name

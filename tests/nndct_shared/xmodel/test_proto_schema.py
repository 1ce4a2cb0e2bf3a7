"""xir.proto and the Python-built descriptor must describe the same schema, and the schema
must decode the reference files completely."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import nndct_shared.xmodel
from nndct_shared.xmodel.proto_schema import file_descriptor_proto, messages

PROTO_PATH = Path(nndct_shared.xmodel.__file__).parent / "xir.proto"
_F = descriptor_pb2.FieldDescriptorProto
_TYPE_NAMES = {
    _F.TYPE_BOOL: "bool", _F.TYPE_INT32: "int32", _F.TYPE_UINT32: "uint32",
    _F.TYPE_INT64: "int64", _F.TYPE_UINT64: "uint64", _F.TYPE_FLOAT: "float",
    _F.TYPE_DOUBLE: "double", _F.TYPE_STRING: "string", _F.TYPE_BYTES: "bytes",
}


Fields = dict[str, dict[str, tuple]]
Enums = dict[str, dict[str, int]]


def _parse_proto_text(text: str) -> tuple[str, Fields, Enums]:
    """A small parser for the subset of proto3 that xir.proto uses: messages (one level of
    nested enums), `map<,>`, `repeated`, `oneof` blocks and enums.
    Returns (package, {message: {field: (number, label, type)}}, {enum path: {value: number}})."""
    text = re.sub(r"//[^\n]*", "", text)
    package = re.search(r"\bpackage\s+([\w.]+)\s*;", text).group(1)
    tokens = re.findall(r"map<\s*\w+\s*,\s*[\w.]+\s*>|[\w.]+|[{};=]", text)
    messages_: dict[str, dict[str, tuple]] = {}
    enums: dict[str, dict[str, int]] = {}
    stack: list[tuple[str, str]] = []  # (kind, name)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("message", "enum", "oneof"):
            name = tokens[i + 1]
            assert tokens[i + 2] == "{", f"malformed {tok} {name}"
            if tok == "message":
                messages_[name] = {}
            elif tok == "enum":
                enums[f"{stack[-1][1]}.{name}" if stack else name] = {}
            stack.append((tok, name))
            i += 3
        elif tok == "}":
            stack.pop()
            i += 1
        elif tok in ("syntax", "package"):
            i = tokens.index(";", i) + 1
        elif stack and stack[-1][0] == "enum":
            name, eq, number, semi = tokens[i:i + 4]
            assert (eq, semi) == ("=", ";")
            enum_path = f"{stack[-2][1]}.{stack[-1][1]}" if len(stack) > 1 else stack[-1][1]
            enums[enum_path][name] = int(number)
            i += 4
        else:
            label = "single"
            if tok == "repeated":
                label, i = "repeated", i + 1
            ftype = tokens[i]
            if ftype.startswith("map<"):
                label, ftype = "map", re.match(r"map<\s*\w+\s*,\s*([\w.]+)\s*>", ftype).group(1)
            name, eq, number, semi = tokens[i + 1:i + 5]
            assert (eq, semi) == ("=", ";"), f"malformed field near {name}"
            owner = next(n for k, n in reversed(stack) if k == "message")
            if f"{owner}.{ftype}" in enums:  # a nested enum, referenced unqualified
                ftype = f"{owner}.{ftype}"
            in_oneof = stack[-1][0] == "oneof"
            messages_[owner][name] = (int(number), label, ftype, in_oneof)
            i += 5
    return package, messages_, enums


def _descriptor_fields() -> tuple[str, dict[str, dict[str, tuple]], dict[str, dict[str, int]]]:
    fdp = file_descriptor_proto()
    out: dict[str, dict[str, tuple]] = {}
    enums: dict[str, dict[str, int]] = {}
    for msg in fdp.message_type:
        entries = {n.name: n for n in msg.nested_type if n.options.map_entry}
        for enum in msg.enum_type:
            enums[f"{msg.name}.{enum.name}"] = {v.name: v.number for v in enum.value}
        fields = {}
        for f in msg.field:
            entry_name = f.type_name.rsplit(".", 1)[-1]
            if f.type == _F.TYPE_MESSAGE and entry_name in entries:
                value = entries[entry_name].field[1]
                label = "map"
                ftype = _TYPE_NAMES.get(value.type) or value.type_name.rsplit(".", 1)[-1]
            else:
                label = "repeated" if f.label == _F.LABEL_REPEATED else "single"
                if f.type in _TYPE_NAMES:
                    ftype = _TYPE_NAMES[f.type]
                else:
                    ftype = f.type_name.removeprefix(f".{fdp.package}.")
            fields[f.name] = (f.number, label, ftype, f.HasField("oneof_index"))
        out[msg.name] = fields
    return fdp.package, out, enums


def test_xir_proto_and_python_descriptor_agree() -> None:
    package, text_messages, text_enums = _parse_proto_text(PROTO_PATH.read_text())
    py_package, py_messages, py_enums = _descriptor_fields()
    assert package == py_package == "serial_v2"
    assert set(text_messages) == set(py_messages)
    for name, fields in text_messages.items():
        assert fields == py_messages[name], f"message {name} differs"
    assert text_enums == py_enums


def test_schema_field_numbers_from_the_spec() -> None:
    _, fields, enums = _descriptor_fields()
    assert {n: v[0] for n, v in fields["Graph"].items()} == {
        "graph_name": 1, "op_node": 5, "subg_root": 10, "graph_attr": 11, "op_defs": 101}
    assert {n: v[0] for n, v in fields["OPNode"].items()} == {
        "op_name": 1, "op_type": 2, "op_attr": 3, "args": 4, "output_tensor": 5}
    assert {n: v[0] for n, v in fields["Tensor"].items()} == {
        "tensor_name": 1, "tensor_dim": 2, "data_type": 5, "tensor_bit_width": 6,
        "tensor_attr": 10}
    assert {n: v[0] for n, v in fields["SubGraph"].items()} == {
        "subgraph_name": 1, "op_name": 3, "subg_attr": 5, "subg_child": 10}
    assert {n: v[0] for n, v in fields["AttrDef"].items()} == {
        "name": 1, "occur_type": 3, "default_value": 4, "list_length": 6, "annotation": 7}
    attr_numbers = sorted(v[0] for v in fields["AttrValue"].values())
    assert attr_numbers == list(range(4, 33))
    assert all(v[3] for v in fields["AttrValue"].values()), "all AttrValue members are a oneof"
    assert enums["OpArgDef.OccurType"] == {
        "REQUIRED": 0, "OPTIONAL": 1, "REPEATED": 2, "REQUIRED_AND_REPEATED": 3}
    assert enums["AttrDef.OccurType"] == {"REQUIRED": 0, "OPTIONAL": 1}


def test_golden_files_decode_completely_and_reserialize_identically(golden_xmodels) -> None:
    from google.protobuf.unknown_fields import UnknownFieldSet

    for path in golden_xmodels:
        data = path.read_bytes()
        graph = messages(ordered_maps=True).Graph.FromString(data)
        assert len(UnknownFieldSet(graph)) == 0
        assert all(len(UnknownFieldSet(op)) == 0 for op in graph.op_node)
        assert graph.SerializeToString() == data


def test_canonical_and_ordered_variants_hold_the_same_content(decoder_xmodel) -> None:
    data = decoder_xmodel.read_bytes()
    canonical = messages().Graph.FromString(data)
    ordered = messages(ordered_maps=True).Graph.FromString(data)
    assert len(canonical.op_node) == len(ordered.op_node) == 72
    for c_op, o_op in zip(canonical.op_node, ordered.op_node):
        assert set(c_op.op_attr) == {e.key for e in o_op.op_attr}
        for entry in o_op.op_attr:
            assert c_op.op_attr[entry.key].SerializeToString() == entry.value.SerializeToString()
    # The canonical map schema does not keep XIR's entry order; the ordered one does.
    assert canonical.SerializeToString(deterministic=True) != data


@pytest.mark.parametrize("ordered", [False, True])
def test_each_variant_lives_in_its_own_pool(ordered: bool) -> None:
    graph_cls = messages(ordered_maps=ordered).Graph
    assert graph_cls.DESCRIPTOR.full_name == "serial_v2.Graph"
    assert messages(ordered_maps=ordered).Graph is graph_cls  # cached

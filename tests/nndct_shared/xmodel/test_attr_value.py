"""Plain Python values <-> AttrValue oneof members, with XIR's exact types on the wire."""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared.xmodel import attr_value
from nndct_shared.xmodel.attr_value import ATTR_KINDS, TypedAttr, infer_kind
from nndct_shared.xmodel.proto_schema import messages

AttrValue = messages(ordered_maps=True).AttrValue

SAMPLES = {
    "bool": False,
    "int32": -1,
    "uint32": 2**32 - 1,
    "int64": -(2**40),
    "uint64": 2**63 + 5,
    "float": 0.1,
    "double": 0.1,
    "string": "DPU_ROUND",
    "bytes": b"\x00\x01\xff",
    "bool_vec": [True, False],
    "int32_vec": [1, -2, 3],
    "uint32_vec": [0, 7],
    "int64_vec": [2**40, -1],
    "uint64_vec": [2**64 - 1],
    "float_vec": [1.5, -0.25],
    "double_vec": [1e-12],
    "string_vec": ["a", ""],
    "bytes_vec": [b"x", b""],
    "map_string_2_int32": {"b": 0, "a": -3},
    "map_string_2_uint32": {"k": 1},
    "map_string_2_int64": {"k": -(2**40)},
    "map_string_2_uint64": {"k": 2**64 - 1},
    "map_string_2_string": {"z": "1", "a": ""},
    "map_string_2_bytes": {"k": b"\x00"},
    "map_string_2_int32_vec": {"k": [1, 2], "e": []},
    "map_string_2_uint32_vec": {"k": [3]},
    "map_string_2_int64_vec": {"k": [-(2**40)]},
    "map_string_2_uint64_vec": {"k": [2**64 - 1]},
    "map_string_2_string_vec": {"k": ["a", "b"]},
}


def test_every_kind_has_a_sample_and_a_oneof_member() -> None:
    assert set(SAMPLES) == set(ATTR_KINDS)
    assert len(ATTR_KINDS) == 29
    members = {f.name for f in AttrValue.DESCRIPTOR.oneofs_by_name["value"].fields}
    assert {k + "_value" for k in ATTR_KINDS} == members


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_round_trip_through_bytes(kind: str) -> None:
    message = attr_value.to_proto(kind, SAMPLES[kind], AttrValue())
    parsed = AttrValue.FromString(message.SerializeToString())
    got_kind, got = attr_value.from_proto(parsed)
    assert got_kind == kind
    expected = attr_value.normalize(kind, SAMPLES[kind])
    assert got == expected
    if isinstance(got, dict):
        assert list(got) == list(SAMPLES[kind]), "map entries keep their order"


def test_wire_encodings_match_xir() -> None:
    def wire(kind, value):
        return attr_value.to_proto(kind, value, AttrValue()).SerializeToString()

    assert wire("int32", 12) == b"\x28\x0c"                       # fix_point: int32_value
    assert wire("int32", -1) == b"\x28" + b"\xff" * 9 + b"\x01"    # 10-byte sign extension
    assert wire("bool", False) == b"\x20\x00"                       # false still emitted
    assert wire("bool", True) == b"\x20\x01"
    assert wire("string", "") == b"\x5a\x00"
    assert wire("int32_vec", []) == b"\x72\x00"                     # empty vec still present
    assert wire("int32_vec", [1, 32]) == b"\x72\x04\x0a\x02\x01\x20"  # packed
    assert wire("bytes", b"ab") == b"\x62\x04\x0a\x02ab"
    assert wire("float", 1.0) == b"\x4d\x00\x00\x80\x3f"
    # a map entry always carries key and value, even default ones (as a C++ map entry does)
    assert wire("map_string_2_int32", {"a": 0}) == b"\xb2\x01\x07\x0a\x05\x0a\x01a\x10\x00"


def test_normalize_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit XIR kind 'int32'"):
        attr_value.normalize("int32", 2**31)
    with pytest.raises(ValueError, match="uint32"):
        attr_value.normalize("uint32", -1)
    with pytest.raises(TypeError, match="expected a bool"):
        attr_value.normalize("bool", 1)
    with pytest.raises(TypeError, match="expected an int"):
        attr_value.normalize("int32", True)
    with pytest.raises(TypeError, match="expected an int"):
        attr_value.normalize("int32_vec", [1.5])
    with pytest.raises(TypeError, match="expected a list"):
        attr_value.normalize("int32_vec", "12")
    with pytest.raises(ValueError, match="unknown XIR attribute kind 'int16'"):
        attr_value.normalize("int16", 1)


def test_normalize_canonical_forms() -> None:
    assert attr_value.normalize("float", 0.1) == float(np.float32(0.1))
    assert attr_value.normalize("double", 0.1) == 0.1
    assert attr_value.normalize("int32_vec", np.array([1, 2], dtype=np.int64)) == [1, 2]
    assert attr_value.normalize("int32", np.int16(-5)) == -5
    array = np.array([[1.0, -2.0]], dtype=">f4")  # big-endian input is stored little-endian
    assert attr_value.normalize("bytes", array) == np.array([[1.0, -2.0]], "<f4").tobytes()


def test_infer_kind() -> None:
    assert infer_kind(True) == "bool"
    assert infer_kind(3) == "int32"
    assert infer_kind(2**40) == "int64"
    assert infer_kind(0.5) == "float"
    assert infer_kind("x") == "string"
    assert infer_kind(b"x") == "bytes"
    assert infer_kind([1, 2]) == "int32_vec"
    assert infer_kind([1, 2.5]) == "float_vec"
    assert infer_kind(["a"]) == "string_vec"
    assert infer_kind({"a": "b"}) == "map_string_2_string"
    assert infer_kind({"a": [1]}) == "map_string_2_int32_vec"
    assert infer_kind(TypedAttr("int64", 3)) == "int64"
    with pytest.raises(ValueError, match="empty list"):
        infer_kind([])
    with pytest.raises(ValueError, match="no XIR map kind"):
        infer_kind({"a": 1.5})
    with pytest.raises(TypeError, match="cannot store"):
        infer_kind(object())


def test_empty_attr_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty AttrValue"):
        attr_value.from_proto(AttrValue())

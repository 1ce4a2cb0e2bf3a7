"""The built-in op defs agree with the defs XIR embedded in the reference xmodels."""
from __future__ import annotations

import pytest

from nndct_shared.xmodel import BUILTIN_OP_DEFS, ArgOccur, AttrOccur, DataType, custom_op_def
from nndct_shared.xmodel.op_defs import op_def_from_proto, op_def_to_proto
from nndct_shared.xmodel.proto_schema import messages

#: Op types the quantizer writes (brief + spec §2); each must have a built-in def.
QUANTIZER_OP_TYPES = [
    "data", "const", "fix", "matmul", "add", "sub", "mul", "div", "sigmoid", "tanh", "relu",
    "relu6", "leaky-relu", "hard-sigmoid", "hard-swish", "conv1d", "conv2d",
    "depthwise-conv2d", "transposed-conv2d", "maxpool2d", "avgpool2d", "maxpool1d", "concat",
    "reshape", "flatten", "transpose", "reduction_mean", "softmax", "scale", "strided_slice",
    "pad", "resize", "stack", "squeeze", "prelu", "float2fix", "fix2float",
]

#: Deliberate differences from the (older) XIR that wrote the golden files: newer XIR adds
#: conv2d's `group` attr, and defines conv1d, maxpool1d and prelu, which it lacks.
NEWER_XIR_ATTRS = {("conv2d", "group")}
NOT_IN_GOLDEN_XIR = {"conv1d", "maxpool1d", "prelu"}


def _facts(op_def):
    """Everything but the annotations: arg (name, occur, data_type), attr (name, occur,
    kind, default, list_length)."""
    args = [(a.name, int(a.occur), int(a.data_type)) for a in op_def.args]
    attrs = [(a.name, int(a.occur), a.kind, a.default, a.list_length) for a in op_def.attrs
             if (op_def.name, a.name) not in NEWER_XIR_ATTRS]
    return args, attrs


@pytest.fixture(scope="module")
def golden_defs(decoder_xmodel):
    graph = messages(ordered_maps=True).Graph.FromString(decoder_xmodel.read_bytes())
    return {d.name: op_def_from_proto(d) for d in graph.op_defs}


def test_every_quantizer_op_type_has_a_def() -> None:
    missing = [t for t in QUANTIZER_OP_TYPES if t not in BUILTIN_OP_DEFS]
    assert missing == []


def test_builtin_defs_match_the_golden_xir_registry(golden_defs) -> None:
    assert len(golden_defs) == 78
    compared = 0
    for name, op_def in BUILTIN_OP_DEFS.items():
        if name in NOT_IN_GOLDEN_XIR:
            assert name not in golden_defs
            continue
        assert _facts(op_def) == _facts(golden_defs[name]), f"op def {name} differs"
        compared += 1
    assert compared == len(BUILTIN_OP_DEFS) - len(NOT_IN_GOLDEN_XIR)


def test_key_facts_of_the_lstm_op_defs() -> None:
    fix = BUILTIN_OP_DEFS["fix"]
    assert [(a.name, a.kind) for a in fix.attrs] == [
        ("fix_point", "int32"), ("bit_width", "int32"), ("round_mode", "string"),
        ("if_signed", "bool")]
    matmul = BUILTIN_OP_DEFS["matmul"]
    assert [(a.name, a.occur) for a in matmul.args] == [
        ("input", ArgOccur.REQUIRED_AND_REPEATED), ("bias", ArgOccur.OPTIONAL)]
    const = BUILTIN_OP_DEFS["const"]
    assert [(a.name, a.kind, a.list_length) for a in const.attrs] == [
        ("shape", "int32_vec", 0), ("data_type", "string", 1), ("data", "bytes", 0)]
    conv2d = BUILTIN_OP_DEFS["conv2d"]
    assert conv2d.attr("kernel").kind == "int32_vec" and conv2d.attr("kernel").list_length == 2
    assert conv2d.attr("dilation").default == [1, 1]
    assert conv2d.attr("group").occur == AttrOccur.OPTIONAL and conv2d.attr("group").default == 1
    assert BUILTIN_OP_DEFS["scale"].attr("axis").default == -1
    assert BUILTIN_OP_DEFS["reshape"].arg("shape").data_type == DataType.INT


def test_conv1d_and_maxpool1d_follow_xir() -> None:
    conv1d = BUILTIN_OP_DEFS["conv1d"]
    assert conv1d.arg_names == ("input", "weights", "bias")
    assert [(a.name, int(a.occur), a.default, a.list_length) for a in conv1d.attrs] == [
        ("kernel", 0, [], 1), ("stride", 0, [], 1), ("dilation", 1, [1], 1),
        ("pad_mode", 0, "", 1), ("pad", 1, [0, 0], 2)]
    pool = BUILTIN_OP_DEFS["maxpool1d"]
    assert [(a.name, int(a.occur), a.default, a.list_length) for a in pool.attrs] == [
        ("kernel", 0, [], 1), ("stride", 0, [], 1), ("pad_mode", 0, "", 1),
        ("pad", 1, [0, 0], 2), ("global", 1, False, 1)]


def test_custom_op_def_is_what_xir_registers() -> None:
    op_def = custom_op_def("aten::adaptive_avg_pool1d")
    assert op_def.annotation == "This operator is not defined by XIR."
    assert [(a.name, a.occur, a.data_type) for a in op_def.args] == [
        ("input", ArgOccur.REPEATED, DataType.FLOAT)]
    assert [(a.name, a.kind, a.occur) for a in op_def.attrs] == [
        ("shape", "int32_vec", AttrOccur.REQUIRED), ("data_type", "string", AttrOccur.REQUIRED)]


def test_golden_defs_round_trip_byte_for_byte(decoder_xmodel) -> None:
    OpDef = messages(ordered_maps=True).OpDef
    graph = messages(ordered_maps=True).Graph.FromString(decoder_xmodel.read_bytes())
    for message in graph.op_defs:
        rebuilt = op_def_to_proto(op_def_from_proto(message), OpDef())
        assert rebuilt.SerializeToString() == message.SerializeToString(), message.name


def test_def_without_typed_default_is_rejected() -> None:
    OpDef = messages(ordered_maps=True).OpDef
    message = OpDef(name="broken")
    message.attrs.add(name="alpha")
    with pytest.raises(ValueError, match="'broken': attr 'alpha' has no typed default value"):
        op_def_from_proto(message)

"""The CNN op registry (`nndct_shared.graph.ops`): every entry declares a complete contract and
defines every facet itself, each XIR op type has one evaluating entry, and the registry refuses
the mistakes a developer adding an op can make."""
from __future__ import annotations

import pytest

from nndct_shared.graph import ops
from nndct_shared.graph.ops import (ANY, BINARY, CNN_OPS, NONE, UNARY, VARIADIC, OpDef, all_ops,
                                    find_op, get_op, register, required_attrs, xir_owner)
from nndct_shared.graph.ops.base import REGISTRY, XIR_OWNERS

#: The ops of the neutral CNN graph today (the contract the PyTorch capture produces).
KNOWN = {
    "input", "linear", "conv1d", "conv2d", "conv_transpose2d", "scale", "relu", "relu6",
    "leaky_relu", "sigmoid", "tanh", "hardswish", "max_pool1d", "max_pool2d", "avg_pool1d",
    "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "add", "sub", "mul", "concat", "flatten", "reshape", "mean", "softmax",
    "custom",
    # the op coverage of issue 17
    "resize", "pad", "permute", "transpose", "unsqueeze", "chunk", "split", "clamp", "prelu",
    "hardsigmoid", "matmul", "gelu", "elu", "silu", "layer_norm", "group_norm", "instance_norm", "sum",
    "max",
}


def test_the_registry_holds_every_op_of_the_contract():
    assert set(all_ops()) == KNOWN
    assert set(CNN_OPS) == KNOWN and len(CNN_OPS) == len(KNOWN)
    assert CNN_OPS["hardswish"] is get_op("hardswish") is find_op("hardswish")
    assert find_op("upsample") is None
    with pytest.raises(KeyError, match="'upsample' is not a CNN op.*known: adaptive_avg_pool1d"):
        get_op("upsample")


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_every_entry_defines_every_facet_itself(name):
    op = get_op(name)
    assert op.name == name and repr(op) == f"<op {name}>"
    for facet in OpDef.REQUIRED_FACETS:
        assert getattr(type(op), facet) is not getattr(OpDef, facet), f"{name} lacks {facet}"
    assert op.arity in (NONE, UNARY, BINARY, VARIADIC, ANY)
    assert op.cle in (None, "weighted", "transparent", "clip")
    assert op.cle is not None or not op.cle_extension
    # lower case as the reference's NNDCT_OP table, which spells one type in capitals
    assert op.nndct_op and op.nndct_op in (op.nndct_op.lower(), "nndct_GELU") or name == "custom"
    assert all(isinstance(a, str) for a in (*op.attrs, *op.optional_attrs))
    assert set(op.params) | set(op.optional_params) <= {"weight", "bias", "other"}
    assert required_attrs(name) == op.attrs
    if op.spatial is not None:
        assert op.spatial in (1, 2) and name.endswith(f"{op.spatial}d")
    for xir_type in op.xir_types:                    # it evaluates what it owns
        assert xir_owner(xir_type) is op
        assert type(op).eval_xir is not OpDef.eval_xir


def test_facts_the_algorithms_read():
    # CLE: the reference's roles, and this project's extensions (config cle_extensions)
    def role(cle, extension):
        return {n for n, op in all_ops().items() if op.cle == cle and op.cle_extension == extension}
    assert role("weighted", False) == {"conv1d", "conv2d", "conv_transpose2d"}
    assert role("weighted", True) == {"linear"}
    assert role("transparent", False) == {"relu", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
                                          "adaptive_avg_pool1d", "adaptive_avg_pool2d"}
    assert role("transparent", True) == {"leaky_relu", "adaptive_max_pool1d", "adaptive_max_pool2d"}
    assert role("clip", False) == {"relu6"} and role("clip", True) == set()
    assert {n for n, op in all_ops().items() if op.folds_input_reorder} == {"linear"}
    assert {n: op.weight_axis for n, op in all_ops().items() if op.weight_axis is not None} == {
        "linear": 0, "conv1d": 0, "conv2d": 0, "conv_transpose2d": 1}
    assert {n for n, op in all_ops().items() if op.shape_only} == {
        "flatten", "reshape", "permute", "transpose", "unsqueeze", "chunk", "split"}
    assert {n for n, op in all_ops().items() if op.fused_activation} == {"relu", "relu6", "leaky_relu", "clamp"}
    assert {n for n, op in all_ops().items() if not op.quantizable} == {
        "gelu", "elu", "silu", "layer_norm", "group_norm", "instance_norm", "sum", "max"}
    assert {n for n, op in all_ops().items() if op.fusing_producer} == {
        "linear", "conv1d", "conv2d", "conv_transpose2d", "scale", "add"}
    for name in role("weighted", False) | role("weighted", True):  # a CLE side has a weight axis
        assert get_op(name).weight_axis is not None and "weight" in get_op(name).params


def test_reference_nndct_op_names():
    """The reference's nndct op types (vai_q_pytorch NNDCT_OP) that node names are built from."""
    assert {n: op.nndct_op for n, op in all_ops().items()} == {
        "input": "nndct_input", "linear": "nndct_dense", "conv1d": "nndct_conv1d",
        "conv2d": "nndct_conv2d", "conv_transpose2d": "nndct_conv_transpose_2d",
        "scale": "nndct_batch_norm", "relu": "nndct_relu", "relu6": "nndct_relu6",
        "leaky_relu": "nndct_leaky_relu", "sigmoid": "nndct_sigmoid", "tanh": "nndct_tanh",
        "hardswish": "nndct_hswish", "max_pool1d": "nndct_maxpool1d", "max_pool2d": "nndct_maxpool",
        "avg_pool1d": "aten::avg_pool1d", "avg_pool2d": "nndct_avgpool",
        "adaptive_avg_pool1d": "aten::adaptive_avg_pool1d",
        "adaptive_avg_pool2d": "nndct_adaptive_avg_pool2d",
        "adaptive_max_pool1d": "aten::adaptive_max_pool1d",
        "adaptive_max_pool2d": "aten::adaptive_max_pool2d", "add": "nndct_elemwise_add",
        "sub": "nndct_elementwise_sub", "mul": "nndct_elemwise_mul", "concat": "nndct_concat",
        "flatten": "nndct_flatten", "reshape": "nndct_reshape", "mean": "nndct_mean",
        "softmax": "nndct_softmax", "custom": "",
        # issue 17's ops: the reference's NNDCT_OP types; ELU and SiLU have none there, and the
        # reference names ops it does not know by their aten:: type
        "clamp": "nndct_clamp", "prelu": "nndct_prelu", "hardsigmoid": "nndct_hsigmoid",
        "gelu": "nndct_GELU", "elu": "aten::elu", "silu": "aten::silu", "layer_norm": "nndct_layer_norm",
        "group_norm": "nndct_group_norm", "instance_norm": "nndct_instance_norm", "sum": "nndct_sum",
        "max": "nndct_max", "permute": "nndct_permute", "transpose": "nndct_transpose",
        "unsqueeze": "nndct_unsqueeze", "chunk": "nndct_chunk", "split": "nndct_split", "pad": "nndct_pad",
        "resize": "nndct_resize", "matmul": "nndct_matmul"}


def test_each_xir_type_has_exactly_one_owner():
    owned = [t for op in all_ops().values() for t in op.xir_types]
    assert len(owned) == len(set(owned)) == len(XIR_OWNERS)
    assert xir_owner("maxpool2d") is get_op("max_pool2d")      # adaptive_max_pool2d writes it too
    assert xir_owner("mul") is get_op("mul")                   # avg pools' dpu_scale mul too
    assert xir_owner("min") is get_op("relu6")                 # a ReLU6 with CLE's clip levels
    assert xir_owner("const") is None and xir_owner("fix") is None


def test_register_refuses_a_second_entry_an_unknown_attribute_and_a_second_owner():
    all_ops()
    before, owners = dict(REGISTRY), dict(XIR_OWNERS)
    with pytest.raises(ValueError, match="op 'relu' is registered twice"):
        register("relu")(type("Relu2", (OpDef,), {}))
    with pytest.raises(TypeError, match="'colour' is not a declared attribute"):
        register("paint", colour="red")(type("Paint", (OpDef,), {}))
    with pytest.raises(ValueError, match="XIR op type 'hard-swish' is evaluated by both"):
        register("hswish2", xir_types=("hswish2", "hard-swish"))(type("Hswish2", (OpDef,), {}))
    assert REGISTRY == before and XIR_OWNERS == owners


def test_a_lookup_while_the_entries_load_is_refused(monkeypatch):
    monkeypatch.setitem(ops._state, "loaded", False)
    monkeypatch.setitem(ops._state, "loading", True)
    with pytest.raises(RuntimeError, match="looked up while its entries were being imported"):
        find_op("relu")

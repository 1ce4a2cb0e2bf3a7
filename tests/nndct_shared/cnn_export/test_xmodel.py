"""The xmodel of real quantized CNN graphs: round trip, structure, and — the proof that layouts,
weight conversions, transposes and fix placement are right — the written file evaluated op by op
in NumPy equals the reference executor exactly on real images."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from nndct_shared.cnn_export import (build_cnn_xgraph, evaluate_xmodel, run_reference,
                                     write_cnn_xmodel)
from nndct_shared.cnn_export.flatten_fold import torch_value
from nndct_shared.cnn_export.layout import from_xir
from nndct_shared.graph import Graph, Tensor, to_op_name
from nndct_shared.messages import ExportError, UnsupportedOpError
from nndct_shared.xmodel import read_xmodel, xgraph_to_bytes


def _value_op(node) -> str:
    return to_op_name(node.name) + ("_fix" if node.attrs.get("fix") else "")


@pytest.mark.parametrize("net", ["lenet", "mixed", "conv1d"])
def test_written_xmodel_computes_the_reference_exactly(nets, net_inputs, net, tmp_path) -> None:
    graph = nets[net]
    path = write_cnn_xmodel(graph, tmp_path / f"{graph.name}_int.xmodel")
    checked = 0
    for image in net_inputs[net][:6]:
        x = image[None]
        ref = run_reference(graph, {"input_0": x})
        got = evaluate_xmodel(path, {"input_0": x})
        for node in graph.nodes:
            value = torch_value(graph, node, got[_value_op(node)])
            np.testing.assert_array_equal(value, ref[node.outputs[0]], err_msg=node.name)
            checked += 1
    assert checked == 6 * len(graph)


@pytest.mark.parametrize("net", ["lenet", "mixed", "conv1d"])
def test_round_trip_is_byte_identical(nets, net, tmp_path) -> None:
    path = write_cnn_xmodel(nets[net], tmp_path / "m.xmodel")
    data = path.read_bytes()
    assert data[:1] == b"\x0a"
    assert xgraph_to_bytes(read_xmodel(path)) == data
    assert xgraph_to_bytes(build_cnn_xgraph(nets[net])) == data


def test_lenet_structure(lenet_graph) -> None:
    x = build_cnn_xgraph(lenet_graph)
    conv = lenet_graph.nodes[1]
    op = x.op(to_op_name(conv.name))
    assert op.type == "conv2d" and op.shape == [1, 8, 8, 6]
    assert op.inputs == {"input": ["input_0_fix"], "weights": ["LeNet__conv_1_weight_fix"],
                         "bias": ["LeNet__conv_1_bias_fix"]}
    assert (op.attrs["kernel"], op.attrs["stride"], op.attrs["pad"], op.attrs["pad_mode"]) == (
        [3, 3], [1, 1], [1, 1, 1, 1], "FLOOR")
    # the reference 3.x attribute set
    assert (op.attrs["in_dim"], op.attrs["out_dim"], op.attrs["group"], op.attrs["bias_term"]) == (
        1, 6, 1, True)
    assert [op.attrs.kind(a) for a in ("in_dim", "out_dim", "group", "bias_term")] == [
        "int32", "int32", "int32", "bool"]
    w = conv.params["weight"]
    const = x.op("LeNet__conv_1_weight")
    np.testing.assert_array_equal(const.const_array(), w.data.transpose(0, 2, 3, 1))  # OHWI
    fix = x.op("LeNet__conv_1_weight_fix")
    assert (fix.attrs["bit_width"], fix.attrs["fix_point"], fix.attrs["round_mode"],
            fix.attrs["if_signed"]) == (8, w.attrs["fix"][1], "DPU_ROUND", True)
    # avgpool = avgpool2d `_i0` * const `_i1` (the dpu_scale) as mul named after the node
    avg = next(n for n in lenet_graph.nodes if n.op_type == "avg_pool2d")
    name = to_op_name(avg.name)
    assert x.op(f"{name}_i0").type == "avgpool2d"
    assert x.op(f"{name}_i1").const_array().tolist() == [np.float32(63 / 64)]
    assert x.op(name).type == "mul" and x.op(name).inputs["input"] == [f"{name}_i0",
                                                                          f"{name}_i1"]
    assert x.op(f"{name}_i0").attrs["pad_mode"] == "CEIL"
    # the flatten before fc1 is one reshape of the NHWC map (the reference 3.x): no transpose;
    # fc1's weight columns are permuted to the NHWC order instead
    flat = next(n for n in lenet_graph.nodes if n.op_type == "flatten")
    assert not x.ops_of_type("transpose") and not x.ops_of_type("flatten")
    reshape = x.op(to_op_name(flat.name))
    assert reshape.type == "reshape" and reshape.inputs["input"] == [f"{name}_fix"]
    assert reshape.shape == [1, 128] and x.op(reshape.inputs["shape"][0]).output.attrs["shape_info"] == [1, 128]
    fc = x.op("LeNet__fc1")
    assert fc.type == "matmul" and fc.attrs["transpose_b"] is True
    assert fc.attrs["transpose_a"] is False
    weight = next(n for n in lenet_graph.nodes if n.op_type == "linear").params["weight"].data
    columns = np.arange(128).reshape(8, 4, 4).transpose(1, 2, 0).reshape(-1)  # (h, w, c) -> c*16+h*4+w
    np.testing.assert_array_equal(x.op("LeNet__fc1_weight").const_array(), weight[:, columns])
    assert x.return_ops == [_value_op(lenet_graph.nodes[-1])]
    assert x.op(x.return_ops[0]).type == "fix"


def test_mixed_structure(mixed_graph) -> None:
    x = build_cnn_xgraph(mixed_graph)
    counts = x.op_type_counts()
    assert counts["depthwise-conv2d"] == 1 and counts["transposed-conv2d"] == 1
    dw = x.ops_of_type("depthwise-conv2d")[0]
    assert x.op(dw.inputs["weights"][0]).shape == [2, 3, 3, 4]  # [multiplier, kh, kw, C]
    grouped = next(op for op in x.ops_of_type("conv2d") if op.attrs["group"] != 1)
    assert grouped.attrs["group"] == 2 and x.op(grouped.inputs["weights"][0]).shape == [8, 1, 1, 4]
    up = x.ops_of_type("transposed-conv2d")[0]
    assert up.attrs["pad"] == [1, 0, 1, 0] and up.shape == [1, 8, 8, 4]
    node = next(n for n in mixed_graph.nodes if n.op_type == "conv_transpose2d")
    assert up.inputs["weights"] == ["Mixed__up_weight_fix"]
    np.testing.assert_array_equal(x.op("Mixed__up_weight").const_array(),
                                  node.params["weight"].data[:, :, ::-1, ::-1]
                                  .transpose(1, 2, 3, 0))
    concat = x.ops_of_type("concat")[0]
    assert concat.attrs["axis"] == 3  # torch channel axis 1 -> NHWC 3
    reshape = x.ops_of_type("reshape")[0]
    stack = x.op(reshape.inputs["shape"][0])
    assert stack.type == "stack" and stack.output.attrs["shape_info"] == [1, 4, 2, 4]
    assert [x.op(c).const_array().tolist() for c in stack.inputs["input"]] == [[1], [4], [2], [4]]
    assert reshape.name.endswith("_i0") and reshape.shape == [1, 4, 2, 4]  # torch layout
    sink = x.op(reshape.name.removesuffix("_i0"))
    assert sink.type == "transpose" and sink.attrs["order"] == [0, 2, 3, 1]  # back to NHWC
    assert x.ops_of_type("scale")[0].attrs["axis"] == -1
    sub = x.ops_of_type("sub")[0]
    assert x.op(sub.inputs["input"][0]).shape == [1, 1, 1, 8]  # (8,1,1) operand in NHWC


def test_input_fix_adds_pre_fix_ops(lenet_graph) -> None:
    graph = copy.deepcopy(lenet_graph)
    relu = next(n for n in graph.nodes if n.op_type == "relu")
    relu.attrs["input_fix"] = {0: (8, 3)}
    x = build_cnn_xgraph(graph)
    pre = x.op(f"{to_op_name(relu.name)}_pre_fix_i0")
    assert pre.type == "fix" and pre.attrs["fix_point"] == 3
    assert x.op(to_op_name(relu.name)).inputs["input"] == [pre.name]


def test_batch_size_must_be_one(lenet_graph) -> None:
    graph = copy.deepcopy(lenet_graph)
    graph.tensors["input_0"] = Tensor("input_0", (4, 1, 8, 8))
    with pytest.raises(ExportError, match="XMODEL_BATCHSIZE.*batch size 4"):
        build_cnn_xgraph(graph)


def _tiny(op: str, attrs: dict, params: dict | None = None, in_shape=(1, 2, 6),
          out_shape=(1, 2, 6)) -> Graph:
    g = Graph("Tiny")
    g.add("x", "input", shape=in_shape)
    g.add("y", op, ["x"], attrs=attrs, params=params or {}, shape=out_shape)
    return g


def test_grouped_conv1d_is_unsupported() -> None:
    g = _tiny("conv1d", dict(kernel=(1,), stride=(1,), padding=(0,), dilation=(1,), groups=2),
              {"weight": Tensor("y.weight", data=np.ones((2, 1, 1), np.float32))})
    with pytest.raises(UnsupportedOpError, match="xmodel export cannot write node 'y' \\(conv1d\\)"):
        build_cnn_xgraph(g)


def test_custom_op_is_an_xir_custom_op(tmp_path) -> None:
    g = _tiny("custom", dict(op_name="my::clip_shift", low=-1.0, shift=2, flags=[1, 2]))
    g.nodes[-1].attrs["fix"] = (8, 5)

    def impl(xs, attrs):
        return np.clip(xs[0], attrs["low"], 1.0) * 2.0 ** -attrs["shift"]

    path = write_cnn_xmodel(g, tmp_path / "c.xmodel")
    x = read_xmodel(path)
    core = x.op("y_i0")
    assert core.type == "my::clip_shift" and core.inputs == {"input": ["x_t"]}
    assert core.op_def.annotation == "This operator is not defined by XIR."
    assert x.op_defs["my::clip_shift"].arg_names == ("input",)
    assert (core.attrs["shape"], core.attrs["data_type"]) == ([1, 2, 6], "FLOAT32")
    assert (core.attrs["low"], core.attrs["shift"], core.attrs["flags"]) == (-1.0, 2, [1, 2])
    assert core.attrs.kind("shift") == "int32" and core.attrs.kind("flags") == "int32_vec"
    data = np.random.default_rng(0).standard_normal((1, 2, 6)).astype(np.float32)
    ref = run_reference(g, {"x": data}, custom_ops={"my::clip_shift": impl})
    got = evaluate_xmodel(path, {"x": data}, custom_ops={
        "my::clip_shift": lambda xs, a: impl(xs, a)})
    np.testing.assert_array_equal(from_xir(got["y_fix"]), ref["y"])


def test_adaptive_max_pools_are_maxpools_and_compute_the_reference(adaptive_max_graphs, digits,
                                                                    tmp_path) -> None:
    graph = adaptive_max_graphs[4]
    path = write_cnn_xmodel(graph, tmp_path / "amax.xmodel")
    x = read_xmodel(path)
    p2, p1 = (x.op(to_op_name(f"AMax::{op}")) for op in ("adaptive_max_pool2d_2",
                                                           "adaptive_max_pool1d_4"))
    assert (p2.type, p2.attrs["kernel"], p2.attrs["stride"], p2.attrs["pad"]) == (
        "maxpool2d", [2, 2], [2, 2], [0, 0, 0, 0])
    assert (p1.type, p1.attrs["kernel"], p1.attrs["stride"]) == ("maxpool1d", [2], [2])
    assert not x.ops_of_type("mul")                   # no dpu_scale on max pooling
    for image in digits[300:306, :, :4, :4]:
        ref = run_reference(graph, {"input_0": image[None]})
        got = evaluate_xmodel(path, {"input_0": image[None]})
        for node in graph.nodes:
            np.testing.assert_array_equal(from_xir(got[_value_op(node)]), ref[node.outputs[0]],
                                          err_msg=node.name)


def test_non_divisible_adaptive_max_pool_is_unsupported(adaptive_max_graphs) -> None:
    graph = adaptive_max_graphs[5]
    with pytest.raises(UnsupportedOpError, match="xmodel export cannot write node "
                       "'AMax::adaptive_max_pool2d_2' \\(adaptive_max_pool2d\\).*"
                       "adaptive max pool from \\[5, 5\\] to \\[2, 2\\]") as info:
        build_cnn_xgraph(graph)
    assert info.value.msg_id == "QUANTIZER_TORCH_EXPORT_UNSUPPORTED"


def _clipped(lenet_graph):
    """The LeNet with per-channel ReLU6 clip levels, as cross-layer equalization sets them."""
    import copy

    graph = copy.deepcopy(lenet_graph)
    relu6 = next(n for n in graph.nodes if n.op_type == "relu6")
    relu6.attrs["clip"] = tuple(float(v) for v in np.float32(6.0) / np.linspace(10.0, 40.0, 8, dtype=np.float32))
    return graph, relu6


def test_relu6_with_clip_levels_is_min_of_relu_and_the_levels(lenet_graph, net_inputs, tmp_path) -> None:
    graph, relu6 = _clipped(lenet_graph)
    path = write_cnn_xmodel(graph, tmp_path / "clipped.xmodel")
    x = read_xmodel(path)
    name = to_op_name(relu6.name)
    assert not x.ops_of_type("relu6")
    assert x.op(f"{name}_i0").type == "relu" and x.op(name).type == "min"
    assert x.op(name).inputs["input"] == [f"{name}_i0", f"{name}_i1"]
    np.testing.assert_array_equal(x.op(f"{name}_i1").const_array(), np.asarray(relu6.attrs["clip"], np.float32))
    for image in net_inputs["lenet"][:4]:
        ref = run_reference(graph, {"input_0": image[None]})
        got = evaluate_xmodel(path, {"input_0": image[None]})
        for node in graph.nodes:
            np.testing.assert_array_equal(torch_value(graph, node, got[_value_op(node)]), ref[node.outputs[0]],
                                          err_msg=node.name)
    # the clip changes the values (levels 0.15 .. 0.6)
    plain = run_reference(lenet_graph, {"input_0": net_inputs["lenet"][:4]})[relu6.outputs[0]]
    clipped = run_reference(graph, {"input_0": net_inputs["lenet"][:4]})[relu6.outputs[0]]
    assert not np.array_equal(plain, clipped)

"""The ops added for users' models (resize, pad, permute / transpose, unsqueeze, chunk / split,
clamp, prelu, hardsigmoid, matmul, and the float ops GELU, ELU, SiLU, the norms, sum, max):
their reference semantics against torch, their xmodel form and its evaluation against the
reference on real images, their ONNX form in onnxruntime, and their deploy-check dumps."""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared.cnn_export import build_cnn_xgraph, evaluate_xmodel, run_reference, write_cnn_xmodel
from nndct_shared.cnn_export.deploy_dump import write_cnn_deploy_check
from nndct_shared.cnn_export.layout import from_xir, to_xir
from nndct_shared.graph import Graph, Tensor, to_op_name
from nndct_shared.graph.ops import get_op
from nndct_shared.graph.ops.dpu_activations import clamp, hardsigmoid, prelu
from nndct_shared.graph.ops.float_ops import elu, gelu, group_norm, instance_norm, layer_norm, silu
from nndct_shared.graph.ops.movement import pad_array, resize, xir_order
from nndct_shared.xmodel import read_xmodel, xgraph_to_bytes

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _grid(rng, shape, fp=4, bw=8):
    """Fixed-point values (the data these ops see in a quantized model)."""
    return (rng.integers(-(2 ** (bw - 1)), 2 ** (bw - 1), size=shape) * 2.0 ** -fp).astype(np.float32)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _value_op(node) -> str:
    return to_op_name(node.name) + ("_fix" if node.attrs.get("fix") else "")


# --- reference semantics = torch ------------------------------------------------------------------


@pytest.mark.parametrize("size,scale,mode,align,exact", [
    ((16, 12), None, "nearest", False, True), (None, (2.0, 3.0), "nearest", False, True),
    ((11, 13), None, "nearest", False, True), (None, (1.5, 2.5), "nearest", False, True),
    (None, (2.0, 2.0), "bilinear", False, True), ((32, 24), None, "bilinear", False, True),
    ((16, 12), None, "bilinear", True, False), ((11, 13), None, "bilinear", False, False),
    (None, (1.5, 1.75), "bilinear", False, False)])
def test_resize_is_torch_interpolate(size, scale, mode, align, exact) -> None:
    """Nearest picks torch's float32 source indices, so it is exact for any size; bilinear
    uses torch's float32 weights and is exact where they and the weighted sums of fixed-point
    values are exact in float32 (factors 2 and 4 without align_corners), else within float32
    rounding of torch (whose summation order is its own)."""
    x = _grid(np.random.default_rng(1), (2, 3, 8, 6))
    kwargs = {"size": size} if scale is None else {"scale_factor": scale}
    want = F.interpolate(_t(x), mode=mode, align_corners=align if mode == "bilinear" else None, **kwargs)
    got = resize(x, tuple(want.shape[2:]), mode, align, scale)
    if exact:
        np.testing.assert_array_equal(got, want.numpy())
    else:
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=4e-6)


@pytest.mark.parametrize("mode,value", [("constant", 0.0), ("constant", -0.375), ("reflect", 0.0),
                                        ("replicate", 0.0)])
def test_pad_is_torch_pad(mode, value) -> None:
    x = _grid(np.random.default_rng(2), (2, 3, 5, 6))
    pairs = [(0, 0), (0, 0), (1, 2), (3, 0)]
    want = F.pad(_t(x), (3, 0, 1, 2), mode, value) if mode == "constant" else F.pad(_t(x), (3, 0, 1, 2), mode)
    np.testing.assert_array_equal(pad_array(x, pairs, mode, value), want.numpy())


def test_elementwise_ops_are_torch_exactly() -> None:
    rng = np.random.default_rng(3)
    x = _grid(rng, (2, 5, 4, 4))
    w = _grid(rng, (5,), 6)
    for low, high in ((0.0, 6.0), (None, 1.5), (-1.0, None), (-0.5, 0.75)):
        np.testing.assert_array_equal(clamp(x, low, high), torch.clamp(_t(x), low, high).numpy())
    np.testing.assert_array_equal(prelu(x, w, 1), F.prelu(_t(x), _t(w)).numpy())
    np.testing.assert_array_equal(prelu(x, w[:1], 1), F.prelu(_t(x), _t(w[:1])).numpy())
    np.testing.assert_array_equal(hardsigmoid(x), F.hardsigmoid(_t(x)).numpy())
    a, b = _grid(rng, (2, 3, 4, 7)), _grid(rng, (2, 3, 7, 5))
    np.testing.assert_array_equal(get_op("matmul").fn(a.astype(np.float64), b).astype(np.float32),
                                  torch.matmul(_t(a), _t(b)).numpy())


def test_float_ops_are_torch_within_float32_rounding() -> None:
    """Float64 inside, float32 out: equal to torch's float32 computation within a few ulps."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 6, 5, 4)) * 2).astype(np.float32)
    w, c = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    tx = _t(x)
    pairs = [
        (gelu(x, "none"), F.gelu(tx)), (gelu(x, "tanh"), F.gelu(tx, approximate="tanh")),
        (elu(x, 0.7), F.elu(tx, 0.7)), (silu(x), F.silu(tx)),
        (layer_norm(x, 2, 1e-5, None, None), F.layer_norm(tx, (5, 4))),
        (group_norm(x, 3, 1e-5, w, c), F.group_norm(tx, 3, _t(w), _t(c))),
        (instance_norm(x, 1e-3, w, c), F.instance_norm(tx, weight=_t(w), bias=_t(c), eps=1e-3)),
        (get_op("sum")._apply(x, (1, 3), False), torch.sum(tx, (1, 3))),
        (get_op("max")._apply(x, (2,), True), torch.amax(tx, 2, keepdim=True)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(got, want.numpy(), rtol=2e-6, atol=2e-6)
        assert got.dtype == np.float32


@pytest.mark.parametrize("dims", [(0, 2, 3, 1), (0, 3, 1, 2), (0, 1, 3, 2), (0, 2, 1), (1, 0)])
def test_permute_xir_order_moves_xir_layouts(dims) -> None:
    """The one XIR transpose of a permute maps the input's XIR layout to the output's."""
    shape = (2, 3, 4, 5)[:len(dims)]
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = np.transpose(x, dims)
    np.testing.assert_array_equal(np.transpose(to_xir(x), xir_order(dims)), to_xir(out))


# --- the coverage net: xmodel, ONNX, dumps -------------------------------------------------------


def test_every_added_op_is_in_the_coverage_net(coverage_graph) -> None:
    added = {"resize", "pad", "permute", "transpose", "unsqueeze", "chunk", "split", "clamp", "prelu",
             "hardsigmoid", "matmul", "gelu", "elu", "silu", "layer_norm", "group_norm", "instance_norm",
             "sum", "max"}
    assert added <= {n.op_type for n in coverage_graph.nodes}
    floats = {n.op_type for n in coverage_graph.nodes if not get_op(n.op_type).quantizable}
    assert floats == {"gelu", "elu", "silu", "layer_norm", "group_norm", "instance_norm", "sum", "max"}


def test_coverage_xmodel_computes_the_reference_exactly(coverage_graph, net_inputs, tmp_path) -> None:
    path = write_cnn_xmodel(coverage_graph, tmp_path / "Cover_int.xmodel")
    assert xgraph_to_bytes(read_xmodel(path)) == path.read_bytes()
    for image in net_inputs["coverage"][:6]:
        x = image[None]
        ref = run_reference(coverage_graph, {"input_0": x})
        got = evaluate_xmodel(path, {"input_0": x})
        for node in coverage_graph.nodes:
            np.testing.assert_array_equal(from_xir(got[_value_op(node)]), ref[node.outputs[0]],
                                          err_msg=node.name)


def _nodes(graph: Graph, op_type: str):
    return [n for n in graph.topological_order() if n.op_type == op_type]


def test_coverage_xmodel_structure(coverage_graph) -> None:
    g = coverage_graph
    x = build_cnn_xgraph(g)
    op = lambda node: x.op(to_op_name(node.name))          # noqa: E731
    relu6, general = _nodes(g, "clamp")
    assert op(relu6).type == "relu6" and op(general).type == "clamp"
    assert op(general).attrs["max"] == 1.5 and "min" not in op(general).attrs
    hs = _nodes(g, "hardsigmoid")[0]
    name = to_op_name(hs.name)
    assert x.op(f"{name}_i0").type == "hard-sigmoid" and op(hs).type == "mul"
    assert x.op(f"{name}_i1").const_array().tolist() == [1.0]
    near, bil, corner = _nodes(g, "resize")
    assert (op(near).attrs["mode"], op(near).attrs["scale"], op(near).inputs.get("size")) == ("NEAREST", [2.0, 2.0], None)
    assert op(bil).attrs["half_pixel_centers"] and not op(bil).attrs["align_corners"]
    stack = x.op(op(bil).inputs["size"][0])
    assert stack.type == "stack" and stack.output.attrs["shape_info"] == [16, 16]
    assert op(corner).attrs["align_corners"] and not op(corner).attrs["half_pixel_centers"]
    constant, reflect = _nodes(g, "pad")
    assert op(constant).attrs["paddings"] == [0, 0, 1, 1, 1, 1, 0, 0]     # NHWC pairs
    assert (op(reflect).attrs["mode"], op(reflect).attrs["paddings"]) == ("REFLECT", [0, 0, 0, 2, 2, 0, 0, 0])
    assert op(_nodes(g, "permute")[0]).type == "transpose"
    first, second = _nodes(g, "chunk")
    assert op(second).type == "strided_slice" and op(second).attrs["begin"] == [0, 0, 0, 2]
    gn = op(_nodes(g, "group_norm")[0])
    core = x.op(gn.inputs["input"][0])                      # <op>_i0 in torch layout
    assert core.type == "groupnorm" and core.attrs["num_groups"] == 2 and core.attrs["has_bias"]
    weight = x.op(core.inputs["input"][1])
    assert weight.type == "const" and not x.consumers(weight.name)[0].type == "fix"   # float param
    assert {o.type for o in x.ops} >= {"gelu", "elu", "swish", "layernorm", "instancenorm",
                                       "reduction_sum", "reduction_max", "prelu", "matmul"}


def test_coverage_onnx_in_onnxruntime_matches_the_reference(coverage_graph, net_inputs) -> None:
    """Default session options. Against the reference run with ONNX's tie rounding (half even):
    only the float ops differ (float32 in onnxruntime, a few ulps), which the fixes after them
    can turn into a step here and there, so almost every output is equal and none is more than
    two steps away."""
    ort = pytest.importorskip("onnxruntime")
    from nndct_shared.cnn_export import build_onnx_model

    model = build_onnx_model(coverage_graph)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = coverage_graph.outputs[0]
    step = 2.0 ** -out.attrs["fix"][1]
    x = net_inputs["coverage"]
    got = np.concatenate([session.run(None, {"input_0": image[None]})[0] for image in x])
    want = run_reference(coverage_graph, {"input_0": x}, round_method="half_even")[out.outputs[0]]
    fraction = float(np.mean(got == want))
    print(f"coverage net: {fraction:.4f} of {want.size} ONNX outputs equal the half-even reference")
    assert np.max(np.abs(got - want)) <= 2 * step
    assert fraction > 0.9


def test_coverage_deploy_check_dumps(coverage_graph, net_inputs, tmp_path) -> None:
    """Float ops are dumped as values only (no `_fix.bin`), float params likewise."""
    values = run_reference(coverage_graph, {"input_0": net_inputs["coverage"][:1]})
    out = write_cnn_deploy_check(coverage_graph, values, tmp_path)
    for node in coverage_graph.nodes:
        stem = to_op_name(node.name)
        assert (out / f"{stem}.bin").read_bytes() == to_xir(values[node.outputs[0]]).astype("<f4").tobytes()
        assert (out / f"{stem}_fix.bin").exists() == bool(node.attrs.get("fix"))
        for tensor in node.params.values():
            assert (out / f"{to_op_name(tensor.name)}_fix.bin").exists() == ("fix" in tensor.attrs)


# --- contracts -------------------------------------------------------------------------------------


def _one(op: str, shape, attrs, out_shape, params=None) -> Graph:
    g = Graph("C")
    g.add("input_0", "input", shape=shape)
    g.add("C::n", op, ["input_0"], attrs=attrs, params=params or {}, shape=out_shape)
    return g


@pytest.mark.parametrize("op,shape,attrs,out,problem", [
    ("permute", (1, 2, 3), {"dims": (0, 2, 2)}, (1, 3, 2), "permutation"),
    ("chunk", (1, 4, 3), {"dim": 1, "start": 2, "end": 5}, (1, 2, 3), "non-empty range"),
    ("pad", (1, 2, 3), {"pads": ((0, 0), (0, 0), (1, -1)), "mode": "constant", "value": 0.0}, (1, 2, 3),
     "before, after"),
    ("pad", (1, 2, 3), {"pads": ((0, 0), (0, 0), (1, 1)), "mode": "circular", "value": 0.0}, (1, 2, 5), "mode"),
    ("resize", (1, 2, 3, 3), {"mode": "bicubic", "align_corners": False}, (1, 2, 6, 6), "mode"),
    ("clamp", (1, 3), {"min": None, "max": None}, (1, 3), "needs 'min' or 'max'"),
    ("group_norm", (1, 6, 2), {"num_groups": 4, "eps": 1e-5}, (1, 6, 2), "does not divide"),
    ("layer_norm", (1, 6, 2), {"normalized_shape": (6,), "eps": 1e-5}, (1, 6, 2), "trailing dims"),
])
def test_bad_attrs_are_named(op, shape, attrs, out, problem) -> None:
    from nndct_shared.cnn_export import validate_cnn_graph
    from nndct_shared.messages import NndctError

    with pytest.raises(NndctError, match="CNN_GRAPH_INVALID") as info:
        validate_cnn_graph(_one(op, shape, attrs, out))
    assert problem in str(info.value)


def test_prelu_slopes_must_be_one_or_per_channel() -> None:
    from nndct_shared.cnn_export import validate_cnn_graph
    from nndct_shared.messages import NndctError

    params = {"weight": Tensor("w", data=np.ones(3, np.float32))}
    with pytest.raises(NndctError, match=r"weight shape \[3\] is not \[1\] or \[C=4\]"):
        validate_cnn_graph(_one("prelu", (1, 4, 2), {}, (1, 4, 2), params))

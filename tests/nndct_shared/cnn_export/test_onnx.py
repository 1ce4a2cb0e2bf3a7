"""ONNX QDQ export run in onnxruntime: equal to the reference executor run with ONNX's tie
rounding (half-even) everywhere, so every difference from the DPU-rounded reference comes from
ties; sub-8-bit and 16-bit activations; unsupported nodes are named."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from nndct_shared.cnn_export import build_onnx_model, run_reference, write_onnx
from nndct_shared.messages import UnsupportedOpError

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _run(model, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input_0": x})


def _check(graph, x: np.ndarray) -> float:
    """ORT == half-even reference exactly; returns the fraction equal to the DPU reference."""
    outs = _run(build_onnx_model(graph), x)
    even = run_reference(graph, {"input_0": x}, round_method="half_even")
    dpu = run_reference(graph, {"input_0": x})
    total = equal = 0
    for node, got in zip(graph.outputs, outs):
        np.testing.assert_array_equal(got, even[node.outputs[0]], err_msg=node.name)
        ref = dpu[node.outputs[0]]
        total, equal = total + ref.size, equal + int(np.sum(got == ref))
    return equal / total


@pytest.mark.parametrize("net", ["lenet", "mixed"])
def test_onnxruntime_matches_reference_up_to_tie_rounding(nets, net_inputs, net) -> None:
    fraction = _check(nets[net], net_inputs[net])
    print(f"{net}: {fraction:.4f} of outputs equal the DPU-rounded reference")
    assert 0.5 < fraction <= 1.0


def test_model_structure_and_file(lenet_graph, tmp_path) -> None:
    path = write_onnx(lenet_graph, tmp_path / "LeNet_int.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 21
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 2 and ops.count("Gemm") == 2 and "AveragePool" in ops
    inits = {i.name: i for i in model.graph.initializer}
    w = inits["LeNet::conv_1.weight_quantized"]
    assert w.data_type == onnx.TensorProto.INT8
    node = lenet_graph.nodes[1]
    fp = node.params["weight"].attrs["fix"][1]
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(w).astype(np.float32) * 2.0 ** -fp,
                                  node.params["weight"].data)
    scale = onnx.numpy_helper.to_array(inits[f"{node.name}_fix_scale"])
    assert scale == np.float32(2.0 ** -node.attrs["fix"][1])
    # 8-bit activations are stored as uint8 + 128 (onnxruntime's QDQ optimizations need it)
    zero = inits[f"{node.name}_fix_zero_point"]
    assert zero.data_type == onnx.TensorProto.UINT8 and onnx.numpy_helper.to_array(zero) == 128
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_narrow_and_wide_bit_widths(lenet_graph, net_inputs) -> None:
    graph = copy.deepcopy(lenet_graph)
    relu = next(n for n in graph.nodes if n.op_type == "relu")
    relu.attrs["fix"] = (4, relu.attrs["fix"][1] - 4)   # 4-bit codes in int8 storage
    conv = graph.nodes[1]
    conv.attrs["fix"] = (16, conv.attrs["fix"][1] + 8)  # int16
    x = net_inputs["lenet"]
    model = build_onnx_model(graph)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Clip") == 2  # relu6 and the 4-bit clamp
    zero = {i.name: i for i in model.graph.initializer}[f"{conv.name}_fix_zero_point"]
    assert zero.data_type == onnx.TensorProto.INT16
    _check(graph, x)
    codes = run_reference(graph, {"input_0": x})[relu.outputs[0]] * 2.0 ** relu.attrs["fix"][1]
    assert codes.max() == 7 and codes.min() == 0  # clamped to the 4-bit range


def test_unsupported_nodes_are_named(conv1d_graph) -> None:
    with pytest.raises(UnsupportedOpError, match="ONNX export cannot write node "
                       "'Seq::adaptive_avg_pool1d_5' \\(adaptive_avg_pool1d\\)"):
        build_onnx_model(conv1d_graph)


def test_adaptive_max_pools_as_maxpool(adaptive_max_graphs, digits) -> None:
    graph = adaptive_max_graphs[4]
    ops = [n.op_type for n in build_onnx_model(graph).graph.node]
    assert ops.count("MaxPool") == 2
    _check(graph, digits[300:332, :, :4, :4])
    with pytest.raises(UnsupportedOpError, match="'AMax::adaptive_max_pool2d_2' "
                       "\\(adaptive_max_pool2d\\)"):
        build_onnx_model(adaptive_max_graphs[5])


def test_relu6_with_clip_levels(lenet_graph, net_inputs) -> None:
    """A ReLU6 whose clip levels cross-layer equalization scaled: Min(Relu(x), levels)."""
    graph = copy.deepcopy(lenet_graph)
    relu6 = next(n for n in graph.nodes if n.op_type == "relu6")
    relu6.attrs["clip"] = tuple(float(v) for v in np.float32(6.0) / np.linspace(10.0, 40.0, 8, dtype=np.float32))
    ops = [n.op_type for n in build_onnx_model(graph).graph.node]
    assert "Clip" not in ops and "Min" in ops
    assert 0.5 < _check(graph, net_inputs["lenet"]) <= 1.0

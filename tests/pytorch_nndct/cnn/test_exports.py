"""Exports of the test-mode model: xmodel (+ deploy check), ONNX (onnxruntime), TorchScript."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nndct_shared.messages import ExportError
from quant_flow import by_traced, calibrate, ort_sessions, test_quantizer


@pytest.fixture(scope="module")
def cnn_test_quantizer(digits_cnn, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn_exports")
    calibrate(digits_cnn, digits[0][:200], out)
    quantizer = test_quantizer(digits_cnn, digits[2], out)
    return quantizer, out


def test_xmodel_needs_batch_size_one(cnn_test_quantizer, digits):
    quantizer, out = cnn_test_quantizer
    quantizer.quant_model(digits[2][:4])
    with pytest.raises(ExportError, match="XMODEL_BATCHSIZE"):
        quantizer.export_xmodel(str(out))


def test_xmodel_and_deploy_check(cnn_test_quantizer, digits):
    quantizer, out = cnn_test_quantizer
    quantizer.quant_model(digits[2][:1])
    path = quantizer.export_xmodel(str(out), deploy_check=True)
    assert path.name == "DigitsCNN_int.xmodel" and path.stat().st_size > 1000
    dump = out / "deploy_check_data_int" / "DigitsCNN"
    assert (dump / "shape.txt").is_file()
    fc_node = by_traced(quantizer)["DigitsCNN::DigitsCNN/Linear[fc]/fc"]
    assert fc_node == "DigitsCNN::nndct_dense_10"
    fc = quantizer.runtime.last_outputs[fc_node].numpy()
    written = np.fromfile(dump / "DigitsCNN__nndct_dense_10.bin", dtype=np.float32)
    assert np.array_equal(written, fc.reshape(-1))


def test_export_needs_test_mode(digits_mlp, digits, tmp_path):
    quantizer = calibrate(digits_mlp, digits[0][:100], tmp_path)
    with pytest.raises(ExportError, match="EXPORT_MODE"):
        quantizer.export_xmodel(str(tmp_path))


def test_torchscript_matches_quant_model(cnn_test_quantizer, digits):
    quantizer, out = cnn_test_quantizer
    x = digits[2][:1]
    expected = quantizer.quant_model(x)
    path = quantizer.export_torch_script(str(out))
    assert path.name == "DigitsCNN_int.pt"
    scripted = torch.jit.load(str(path))
    assert torch.equal(scripted(x), expected)
    batch = digits[2][:32]
    assert torch.equal(scripted(batch), quantizer.quant_model(batch))


@pytest.mark.parametrize("fixture, min_fraction, max_steps", [
    ("digits_mlp", 0.95, 1), ("residual_net", 0.7, 1), ("conv1d_net", 0.8, 1),
    # the CNN's conv sums hit exact ties often; a tie moves a code by one step and propagates
    # through the later layers (test_onnx_differences_in_first_layer_are_ties checks their origin)
    ("digits_cnn", 0.4, 4)])
def test_onnx_in_onnxruntime_matches_quant_model(fixture, min_fraction, max_steps, request, digits, tmp_path):
    """Every test model (pool -> flatten -> linear included) loads with default session options and
    at every optimization level, and every session computes the same outputs."""
    ort = pytest.importorskip("onnxruntime")
    model = request.getfixturevalue(fixture)
    calibrate(model, digits[0][:200], tmp_path)
    quantizer = test_quantizer(model, digits[2], tmp_path)
    quantizer.quant_model(digits[2][:1])
    path = quantizer.export_onnx_model(str(tmp_path))
    assert path.name == f"{type(model).__name__}_int.onnx"
    sessions = ort_sessions(ort, path)
    x = digits[2][:64]
    outputs = {}
    for name, session in sessions.items():
        feed = session.get_inputs()[0].name
        outputs[name] = np.concatenate([session.run(None, {feed: x[i:i + 16].numpy()})[0] for i in range(0, 64, 16)])
    got = outputs["default"]
    for name, out in outputs.items():
        assert np.array_equal(out, got), f"session {name} differs from the default session"
    want = quantizer.quant_model(x).numpy()
    step = 2.0 ** -quantizer.runtime.fix_pos[quantizer.graph.outputs[0].name]
    fraction = float(np.mean(got == want))
    print(f"ONNX vs quant_model ({fixture}): {fraction:.4f} of {want.size} outputs exactly equal")
    # ONNX rounds ties to even, the DPU toward +inf: a tie decided differently moves a value by
    # one step, and the difference can propagate; nothing else may differ
    assert np.max(np.abs(got - want)) <= max_steps * step
    assert fraction >= min_fraction


def test_onnx_differences_in_first_layer_are_ties(digits_cnn, digits, tmp_path):
    """In the CNN the conv sums are exact (codes times powers of two), so exact ties are common;
    ONNX rounds them to even, the DPU up. Every difference of the first fused conv+relu output
    must sit on such a tie (the later layers then differ by propagation)."""
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    calibrate(digits_cnn, digits[0][:200], tmp_path)
    quantizer = test_quantizer(digits_cnn, digits[2], tmp_path)
    x = digits[2][:4]
    quantizer.quant_model(x[:1])
    path = quantizer.export_onnx_model(str(tmp_path))
    n = by_traced(quantizer)
    relu = n["DigitsCNN::DigitsCNN/relu"]
    model = onnx.load(str(path))
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(f"{relu}_fix_dq"))
    session = ort.InferenceSession(model.SerializeToString())  # default session options
    graph = quantizer.export_graph()
    conv = graph.node(n["DigitsCNN::DigitsCNN/Conv2d[conv1]/conv1"])
    fp = quantizer.runtime.fix_pos[relu]
    ties = differences = 0
    for i in range(4):
        xi = x[i:i + 1]
        got = session.run([f"{relu}_fix_dq"], {session.get_inputs()[0].name: xi.numpy()})[0]
        quantizer.quant_model(xi)
        want = quantizer.runtime.last_outputs[relu].numpy()
        xq = quantizer.runtime.last_outputs[n["DigitsCNN::input_0"]]
        pre = torch.relu(F.conv2d(xq, torch.from_numpy(conv.params["weight"].data),
                                  torch.from_numpy(conv.params["bias"].data), padding=1)).double() * 2.0 ** fp
        tie = (pre - pre.floor()) == 0.5
        diff = got != want
        assert not np.any(diff & ~tie.numpy()), "a difference where no tie is"
        ties += int(tie.sum())
        differences += int(diff.sum())
    print(f"first layer: {differences} differences, all on {ties} exact ties")
    assert differences > 0

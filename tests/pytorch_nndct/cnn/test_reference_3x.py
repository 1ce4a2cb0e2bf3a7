"""The CNN flow reproduces vai_q_pytorch 3.x (issue 15): its fix positions, names and files.

An MLP and the spec's LeNet, trained on digits, are calibrated with the default config and with
the guide's settings written out as a config file; both must give the fix positions of a
re-statement of the reference's rules written here in NumPy (CLE: tests/helpers/reference_cle.py;
diffs calibration and fix neuron: tests/nndct_shared/kernels/kernel_reference.py; bias
correction: below), sharing no code with the package. Layer arithmetic (conv, linear, pooling)
is torch's float32 functional ops, so that both sides see the same activations; every rule is
NumPy. Then a quant_info.json and bias_corr.pth written as the reference writes them for this
LeNet load unchanged in test mode and give the xmodel their fix positions and bias codes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from helpers import reference_cle as R
from nndct_shared.cnn_export import evaluate_xmodel
from nndct_shared.cnn_export.flatten_fold import torch_value
from nndct_shared.graph import to_op_name
from nndct_shared.messages import QuantInfoError
from nndct_shared.quant_info_v3 import TOOL_VERSION, read_record
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.optim.layer_data import run_with

sys.path.insert(0, str(Path(__file__).parents[2] / "nndct_shared" / "kernels"))
from kernel_reference import np_diffs_fix_pos, np_fix_neuron  # noqa: E402

CPU = torch.device("cpu")
BW, CAP = 8, 12
STD_ROUND, HALF_UP = 3, 2      # params and inputs / activations (the guide's DPU defaults)

#: The guide's default settings written out as a config file (activations half_up on the DPU).
REFERENCE_CONFIG = {
    "convert_relu6_to_relu": False, "include_cle": True, "include_bias_corr": True,
    "target_device": "DPU", "quantizable_data_type": ["input", "weights", "bias", "activation"],
    "overall_quantize_config": {
        "bit_width": 8, "method": "diffs", "round_mode": "std_round", "symmetry": True,
        "per_channel": False, "signed": True, "narrow_range": False, "scale_type": "poweroftwo",
        "calib_statistic_method": "modal"},
    "tensor_quantize_config": {"activation": {"round_mode": "half_up"}},
}


@pytest.fixture(scope="module")
def lenet(digits):
    torch.manual_seed(0)
    return models.train(models.LeNet(), digits[0], digits[1], epochs=15, seed=0)


@pytest.fixture(scope="module")
def mlp(digits):
    torch.manual_seed(0)
    flat = digits[0].reshape(len(digits[0]), -1)
    return models.train(models.PlainMLP(), flat, digits[1], epochs=15, seed=0)


# --- the reference's rules, re-stated ------------------------------------------------------------


def _fp(x: torch.Tensor | np.ndarray, search: int, method: int) -> int:
    return np_diffs_fix_pos(np.asarray(x, dtype=np.float32), BW, search, method, CAP)


def _q(x: torch.Tensor, fp: int, method: int) -> torch.Tensor:
    return torch.from_numpy(np_fix_neuron(x.numpy().astype(np.float32), BW, fp, method))


class Restated:
    """One calibration batch through the reference's flow: params by diffs (std round), each
    quantized output by diffs (half up, search 5), inputs by search range 1, every tensor
    fake-quantized as soon as its fix position is known; then bias correction layer by layer.

    `layers`, in graph order: (module path, "conv" / "linear" / "flatten", followed by a relu,
    followed by a 2x2 max pool, the node holding its output fix, the pool's node)."""

    def __init__(self, model_name: str, params: dict[str, np.ndarray], layers: list[tuple]) -> None:
        self.model, self.params, self.layers = model_name, params, layers
        self.fix: dict[str, int] = {}
        self.corrections: dict[str, np.ndarray] = {}

    def name(self, local: str) -> str:
        return f"{self.model}::{local}"

    def _param(self, path: str, role: str, values: dict[str, np.ndarray]) -> torch.Tensor:
        key = self.name(f"{path}.{role}")
        if key not in self.fix:
            self.fix[key] = _fp(values[key], 5, STD_ROUND)
        return _q(torch.from_numpy(values[key]), self.fix[key], STD_ROUND)

    def forward(self, x: torch.Tensor, values: dict[str, np.ndarray], quantized: bool, stop: str | None = None,
                calibrate: bool = False) -> torch.Tensor:
        """The model; with `quantized`, fake-quantized (calibrating fix positions on the way with
        `calibrate`). With `stop`, the output of that layer as its node computes it: before the
        relu it is fused into (no fix of its own), else with its own output fix."""
        if quantized:
            key = self.name("nndct_input_0")
            if calibrate:
                self.fix[key] = _fp(x, 1, STD_ROUND)
            x = _q(x, self.fix[key], STD_ROUND)
        for path, kind, relu, pool, out_node, pool_node in self.layers:
            if kind == "flatten":
                x = torch.flatten(x, 1)
                continue
            if quantized:
                w, b = self._param(path, "weight", values), self._param(path, "bias", values)
            else:
                w, b = (torch.from_numpy(values[self.name(f"{path}.{r}")]) for r in ("weight", "bias"))
            x = F.conv2d(x, w, b, padding=1) if kind == "conv" else F.linear(x, w, b)
            if path == stop and relu:
                return x
            if relu:
                x = F.relu(x)
            if quantized:
                key = self.name(out_node)
                if calibrate:
                    self.fix[key] = _fp(x, 5, HALF_UP)
                x = _q(x, self.fix[key], HALF_UP)
            if path == stop:
                return x
            if pool:
                x = F.max_pool2d(x, 2)
                if quantized:
                    key = self.name(pool_node)
                    if calibrate:
                        self.fix[key] = _fp(x, 5, HALF_UP)
                    x = _q(x, self.fix[key], HALF_UP)
        return x

    def calibrate(self, x: torch.Tensor) -> None:
        self.forward(x, self.params, quantized=True, calibrate=True)

    def correct_biases(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """For each layer in order: correction = per-channel mean of (its quantized output - its
        float output) over the samples, with the corrections made upstream; bias -= correction
        (in float64, stored float32); its fix position re-derived. Returns the corrections."""
        corrected = dict(self.params)
        corrections = {}
        for path, kind, *_ in self.layers:
            if kind == "flatten":
                continue
            y_float = self.forward(x, self.params, quantized=False, stop=path)
            y_quant = self.forward(x, corrected, quantized=True, stop=path)
            axes = (0, 2, 3) if kind == "conv" else (0,)
            err = (y_quant.numpy().astype(np.float64) - y_float.numpy().astype(np.float64)).mean(axis=axes)
            key = self.name(f"{path}.bias")
            corrected[key] = (corrected[key].astype(np.float64) - err).astype(np.float32)
            self.fix[key] = _fp(corrected[key], 5, STD_ROUND)
            corrections[path] = err
        return corrections


def _float_params(model: torch.nn.Module, name: str) -> dict[str, np.ndarray]:
    return {f"{name}::{k}": v.detach().numpy().astype(np.float32).copy() for k, v in model.state_dict().items()}


def _lenet_restated(model: torch.nn.Module, x: torch.Tensor) -> Restated:
    params = _float_params(model, "LeNet")
    convs = [{"weight": params[f"LeNet::conv{i}.weight"], "bias": params[f"LeNet::conv{i}.bias"]} for i in (1, 2)]
    R.equalize_chain(convs)                         # conv1 -relu-pool-> conv2: the one pair
    for i, layer in zip((1, 2), convs):
        params[f"LeNet::conv{i}.weight"], params[f"LeNet::conv{i}.bias"] = layer["weight"], layer["bias"]
    layers = [("conv1", "conv", True, True, "nndct_relu_2", "nndct_maxpool_3"),
              ("conv2", "conv", True, True, "nndct_relu_5", "nndct_maxpool_6"),
              ("flat", "flatten", False, False, None, None),
              ("fc1", "linear", True, False, "nndct_relu_9", None),
              ("fc2", "linear", True, False, "nndct_relu_11", None),
              ("fc3", "linear", False, False, "nndct_dense_12", None)]
    restated = Restated("LeNet", params, layers)
    restated.calibrate(x)
    restated.corrections = restated.correct_biases(x)
    return restated


def _mlp_restated(model: torch.nn.Module, x: torch.Tensor) -> Restated:
    layers = [("l1", "linear", True, False, "nndct_relu_2", None),
              ("l2", "linear", True, False, "nndct_relu_4", None),
              ("l3", "linear", False, False, "nndct_dense_5", None)]
    restated = Restated("PlainMLP", _float_params(model, "PlainMLP"), layers)  # no CLE: no conv
    restated.calibrate(x)
    restated.corrections = restated.correct_biases(x)
    return restated


# --- the flow ---------------------------------------------------------------------------------


def _calibrate(model, x, out: Path, config: dict | None) -> dict[str, int]:
    path = None
    if config is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "config.json"
        path.write_text(json.dumps(config))
    q = torch_quantizer("calib", model, x[:8], output_dir=str(out), device=CPU,
                        quant_config_file=None if path is None else str(path))
    with torch.no_grad():
        q.quant_model(x)                              # one calibration batch
    q.export_quant_config()
    record = read_record(out / "quant_info.json")
    assert record.layout == "3.x" and record.bias_corrected and record.version == TOOL_VERSION
    return {name: fp for table in (record.info.param, record.info.output) for name, (_, fp) in table.items()}


@pytest.mark.parametrize("which", ["mlp", "lenet"])
def test_default_and_reference_configs_give_the_restated_fix_positions(which, mlp, lenet, digits, tmp_path):
    x = digits[0][:256]
    model = lenet if which == "lenet" else mlp
    if which == "mlp":
        x = x.reshape(len(x), -1)
    restated = (_lenet_restated if which == "lenet" else _mlp_restated)(model, x)
    default = _calibrate(model, x, tmp_path / "default", None)
    explicit = _calibrate(model, x, tmp_path / "explicit", REFERENCE_CONFIG)
    assert default == restated.fix
    assert explicit == restated.fix
    assert len(restated.fix) == (10 if which == "mlp" else 18)  # 6 params + 4 outputs; 10 + 8
    if which == "mlp":  # linear layers are never equalized: CLE off changes nothing
        off = _calibrate(model, x, tmp_path / "off", dict(REFERENCE_CONFIG, include_cle=False))
        assert off == restated.fix
    # bias_corr.pth in the reference's layout: node name -> per-output-channel corrections
    saved = torch.load(tmp_path / "default" / "bias_corr.pth", weights_only=True)
    nodes = {"mlp": {"l1": "nndct_dense_1", "l2": "nndct_dense_3", "l3": "nndct_dense_5"},
             "lenet": {"conv1": "nndct_conv2d_1", "conv2": "nndct_conv2d_4", "fc1": "nndct_dense_8",
                       "fc2": "nndct_dense_10", "fc3": "nndct_dense_12"}}[which]
    model_name = restated.model
    assert list(saved) == [f"{model_name}::{n}" for n in nodes.values()]
    for path, node in nodes.items():
        assert isinstance(saved[f"{model_name}::{node}"], list)
        np.testing.assert_allclose(saved[f"{model_name}::{node}"], restated.corrections[path], rtol=1e-4,
                                   atol=1e-7)


def test_cle_extensions_equalize_the_mlp(mlp, digits, tmp_path):
    """The project's extensions (config key cle_extensions) pair the linear layers."""
    x = digits[0][:64].reshape(64, -1)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(dict(REFERENCE_CONFIG, cle_extensions=True)))
    q = torch_quantizer("calib", mlp, x, output_dir=str(tmp_path), device=CPU, quant_config_file=str(config))
    assert [(p.first, p.second) for p in q.post_training.cle_pairs] == [
        ("PlainMLP::nndct_dense_1", "PlainMLP::nndct_dense_3"), ("PlainMLP::nndct_dense_3", "PlainMLP::nndct_dense_5")]
    plain = torch_quantizer("calib", mlp, x, output_dir=str(tmp_path / "plain"), device=CPU)
    assert plain.post_training.cle_pairs == []


# --- a calibration result as the reference writes it --------------------------------------------

LENET_FIX = {   # [bit_width, fix] per entry, as vai_q_pytorch 3.5 writes them for this LeNet
    "param": {"LeNet::conv1.weight": 6, "LeNet::conv1.bias": 7, "LeNet::conv2.weight": 7,
              "LeNet::conv2.bias": 6, "LeNet::fc1.weight": 7, "LeNet::fc1.bias": 7,
              "LeNet::fc2.weight": 6, "LeNet::fc2.bias": 7, "LeNet::fc3.weight": 6, "LeNet::fc3.bias": 7},
    "output": {"LeNet::nndct_input_0": 7, "LeNet::nndct_relu_2": 5, "LeNet::nndct_maxpool_3": 5,
               "LeNet::nndct_relu_5": 4, "LeNet::nndct_maxpool_6": 4, "LeNet::nndct_relu_9": 4,
               "LeNet::nndct_relu_11": 4, "LeNet::nndct_dense_12": 3},
}


def _reference_files(out: Path, graph_md5: str = "5d2f6c1f0b8e0a9ad1a8f1e2b7c4d3e9") -> dict[str, list[float]]:
    """quant_info.json and bias_corr.pth laid out as the reference 3.5 writes them."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {section: {name: [[8, fp]] for name, fp in table.items()} for section, table in LENET_FIX.items()}
    doc.update({"input": {}, "fast_finetuned": False, "bias_corrected": True, "version": "3.5.0",
                "graph_md5": graph_md5})
    (out / "quant_info.json").write_text(json.dumps(doc, indent=2))
    rng = np.random.default_rng(3)
    corrections = {f"LeNet::{node}": [float(np.float32(v)) for v in rng.normal(0, 0.02, size)]
                   for node, size in (("nndct_conv2d_1", 6), ("nndct_conv2d_4", 16), ("nndct_dense_8", 32),
                                      ("nndct_dense_10", 16), ("nndct_dense_12", 10))}
    torch.save(corrections, out / "bias_corr.pth")
    return corrections


def test_a_reference_result_drives_our_xmodel(lenet, digits, tmp_path, caplog):
    out = tmp_path / "quantize_result"
    corrections = _reference_files(out)
    with caplog.at_level("WARNING"):
        q = torch_quantizer("test", lenet, digits[0][:1], output_dir=str(out), device=CPU)
    assert any("CALIB_VERSION_MISMATCH" in r.getMessage() and "'3.5.0'" in r.getMessage() for r in caplog.records)
    assert q.runtime.fix_pos == {**LENET_FIX["param"], **LENET_FIX["output"]}
    with torch.no_grad():
        q.quant_model(digits[2][:1])
    path = q.export_xmodel(output_dir=str(out), deploy_check=True)
    x = read_xmodel(path)
    # every fix op carries the file's position
    for name, fp in {**LENET_FIX["param"], **LENET_FIX["output"]}.items():
        op = x.op(name.replace("::", "__").replace(".", "_") + "_fix")
        assert (op.type, op.attrs["bit_width"], op.attrs["fix_point"]) == ("fix", 8, fp), name
    # the deployed biases: (equalized float bias - correction), quantized at the file's position
    params = _float_params(lenet, "LeNet")
    convs = [{"weight": params[f"LeNet::conv{i}.weight"], "bias": params[f"LeNet::conv{i}.bias"]} for i in (1, 2)]
    R.equalize_chain(convs)
    floats = {"conv1": convs[0]["bias"], "conv2": convs[1]["bias"], "fc1": params["LeNet::fc1.bias"],
              "fc2": params["LeNet::fc2.bias"], "fc3": params["LeNet::fc3.bias"]}
    nodes = {"conv1": "nndct_conv2d_1", "conv2": "nndct_conv2d_4", "fc1": "nndct_dense_8",
             "fc2": "nndct_dense_10", "fc3": "nndct_dense_12"}
    for layer, node in nodes.items():
        fp = LENET_FIX["param"][f"LeNet::{layer}.bias"]
        deployed = (floats[layer].astype(np.float64) - np.asarray(corrections[f"LeNet::{node}"])).astype(np.float32)
        want = np_fix_neuron(deployed, BW, fp, STD_ROUND)
        np.testing.assert_array_equal(x.op(f"LeNet__{layer}_bias").const_array(), want, err_msg=layer)
    # equalized conv weights quantized at the file's positions (conv2 OHWI)
    want = np_fix_neuron(convs[1]["weight"], BW, LENET_FIX["param"]["LeNet::conv2.weight"], STD_ROUND)
    np.testing.assert_array_equal(x.op("LeNet__conv2_weight").const_array(), want.transpose(0, 2, 3, 1))
    # the reference's xmodel details: one reshape for the flatten, conv attrs
    assert not x.ops_of_type("transpose") and [op.type for op in x.ops_of_type("reshape")] == ["reshape"]
    conv = x.op("LeNet__nndct_conv2d_4")
    assert (conv.attrs["in_dim"], conv.attrs["out_dim"], conv.attrs["group"], conv.attrs["bias_term"]) == (
        6, 16, 1, True)
    assert (out / "deploy_check_data_int" / "LeNet" / "LeNet__nndct_dense_8_fix.bin").is_file() is False
    assert (out / "deploy_check_data_int" / "LeNet" / "LeNet__nndct_relu_9_fix.bin").is_file()


def test_a_reference_result_for_another_graph_is_refused_by_name(lenet, digits, tmp_path):
    """The reference's hash is not ours, so a foreign file is matched by its names: a LeNet
    result with one node renamed (another architecture) is CALIB_RESULT_MISMATCH naming it."""
    out = tmp_path / "quantize_result"
    _reference_files(out)
    doc = json.loads((out / "quant_info.json").read_text())
    doc["output"]["LeNet::nndct_hswish_9"] = doc["output"].pop("LeNet::nndct_relu_9")
    (out / "quant_info.json").write_text(json.dumps(doc))
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH") as err:
        torch_quantizer("test", lenet, digits[0][:1], output_dir=str(out), device=CPU)
    assert "'LeNet::nndct_relu_9'" in str(err.value) and "'LeNet::nndct_hswish_9'" in str(err.value)


class MobileBlock(torch.nn.Module):
    """conv-BN-ReLU6, depthwise conv-ReLU6, pointwise conv, pool, linear (a MobileNet block)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.bn = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = torch.nn.Conv2d(8, 12, 1)
        self.fc = torch.nn.Linear(12 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn(self.c1(x)))
        x = F.relu6(self.dw(x))
        return self.fc(torch.flatten(F.max_pool2d(self.pw(x), 2), 1))


def test_relu6_between_convs_gets_the_scaled_clip_everywhere(digits, tmp_path):
    """(conv, relu6, conv) pairs: the ReLU6 clips at 6 / s per channel in the generated module,
    the xmodel (min of relu and the levels), TorchScript and ONNX; the float function is kept."""
    torch.manual_seed(1)
    model = models.train(MobileBlock(), digits[0], digits[1], epochs=10, seed=1)
    x = digits[0][:200]
    calib = torch_quantizer("calib", model, x[:8], output_dir=str(tmp_path), device=CPU)
    pairs = [(p.first, p.second, p.between) for p in calib.post_training.cle_pairs]
    assert pairs == [("MobileBlock::nndct_conv2d_1", "MobileBlock::nndct_depthwise_conv2d_3", ("MobileBlock::nndct_relu6_2",)),
                     ("MobileBlock::nndct_depthwise_conv2d_3", "MobileBlock::nndct_conv2d_5", ("MobileBlock::nndct_relu6_4",))]
    clips = [calib.graph.node(p[2][0]).attrs["clip"] for p in pairs]
    assert all(len(c) == 8 and len(set(c)) > 1 for c in clips)
    assert "clip=[" in (tmp_path / "MobileBlock.py").read_text()
    with torch.no_grad(), run_with(calib.quant_model, None):   # the float function is kept
        torch.testing.assert_close(calib.quant_model(digits[2]), model(digits[2]), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        calib.quant_model(x)
    calib.export_quant_config()
    test = torch_quantizer("test", model, x[:1], output_dir=str(tmp_path), device=CPU)
    assert test.graph.node(pairs[0][2][0]).attrs["clip"] == clips[0]
    one = digits[2][:1]
    with torch.no_grad():
        want = test.quant_model(one)
    path = test.export_xmodel(str(tmp_path), deploy_check=True)
    graph = test.export_graph()
    got = evaluate_xmodel(path, {to_op_name(graph.inputs[0].name): one.numpy()})
    last = graph.outputs[0]
    np.testing.assert_array_equal(torch_value(graph, last, got[to_op_name(last.name) + "_fix"]), want.numpy())
    scripted = torch.jit.load(str(test.export_torch_script(str(tmp_path))))
    assert torch.equal(scripted(one), want)
    assert test.export_onnx_model(str(tmp_path)).stat().st_size > 0

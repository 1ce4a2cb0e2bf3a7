"""Every config option of the guide works in the CNN flow, on real small models (sklearn digits).

The guide's files (tests/nndct_shared/config/data) load verbatim; mse, entropy and percentile
with power-of-two scales and every calib_statistic_method; narrow_range; per-channel float
scales; keep_first_last_layer_accuracy, keep_add_layer_accuracy and mix_bit; unmatched layer
entries are named. Semantics: nndct_shared.calibration.factory and the config package.
"""
from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from nndct_shared.config import default_config
from nndct_shared.quant_info_float import read_float_quant_info
from pytorch_nndct.apis import torch_quantizer
from quant_flow import calibrate, ort_sessions, quant_info, test_quantizer

GUIDE_FILES = Path(__file__).parents[2] / "nndct_shared" / "config" / "data"
CPU = torch.device("cpu")


def _config(tmp_path: Path, name: str, base=None, overall=None, **tensors) -> str:
    """A CPU config file: the default's settings (CLE and bias correction off, so results depend
    on the option under test only), `overall` changes and per-kind overrides."""
    data = base if base is not None else default_config(8, "CPU").to_dict()
    data["include_cle"] = data["include_bias_corr"] = False
    data["overall_quantize_config"].update(overall or {})
    for kind, settings in tensors.items():
        data.setdefault("tensor_quantize_config", {}).setdefault(kind, {}).update(settings)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def _run(model, digits, out: Path, config=None, batches=2, **kwargs):
    """Calibrate on `batches` batches of 100 training images, then the test-mode quantizer."""
    calibrate(model, digits[0][:100 * batches], out, quant_config_file=config, **kwargs)
    return test_quantizer(model, digits[2], out, quant_config_file=config, **kwargs)


def _info(out: Path) -> dict:
    """{section: {name: (bit_width, fix_pos)}} of the 3.x quant_info.json in `out`."""
    return quant_info(out)


def _accuracy(quantizer, digits) -> float:
    return models.accuracy(quantizer.quant_model, digits[2], digits[3])


# --- the guide's files ---------------------------------------------------------------------------


def test_guides_example_config_file_loads_verbatim_and_quantizes(digits_cnn, digits, tmp_path, caplog):
    """The guide's example file (float scales, maxmin; mse for activations; Conv2d layers with
    per-channel weights and entropy activations; a layer name from the guide's ResNet)."""
    config = str(GUIDE_FILES / "guide_example_config.json")
    with caplog.at_level(logging.WARNING, logger="nndct"):
        quantizer = _run(digits_cnn, digits, tmp_path, config)
    assert ("[QUANTIZER_TORCH_QUANT_CONFIG_LAYER_UNMATCHED]: layer_quantize_config[1] (layer_name "
            "'ResNet::ResNet/Conv2d[conv1]/input.2') matches no layer of this model") in caplog.text
    assert "'DigitsCNN::nndct_conv2d_1'" in caplog.text  # the names that exist (reference 3.x names)
    floats = read_float_quant_info(tmp_path / "quant_info_float.json")
    conv1 = [floats.param[f"DigitsCNN::conv1.weight[{c}]"] for c in range(8)]
    weight = quantizer.graph.node("DigitsCNN::nndct_conv2d_1").params["weight"].data
    for c, entry in enumerate(conv1):  # per-channel maxmin, symmetric: max |w_c| is code 127
        assert entry.scale == float(np.float32(np.abs(weight[c]).max() / 127)) and entry.zero_point == 0
    assert "DigitsCNN::fc.weight" in floats.param  # a Linear: the model's per-tensor weights
    float_acc = models.accuracy(digits_cnn, digits[2], digits[3])
    accuracy = _accuracy(quantizer, digits)
    print(f"guide example config: float {float_acc:.2f} %, quantized {accuracy:.2f} %")
    assert accuracy >= float_acc - 2.0
    x = digits[2][:8]
    quantizer.quant_model(x[:1])
    scripted = torch.jit.load(str(quantizer.export_torch_script(str(tmp_path))))
    assert torch.equal(scripted(x), quantizer.quant_model(x))


def test_guides_default_listing_behaves_exactly_as_no_config(digits_cnn, digits, tmp_path, caplog):
    """The guide's "Default Configurations" listing as a file (issue 15): round_mode std_round for
    every tensor; on the DPU activations are rounded half_up (a note says so), so the files are
    those of a quantizer without config, byte for byte (CLE and bias correction included)."""
    listing = str(GUIDE_FILES / "guide_default_listing.json")
    with caplog.at_level(logging.INFO, logger="nndct"):
        calibrate(digits_cnn, digits[0][:200], tmp_path / "listing", quant_config_file=listing)
    assert ("round_mode 'std_round' ('overall_quantize_config.round_mode') applies to weights, bias and "
            "input here; activations on the DPU are rounded half_up") in caplog.text
    calibrate(digits_cnn, digits[0][:200], tmp_path / "default")
    for name in ("quant_info.json", "bias_corr.pth"):
        assert (tmp_path / "listing" / name).read_bytes() == (tmp_path / "default" / name).read_bytes()
    listed = test_quantizer(digits_cnn, digits[2], tmp_path / "listing", quant_config_file=listing)
    plain = test_quantizer(digits_cnn, digits[2], tmp_path / "default")
    assert torch.equal(listed.quant_model(digits[2][:50]), plain.quant_model(digits[2][:50]))


# --- power-of-two scales: every method and statistic ----------------------------------------------


def _input_fix(model, digits, out: Path, config: str, batches) -> int:
    calibrate(model, torch.cat(batches), out, batch=len(batches[0]), quant_config_file=config)
    return _info(out)["output"]["DigitsMLP::nndct_input_0"][1]


def _covering(scale: Fraction) -> int:
    """The largest fix position f with 2^-f >= scale."""
    return max(f for f in range(-20, 40) if Fraction(2) ** -f >= scale)


@pytest.mark.parametrize("method", ["diffs", "mse", "entropy", "percentile"])
def test_power_of_two_statistics_combine_the_per_batch_fix_positions(method, digits_mlp, digits, tmp_path):
    """A statistic picks one of the per-batch scales 2^-fp: every batch is calibrated on its own
    (the model input's fix depends on its batch only), and max / mean / median of those give the
    multi-batch result exactly (max: the largest scale; mean and median: the smallest power of
    two that covers the mean / median scale)."""
    x = digits[0][:400]
    scale = torch.linspace(0.25, 4.0, 8)  # batches of different ranges, so the votes differ
    batches = [x[i * 50:(i + 1) * 50] * scale[i] for i in range(8)]
    votes = []
    for i, batch in enumerate(batches):
        config = _config(tmp_path, f"one{i}.json", input={"method": method, "calib_statistic_method": "max"})
        votes.append(_input_fix(digits_mlp, digits, tmp_path / f"one{i}", config, [batch]))
    assert len(set(votes)) > 2
    scales = sorted(Fraction(2) ** -v for v in votes)
    expected = {"max": min(votes), "mean": _covering(sum(scales) / len(scales)),
                "median": _covering((scales[3] + scales[4]) / 2)}
    for statistic, want in expected.items():
        config = _config(tmp_path, f"{statistic}.json", input={"method": method, "calib_statistic_method": statistic})
        assert _input_fix(digits_mlp, digits, tmp_path / statistic, config, batches) == want, statistic


@pytest.mark.parametrize("method", ["mse", "entropy", "percentile"])
@pytest.mark.parametrize("statistic", ["max", "mean", "median"])
def test_power_of_two_histogram_methods_keep_accuracy(method, statistic, digits_cnn, digits, tmp_path):
    config = _config(tmp_path, "c.json", activation={"method": method, "calib_statistic_method": statistic},
                     input={"method": method, "calib_statistic_method": statistic},
                     weights={"method": method}, bias={"method": method})
    quantizer = _run(digits_cnn, digits, tmp_path, config)
    assert all(isinstance(v[1], int) for v in _info(tmp_path)["output"].values())
    float_acc = models.accuracy(digits_cnn, digits[2], digits[3])
    accuracy = _accuracy(quantizer, digits)
    print(f"power-of-two {method}/{statistic}: float {float_acc:.2f} %, quantized {accuracy:.2f} %")
    assert accuracy >= float_acc - 3.0


def test_modal_with_mse_is_the_guides_conflict(digits_mlp, digits, tmp_path):
    config = _config(tmp_path, "c.json", activation={"method": "mse", "calib_statistic_method": "modal"})
    with pytest.raises(Exception, match="QUANT_CONFIG_CONFLICT.*'modal' statistic is not supported with method 'mse'"):
        calibrate(digits_mlp, digits[0][:100], tmp_path, quant_config_file=config)


@pytest.mark.parametrize("method", ["diffs", "maxmin", "percentile"])
@pytest.mark.parametrize("grid", [{"symmetry": False}, {"signed": False}, {"symmetry": False, "signed": False}])
def test_power_of_two_asymmetric_and_unsigned_grids(grid, method, digits_cnn, digits, tmp_path):
    """Power-of-two scales with a zero point or unsigned codes (no conflict in the guide): every
    scale is a power of two, zero points keep 0.0 exact, results go to quant_info_float.json."""
    statistic = "modal" if method in ("diffs", "maxmin") else "max"
    overall = {"method": method, "calib_statistic_method": statistic}
    # the grid for inputs and activations; weights keep signed symmetric grids unless only the
    # symmetry changes (an unsigned grid would zero every negative weight)
    tensors = {"input": grid, "activation": grid}
    if "signed" not in grid:
        overall.update(grid)
        tensors = {}
    config = _config(tmp_path, "c.json", overall=overall, **tensors)
    quantizer = _run(digits_cnn, digits, tmp_path, config)
    info = _info(tmp_path)
    assert info["output"] == {}  # every activation has a zero point or unsigned codes
    assert (info["param"] == {}) == ("signed" not in grid)  # weights only when they are asymmetric
    floats = read_float_quant_info(tmp_path / "quant_info_float.json")
    assert floats.output and (floats.param or "signed" in grid)
    for entry in list(floats.param.values()) + list(floats.output.values()):
        mantissa, _ = np.frexp(entry.scale)
        assert mantissa == 0.5 and entry.scale >= 2.0 ** -12  # a power of two, fix position <= 12
    for entry in floats.output.values():
        assert (entry.symmetric, entry.signed) == (grid.get("symmetry", True), grid.get("signed", True))
    x = digits[2][:20]
    again = test_quantizer(digits_cnn, digits[2], tmp_path, quant_config_file=config)
    out = again.quant_model(x)
    assert torch.equal(out, quantizer.quant_model(x))
    if "signed" in grid and grid.get("symmetry", True):  # unsigned symmetric: nothing below 0
        assert all(float(again.runtime.last_outputs[n].min()) >= 0 for n in floats.output)
    accuracy = _accuracy(quantizer, digits)
    print(f"power-of-two {grid} {method}: {accuracy:.2f} %")
    if "signed" not in grid:
        assert accuracy >= models.accuracy(digits_cnn, digits[2], digits[3]) - 3.0


# --- float scales: mse, entropy, per channel -----------------------------------------------------------


@pytest.mark.parametrize("method", ["mse", "entropy"])
def test_float_mse_and_entropy(method, digits_cnn, digits, tmp_path):
    """Float scales chosen by mse / entropy clip: never wider than maxmin's (the same per-batch
    data, statistic max), narrower for some tensor, and the accuracy holds."""
    scales = {}
    for name in ("maxmin", method):
        config = _config(tmp_path, f"{name}.json", overall={"scale_type": "float", "method": name,
                                                             "calib_statistic_method": "max"})
        quantizer = _run(digits_cnn, digits, tmp_path / name, config)
        floats = read_float_quant_info(tmp_path / name / "quant_info_float.json")
        scales[name] = {k: e.scale for k, e in floats.output.items()}
    assert scales[method].keys() == scales["maxmin"].keys()
    assert all(scales[method][k] <= scales["maxmin"][k] for k in scales[method])
    assert any(scales[method][k] < scales["maxmin"][k] for k in scales[method])
    float_acc = models.accuracy(digits_cnn, digits[2], digits[3])
    assert _accuracy(quantizer, digits) >= float_acc - 3.0


@pytest.mark.parametrize("scale_type", ["float", "poweroftwo"])
def test_per_channel_weights_with_every_method(scale_type, digits_cnn, digits, tmp_path):
    """per_channel weights: each output channel its own scale (or fix position), by every method;
    the result file round-trips into test mode."""
    methods = ("maxmin", "percentile", "mse", "entropy") + (("diffs",) if scale_type == "poweroftwo" else ())
    for method in methods:
        overall = {"scale_type": "float", "method": "maxmin", "calib_statistic_method": "max"}
        config = _config(tmp_path, f"{method}.json", overall=overall if scale_type == "float" else {},
                         weights={"per_channel": True, "method": method})
        out = tmp_path / method
        quantizer = _run(digits_cnn, digits, out, config)
        if scale_type == "float":
            table = {k: e.scale for k, e in read_float_quant_info(out / "quant_info_float.json").param.items()}
        else:
            table = {k: v[1] for k, v in _info(out)["param"].items()}
        channels = [table[f"DigitsCNN::pw.weight[{c}]"] for c in range(16)]
        assert "DigitsCNN::pw.weight" not in table and len(set(channels)) > 1, method
        again = test_quantizer(digits_cnn, digits[2], out, quant_config_file=config)
        x = digits[2][:20]
        assert torch.equal(again.quant_model(x), quantizer.quant_model(x))  # the file round-trips
        accuracy = _accuracy(quantizer, digits)
        print(f"per-channel {scale_type} {method}: {accuracy:.2f} %")
        assert accuracy >= models.accuracy(digits_cnn, digits[2], digits[3]) - 3.0, method


# --- narrow_range ----------------------------------------------------------------------------------


def test_guides_dpu_restrictions_with_narrow_range(digits_cnn, digits, tmp_path, caplog):
    """The guide's DPU list ("narrow_range: true"): every code stays in [-127, 127], in
    quant_model, the exported params and ONNX; the xmodel warns that its fix ops cannot say it."""
    config = str(GUIDE_FILES / "guide_dpu_restrictions.json")
    quantizer = _run(digits_cnn, digits, tmp_path, config)
    x = digits[2][:64]
    out = quantizer.quant_model(x)
    for name, s in quantizer.settings.items():
        fp = quantizer.runtime.fix_pos[name]
        values = (quantizer.runtime.last_outputs[name] if not s.is_param
                  else _param(quantizer, name))
        codes = values.double() * 2.0 ** fp
        assert float(codes.min()) >= -127 and float(codes.max()) <= 127, name
        assert torch.equal(codes, codes.round())
    assert any(float((_param(quantizer, n).double() * 2.0 ** quantizer.runtime.fix_pos[n]).min()) == -127
               for n, s in quantizer.settings.items() if s.is_param)  # the clamp did something
    assert _accuracy(quantizer, digits) >= models.accuracy(digits_cnn, digits[2], digits[3]) - 2.0
    quantizer.quant_model(x[:1])
    graph = quantizer.export_graph()
    for node in graph:
        for tensor in node.params.values():
            if "fix" in tensor.attrs:
                assert float((tensor.data.astype(np.float64) * 2.0 ** tensor.attrs["fix"][1]).min()) >= -127
    ort = pytest.importorskip("onnxruntime")
    path = quantizer.export_onnx_model(str(tmp_path))
    session = ort_sessions(ort, path)["default"]
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    step = 2.0 ** -quantizer.runtime.fix_pos[quantizer.graph.outputs[0].name]
    assert np.max(np.abs(got - out.numpy())) <= 4 * step  # ties, as in test_exports
    with caplog.at_level(logging.WARNING, logger="nndct"):
        assert quantizer.export_xmodel(str(tmp_path / "xmodel")).is_file()
    assert "[QUANTIZER_TORCH_XMODEL_NARROW_RANGE]" in caplog.text


def _param(quantizer, name):
    for module in quantizer.quant_model.children():
        for role, param_name in getattr(module, "param_names", {}).items():
            if param_name == name:
                return quantizer.runtime.param(name, getattr(module, role)).detach()
    raise KeyError(name)


# --- layers kept in float ----------------------------------------------------------------------------


def test_keep_first_last_layer_accuracy(digits_cnn, digits, tmp_path, caplog):
    """At 4 bits: the first conv (and its relu) and the last linear run in float, and the model
    input is not quantized (only the float conv reads it); the conv's relu output is quantized
    where the quantized depthwise conv reads it (as an activation). Accuracy improves."""
    plain = _config(tmp_path, "plain.json", overall={"bit_width": 4})
    keep = json.loads(Path(plain).read_text())
    keep["keep_first_last_layer_accuracy"] = True
    (tmp_path / "keep.json").write_text(json.dumps(keep))
    base = _run(digits_cnn, digits, tmp_path / "plain", plain, bitwidth=4)
    with caplog.at_level(logging.INFO, logger="nndct"):
        kept = _run(digits_cnn, digits, tmp_path / "keep", str(tmp_path / "keep.json"), bitwidth=4)
    assert ("=>keep_first_last_layer_accuracy: 2 layer(s) run in float (not quantized): "
            "'DigitsCNN::nndct_conv2d_1', 'DigitsCNN::nndct_dense_10'") in caplog.text
    info = _info(tmp_path / "keep")
    assert not any(k.startswith(("DigitsCNN::conv1.", "DigitsCNN::fc.")) for k in info["param"])
    assert "DigitsCNN::dw.weight" in info["param"]
    assert "DigitsCNN::nndct_input_0" not in info["output"]
    assert "DigitsCNN::nndct_dense_10" not in info["output"]
    assert kept.plan.outputs["DigitsCNN::nndct_relu_2"].kind == "activation"
    x = digits[2][:32]
    layer = kept.quant_model.module_1  # conv1, float: its output is the float model's
    assert layer.node_name == "DigitsCNN::nndct_conv2d_1"
    with torch.no_grad():
        expected = torch.nn.functional.relu(digits_cnn.bn1(digits_cnn.conv1(x)))
        kept.quant_model(x)
    assert torch.allclose(kept.runtime.last_outputs["DigitsCNN::nndct_conv2d_1"].relu(),
                          expected, atol=1e-5)
    print(f"4 bit: plain {_accuracy(base, digits):.2f} %, first/last float {_accuracy(kept, digits):.2f} %")
    assert _accuracy(kept, digits) >= _accuracy(base, digits)


def test_keep_add_layer_accuracy(residual_net, digits, tmp_path, caplog):
    """The residual add and its relu run in float; their output is quantized (as an activation)
    where the quantized pool reads it."""
    config = json.loads(Path(_config(tmp_path, "c.json")).read_text())
    config["keep_add_layer_accuracy"] = True
    (tmp_path / "keep.json").write_text(json.dumps(config))
    with caplog.at_level(logging.INFO, logger="nndct"):
        kept = _run(residual_net, digits, tmp_path / "keep", str(tmp_path / "keep.json"))
    assert "=>keep_add_layer_accuracy: 1 layer(s) run in float" in caplog.text
    add = next(n.name for n in kept.graph if n.op_type == "add")
    relu = kept.graph.consumers(kept.graph.node(add).outputs[0])[0].name
    assert add not in kept.captured.quantized and relu not in kept.captured.quantized
    assert kept.plan.outputs[relu].kind == "activation" and add not in kept.plan.outputs
    assert _accuracy(kept, digits) >= models.accuracy(residual_net, digits[2], digits[3]) - 2.0


# --- mix_bit ------------------------------------------------------------------------------------------


def test_mix_bit_keeps_activations_at_16_bits(digits_cnn, digits, tmp_path, caplog):
    """mix_bit=True: weights and bias at `bitwidth`, inputs and activations at 16 bits."""
    plain = _run(digits_cnn, digits, tmp_path / "plain", bitwidth=4)
    mixed = _run(digits_cnn, digits, tmp_path / "mixed", bitwidth=4, mix_bit=True)
    info = _info(tmp_path / "mixed")
    assert {v[0] for v in info["param"].values()} == {4}
    assert {v[0] for v in info["output"].values()} == {16}
    print(f"4 bit: plain {_accuracy(plain, digits):.2f} %, mix_bit {_accuracy(mixed, digits):.2f} %")
    assert _accuracy(mixed, digits) > _accuracy(plain, digits)
    config = _config(tmp_path, "c.json", overall={"bit_width": 4})
    with caplog.at_level(logging.WARNING, logger="nndct"):
        torch_quantizer("calib", digits_cnn, digits[0][:4], output_dir=str(tmp_path / "file"), bitwidth=4,
                        mix_bit=True, device=CPU, quant_config_file=config)
    assert ("Bit width of input, activation tensors in the configuration file (4) differs from the bitwidth "
            "argument (16, mix_bit=True); the configuration file's value is used.") in caplog.text


# --- layer entries that match nothing ------------------------------------------------------------------


def test_unmatched_layer_type_lists_the_models_types(digits_mlp, digits, tmp_path, caplog):
    data = default_config(8, "CPU").to_dict()
    entry = {"layer_type": "torch.nn.Conv2d", "layer_name": None, "quantizable_data_type": ["weights"],
             "overall_quantize_config": dict(data["overall_quantize_config"], bit_width=4)}
    data["layer_quantize_config"] = [entry, dict(entry, layer_type="torch.nn.Linear")]
    (tmp_path / "c.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="nndct"):
        calibrate(digits_mlp, digits[0][:100], tmp_path, quant_config_file=str(tmp_path / "c.json"))
    assert ("layer_quantize_config[0] (layer_type 'torch.nn.Conv2d') matches no layer of this model and has "
            "no effect. The model's layer types: 'input', 'relu', 'reshape', 'torch.nn.Linear'") in caplog.text
    assert "layer_quantize_config[1]" not in caplog.text  # Linear matches
    assert {v[0] for k, v in _info(tmp_path)["param"].items() if k.endswith("weight")} == {4}

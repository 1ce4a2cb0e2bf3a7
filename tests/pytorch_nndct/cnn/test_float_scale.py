"""Float scales and asymmetric / unsigned / narrow-range grids in the CNN flow's JSON config.

Semantics: `nndct_shared.calibration.float_scale`; result file: `nndct_shared.quant_info_float`.
"""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from nndct_shared.calibration import FloatQParams, FloatQuantSpec, FloatRangeObserver, observer_from_state
from nndct_shared.calibration.float_scale import fake_quant_float_numpy, qparams_from_range, quant_range
from nndct_shared.config import default_config
from nndct_shared.messages import MissingFileError, QuantInfoError, UnsupportedOpError
from nndct_shared.quant_info_float import read_float_quant_info, to_float_json_text
from pytorch_nndct.quantization.fix_float_torch import fake_quant_float_torch
from pytorch_nndct.quantization.fix_torch import method_code
from quant_flow import calibrate, ort_sessions, quant_info, test_quantizer

FLOAT_FILE = "quant_info_float.json"


def _float_config(tmp_path, name, activation=None, plain=False, **overall):
    data = default_config(8, "CPU").to_dict()
    data["overall_quantize_config"].update({"scale_type": "float", "method": "maxmin",
                                            "calib_statistic_method": "max", **overall})
    if activation:
        data["tensor_quantize_config"]["activation"].update(activation)
    if plain:  # no CLE / bias correction: the params are the float model's
        data["include_cle"] = data["include_bias_corr"] = False
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


ASYM_UNSIGNED = {"symmetry": False, "signed": False}


def _accuracy(logits, labels):
    return float((logits.argmax(1) == labels).float().mean())


# --- neutral math ---------------------------------------------------------------------------

def test_grid_ranges():
    assert quant_range(8, True, False) == (-128, 127)
    assert quant_range(8, True, True) == (-127, 127)
    assert quant_range(8, False, False) == (0, 255)
    assert quant_range(8, False, True) == (1, 255)
    with pytest.raises(Exception, match="no code for 0.0"):
        FloatQuantSpec(8, signed=False, narrow_range=True, symmetric=True)


@pytest.mark.parametrize("signed, narrow", [(True, False), (True, True), (False, False), (False, True)])
def test_asymmetric_zero_point_represents_zero(signed, narrow):
    spec = FloatQuantSpec(8, signed, narrow, symmetric=False)
    for lo, hi in [(-0.3, 2.7), (-5.0, 0.01), (0.2, 3.0), (-1e-3, 1e3), (-2.0, -0.5)]:
        qp = qparams_from_range(lo, hi, spec)
        assert isinstance(qp.zero_point, int) and spec.qmin <= qp.zero_point <= spec.qmax
        assert qp.scale == float(np.float32(qp.scale)) and qp.scale > 0
        assert fake_quant_float_numpy(np.zeros(3, np.float32), spec, qp, "half_up").tolist() == [0.0] * 3
        # the widened range [min(lo, 0), max(hi, 0)] is covered to within half a step
        ends = fake_quant_float_numpy(np.array([min(lo, 0), max(hi, 0)], np.float32), spec, qp, "half_even")
        assert abs(ends[0] - min(lo, 0)) <= qp.scale * 0.5 + 1e-6 and abs(ends[1] - max(hi, 0)) <= qp.scale * 0.5 + 1e-6


def test_symmetric_scales():
    assert qparams_from_range(-2.54, 1.0, FloatQuantSpec(8)) == FloatQParams(float(np.float32(2.54 / 127)), 0)
    unsigned = qparams_from_range(-4.0, 2.55, FloatQuantSpec(8, signed=False))
    assert unsigned == FloatQParams(float(np.float32(2.55 / 255)), 0)
    x = np.array([-1.0, 0.0, 2.55, 9.0], np.float32)
    out = fake_quant_float_numpy(x, FloatQuantSpec(8, signed=False), unsigned, "std_round")
    assert out[0] == 0 and out[1] == 0 and abs(out[2] - 2.55) < 1e-6 and out[3] == out[2]
    assert qparams_from_range(0.0, 0.0, FloatQuantSpec(8)) == FloatQParams(1.0, 0)


@pytest.mark.parametrize("method", ["std_round", "half_up", "half_even", "half_down", "floor"])
@pytest.mark.parametrize("signed, narrow, symmetric", [(True, False, True), (True, True, False),
                                                      (False, False, False), (False, True, False)])
def test_torch_equals_numpy_reference(method, signed, narrow, symmetric):
    spec = FloatQuantSpec(8, signed, narrow, symmetric)
    qp = qparams_from_range(-1.3, 2.1, spec)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1.5, 2000), (np.arange(-300, 300) + 0.5) * qp.scale,
                        [np.inf, -np.inf, 0.0, -0.0]]).astype(np.float32)
    want = fake_quant_float_numpy(x, spec, qp, method)
    got = fake_quant_float_torch(torch.from_numpy(x), spec.qmin, spec.qmax, qp.scale, qp.zero_point,
                                 method_code(method)).numpy()
    assert np.array_equal(got, want)
    codes = np.round(want.astype(np.float64) / qp.scale) + qp.zero_point
    assert codes.min() >= spec.qmin and codes.max() <= spec.qmax
    assert np.isnan(fake_quant_float_torch(torch.tensor([np.nan]), spec.qmin, spec.qmax, qp.scale,
                                           qp.zero_point, method_code(method)).numpy()).all()


def test_observer_statistics_and_percentile():
    batches = [np.array([-1.0, 2.0], np.float32), np.array([-3.0, 1.0], np.float32),
               np.array([-2.0, 6.0], np.float32)]
    expected = {"max": (-3.0, 6.0), "modal": (-3.0, 6.0), "mean": (-2.0, 3.0), "median": (-2.0, 2.0)}
    for statistic, bounds in expected.items():
        obs = FloatRangeObserver(8, symmetric=False, statistic=statistic)
        assert obs.fix_pos is None
        for b in batches:
            obs.observe(b)
        assert obs.range() == bounds
        assert obs.fix_pos == qparams_from_range(*bounds, obs.spec)
        again = observer_from_state(json.loads(json.dumps(obs.to_state())))
        assert again.fix_pos == obs.fix_pos
    obs = FloatRangeObserver(8, statistic="max", percentage=99.0)
    data = np.concatenate([np.linspace(-1, 1, 10000), [50.0]]).astype(np.float32)
    obs.observe(data)
    lo, hi = obs.range()
    assert lo == -1.0 and 1.0 <= hi < 1.01  # the outlier is clipped


# --- the CNN flow ---------------------------------------------------------------------------

@pytest.mark.parametrize("fixture, activation", [("digits_mlp", None), ("digits_mlp", ASYM_UNSIGNED),
                                                 ("digits_cnn", ASYM_UNSIGNED)])
def test_float_scale_accuracy(fixture, activation, request, digits, tmp_path):
    model = request.getfixturevalue(fixture)
    config = _float_config(tmp_path, "float.json", activation)
    calibrate(model, digits[0][:200], tmp_path, quant_config_file=config)
    info = quant_info(tmp_path)
    assert info["param"] == {} and info["output"] == {}  # every tensor is float-scale
    floats = read_float_quant_info(tmp_path / FLOAT_FILE)
    assert floats.param and floats.output
    quantizer = test_quantizer(model, digits[2], tmp_path, quant_config_file=config)
    with torch.no_grad():
        acc_q = _accuracy(quantizer.quant_model(digits[2]), digits[3])
        acc_f = _accuracy(model(digits[2]), digits[3])
    print(f"{fixture} {activation}: float {acc_f:.4f}, float-scale quantized {acc_q:.4f}")
    assert acc_q >= acc_f - 0.01
    if activation:
        relus = [n for n in floats.output if "::nndct_relu_" in n]
        assert relus
        for name in relus:  # unsigned, asymmetric: the zero point stays 0 after relu
            e = floats.output[name]
            assert (e.signed, e.symmetric, e.zero_point) == (False, False, 0)
            assert quantizer.runtime.last_outputs[name].min() == 0.0
        for name, e in floats.output.items():
            if not e.symmetric:  # 0.0 is a code
                zero = fake_quant_float_torch(torch.zeros(1), *quant_range(8, e.signed, e.narrow_range),
                                              e.scale, e.zero_point, method_code("half_up"))
                assert zero.item() == 0.0


def _fq(x, e, method):
    """Independent numpy fake quantization from one persisted entry."""
    qmin, qmax = (-128, 127) if e["signed"] else (0, 255)
    if e["narrow_range"]:
        qmin += 1
    r = x.astype(np.float64) / e["scale"]
    if method == "std_round":
        r = np.sign(r) * np.floor(np.abs(r) + 0.5)
    else:  # half_up
        r = np.floor(r + 0.5)
    q = np.clip(r + e["zero_point"], qmin, qmax)
    return ((q - e["zero_point"]) * e["scale"]).astype(np.float32)


def test_mlp_output_equals_numpy_from_persisted_scales(digits_mlp, digits, tmp_path):
    config = _float_config(tmp_path, "plain.json", {"symmetry": False, "narrow_range": True}, plain=True)
    calibrate(digits_mlp, digits[0][:200], tmp_path, quant_config_file=config)
    quantizer = test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
    x = digits[2][:100]
    with torch.no_grad():
        got = quantizer.quant_model(x).numpy()
    saved = json.loads((tmp_path / FLOAT_FILE).read_text())
    p, o = saved["param"], saved["output"]
    assert any(e["zero_point"] != 0 for e in o.values())  # the logits' grid is asymmetric

    def linear(h, layer):
        w = _fq(getattr(digits_mlp, layer).weight.detach().numpy(), p[f"DigitsMLP::{layer}.weight"], "std_round")
        b = _fq(getattr(digits_mlp, layer).bias.detach().numpy(), p[f"DigitsMLP::{layer}.bias"], "std_round")
        return (h.astype(np.float64) @ w.T.astype(np.float64) + b).astype(np.float32)

    h = _fq(x.numpy().reshape(len(x), -1), o["DigitsMLP::nndct_input_0"], "std_round")
    h = _fq(np.maximum(linear(h, "l1"), 0), o["DigitsMLP::nndct_relu_3"], "half_up")
    h = _fq(np.maximum(linear(h, "l2"), 0), o["DigitsMLP::nndct_relu_5"], "half_up")
    want = _fq(linear(h, "l3"), o["DigitsMLP::nndct_dense_6"], "half_up")
    assert np.array_equal(got, want)


def test_quant_info_float_round_trip_and_corrupt_files(digits_mlp, digits, tmp_path):
    config = _float_config(tmp_path, "float.json", ASYM_UNSIGNED)
    calibrate(digits_mlp, digits[0][:100], tmp_path, quant_config_file=config)
    path = tmp_path / FLOAT_FILE
    text = path.read_text()
    assert to_float_json_text(read_float_quant_info(path)) == text
    test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)  # reads fine
    good = json.loads(text)
    relu = "DigitsMLP::nndct_relu_3"

    def broken(mutate):
        data = json.loads(text)
        mutate(data)
        return json.dumps(data)

    corrupt = {
        "not json": "{",
        "duplicate": text.replace('"version": 1,', '"version": 1, "version": 1,'),
        "nan": text.replace('"zero_point": 0', '"zero_point": NaN', 1),
        "top keys": broken(lambda d: d.pop("version")),
        "version": broken(lambda d: d.update(version=2)),
        "entry keys": broken(lambda d: d["output"][relu].pop("scale")),
        "negative scale": broken(lambda d: d["output"][relu].update(scale=-0.1)),
        "zero point range": broken(lambda d: d["output"][relu].update(zero_point=256)),
        "symmetric zero point": broken(lambda d: d["param"]["DigitsMLP::l1.weight"].update(zero_point=3)),
        "bool bit width": broken(lambda d: d["output"][relu].update(bit_width=True)),
    }
    for what, content in corrupt.items():
        path.write_text(content)
        with pytest.raises(QuantInfoError, match="QUANT_INFO_CORRUPT") as exc:
            test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
        assert FLOAT_FILE in str(exc.value), what
    extra = dict(good, output={**good["output"], "DigitsMLP::ghost": good["output"][relu]})
    path.write_text(json.dumps(extra))
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH"):
        test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
    missing = dict(good, output={k: v for k, v in good["output"].items() if k != relu})
    path.write_text(json.dumps(missing))
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH"):
        test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
    path.unlink()
    with pytest.raises(MissingFileError, match="NO_CALIB_RESULT"):
        test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
    # a config whose grid differs from the recorded one
    path.write_text(text)
    with pytest.raises(Exception, match="QUANT_CONFIG_MISMATCH"):
        test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=_float_config(tmp_path, "sym.json"))


def test_mixed_power_of_two_and_float(digits_mlp, digits, tmp_path):
    """Float weights and bias, power-of-two activations: each file holds its own tensors."""
    data = default_config(8, "CPU").to_dict()
    for kind in ("weights", "bias"):
        data["tensor_quantize_config"][kind] = {"scale_type": "float", "method": "maxmin",
                                                "calib_statistic_method": "max"}
    config = tmp_path / "mixed.json"
    config.write_text(json.dumps(data))
    calibrate(digits_mlp, digits[0][:200], tmp_path, quant_config_file=str(config))
    info = quant_info(tmp_path)
    floats = read_float_quant_info(tmp_path / FLOAT_FILE)
    assert info["param"] == {} and len(info["output"]) == 4 and len(floats.param) == 6 and not floats.output
    quantizer = test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=str(config))
    with torch.no_grad():
        assert _accuracy(quantizer.quant_model(digits[2]), digits[3]) >= _accuracy(digits_mlp(digits[2]), digits[3]) - 0.01


@pytest.fixture(scope="module")
def asym_quantizer(digits_mlp, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("float_exports")
    config = _float_config(out, "float.json", ASYM_UNSIGNED)
    calibrate(digits_mlp, digits[0][:200], out, quant_config_file=config)
    return test_quantizer(digits_mlp, digits[2], out, quant_config_file=config), out


def test_xmodel_export_refused(asym_quantizer, digits, tmp_path, caplog):
    """A float-scale config is a CPU/GPU config: export_xmodel() writes nothing (XMODEL_DEVICE);
    the xmodel writer itself refuses float-scale tensors (the DPU computes power-of-two only)."""
    from nndct_shared.cnn_export.bundle import write_xmodel_bundle

    quantizer, _ = asym_quantizer
    quantizer.quant_model(digits[2][:1])
    target = tmp_path / "xmodel_out"
    with caplog.at_level(logging.WARNING, logger="nndct"):
        assert quantizer.export_xmodel(str(target), deploy_check=True) is None
    assert "[QUANTIZER_TORCH_XMODEL_DEVICE]" in caplog.text
    with pytest.raises(UnsupportedOpError, match="EXPORT_UNSUPPORTED") as exc:
        write_xmodel_bundle(quantizer.export_graph(), None, str(target))
    assert "float scale" in str(exc.value)
    assert not target.exists() or not any(target.iterdir())


def test_onnx_matches_quant_model(asym_quantizer, digits, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    quantizer, _ = asym_quantizer
    quantizer.quant_model(digits[2][:1])
    path = quantizer.export_onnx_model(str(tmp_path))
    import onnx

    model = onnx.load(str(path))
    zps = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_zero_point")}
    assert {z.dtype for z in zps.values()} == {np.dtype(np.int8), np.dtype(np.uint8)}
    x = digits[2][:64]
    outputs = {}
    for name, session in ort_sessions(ort, path).items():  # default options and every level
        outputs[name] = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    got = outputs["default"]
    assert all(np.array_equal(out, got) for out in outputs.values())
    with torch.no_grad():
        want = quantizer.quant_model(x).numpy()
    step = quantizer.runtime.fix_pos[quantizer.graph.outputs[0].name].scale
    fraction = float(np.mean(got == want))
    print(f"ONNX vs quant_model (float scales, asymmetric): {fraction:.4f} of {want.size} exactly equal")
    # ONNX rounds ties to even and divides in float32; a tie decided differently moves a value
    # by one step, which can propagate
    assert np.max(np.abs(got - want)) <= 2 * step + 1e-6
    assert fraction >= 0.95


def test_onnx_refuses_other_widths(digits_mlp, digits, tmp_path):
    config = _float_config(tmp_path, "float4.json", bit_width=4)
    calibrate(digits_mlp, digits[0][:100], tmp_path, quant_config_file=config)
    quantizer = test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
    quantizer.quant_model(digits[2][:1])
    with pytest.raises(UnsupportedOpError, match="EXPORT_UNSUPPORTED"):
        quantizer.export_onnx_model(str(tmp_path / "onnx4"))
    assert not (tmp_path / "onnx4").exists() or not any((tmp_path / "onnx4").iterdir())


def test_torchscript_matches_quant_model(asym_quantizer, digits, tmp_path):
    quantizer, _ = asym_quantizer
    x = digits[2][:1]
    with torch.no_grad():
        expected = quantizer.quant_model(x)
    path = quantizer.export_torch_script(str(tmp_path))
    scripted = torch.jit.load(str(path))
    assert torch.equal(scripted(x), expected)
    batch = digits[2][:32]
    with torch.no_grad():
        assert torch.equal(scripted(batch), quantizer.quant_model(batch))


def test_bias_correction_and_percentile_run(digits_mlp, digits, tmp_path):
    """Default CLE + bias correction with float scales and the percentile method."""
    config = _float_config(tmp_path, "pct.json", ASYM_UNSIGNED, method="percentile")
    calibrate(digits_mlp, digits[0][:200], tmp_path, quant_config_file=config)
    assert (tmp_path / "bias_corr.pth").is_file()
    quantizer = test_quantizer(digits_mlp, digits[2], tmp_path, quant_config_file=config)
    with torch.no_grad():
        assert _accuracy(quantizer.quant_model(digits[2]), digits[3]) >= _accuracy(digits_mlp(digits[2]), digits[3]) - 0.02


@pytest.mark.parametrize("overall", [{"method": "diffs"}, {"signed": False, "narrow_range": True}])
def test_config_checks_reject(overall, digits_mlp, digits, tmp_path):
    with pytest.raises(Exception, match="QUANT_CONFIG_CONFLICT"):
        calibrate(digits_mlp, digits[0][:100], tmp_path, quant_config_file=_float_config(tmp_path, "c.json", **overall))

"""Issue 8 for the CNN flow: every user mistake gets one catalogued error, and no run leaves
corrupt or partial files behind.

Each case asserts the exception type, the catalogue ID and that the directories involved hold
exactly what they held before (names and bytes, the versioned store of
`nndct_shared.export_commit` included). The LSTM flow's counterpart is
tests/pytorch_nndct/test_output_safety.py; kills during exports: tests/nndct_shared/test_export_kills.py.
"""
from __future__ import annotations

import ast
import copy
import io
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import models
from nndct_shared import atomic_io, export_commit
from nndct_shared.cnn_export import evaluate_xmodel
from nndct_shared.config import default_config
from nndct_shared.messages import (
    ArgumentError,
    DataError,
    ExportError,
    MissingFileError,
    ModelStructureError,
    ModelTypeError,
    NndctError,
    OutputDirError,
    QuantConfigError,
    QuantInfoError,
    QuantModeError,
    UnsupportedOpError,
    WorkflowError,
    XmodelFormatError,
    reset_warn_once,
)
from nndct_shared.output_dir import staged_export
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from quant_flow import calibrate, plain_config, test_quantizer
from helpers.fault_injection import fail_on_call
from helpers.output_tree import raw_tree, store_debris, visible_tree

CPU = torch.device("cpu")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _raises(msg_id: str, exc_type: type, fn, *args, **kwargs) -> NndctError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, NndctError), err
    assert err.msg_id == f"QUANTIZER_TORCH_{msg_id}", err
    text = str(err)
    assert text.startswith(f"[VAIQ_ERROR][QUANTIZER_TORCH_{msg_id}]: ") and text.count("Fix:") == 1
    return err


def _tree(root: Path) -> dict[str, bytes | str | None]:
    """Every path under root (relative) -> file bytes, link target or None for a directory,
    the versioned store included: equal trees mean nothing at all changed."""
    return raw_tree(root)


def _calib(model, digits, out: Path, **kwargs):
    return calibrate(model, digits[0][:200], out, **kwargs)


def _config(directory: Path, name: str, target: str = "CPU", **overall) -> str:
    data = default_config(8, target).to_dict()
    data["overall_quantize_config"].update(overall)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture(scope="module")
def cnn_export(digits_cnn, digits, tmp_path_factory):
    """A test-mode quantizer of the digits CNN after a forward of batch 1, and an export of it
    (xmodel + deploy check, ONNX, TorchScript) in `export`."""
    root = tmp_path_factory.mktemp("cnn_export")
    _calib(digits_cnn, digits, root / "q")
    quantizer = test_quantizer(digits_cnn, digits[2], root / "q")
    quantizer.quant_model(digits[2][:1])
    export = root / "export"
    quantizer.export_xmodel(str(export), deploy_check=True)
    quantizer.export_onnx_model(str(export))
    quantizer.export_torch_script(str(export))
    return quantizer, export


# --- test mode and its calibration result ---------------------------------------------------------


def test_test_mode_without_calibration_writes_nothing(digits_mlp, digits, tmp_path):
    _raises("NO_CALIB_RESULT", MissingFileError, test_quantizer, digits_mlp, digits[2], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    _raises("NO_CALIB_RESULT", MissingFileError, test_quantizer, digits_mlp, digits[2], tmp_path / "empty")
    assert _tree(tmp_path) == {"empty": None}


@pytest.mark.parametrize(
    ("text", "msg_id"),
    [
        (b"", "QUANT_INFO_CORRUPT"),
        (b"\xff\xfe{}", "QUANT_INFO_CORRUPT"),
        (b'{"param": {', "QUANT_INFO_CORRUPT"),
        (b'{"param": {}, "output": {}}', "QUANT_INFO_CORRUPT"),
        (b'{"param": {"DigitsMLP::l1.weight": [99, 3]}, "output": {}, "input": {}}', "QUANT_INFO_CORRUPT"),
        (b'{"param": {}, "output": {}, "input": {}}', "CALIB_RESULT_MISMATCH"),
    ],
    ids=["empty", "not-utf8", "truncated", "missing-key", "bad-entry", "empty-sections"],
)
def test_test_mode_with_a_bad_quant_info_leaves_the_directory_alone(digits_mlp, digits, tmp_path, text, msg_id):
    _calib(digits_mlp, digits, tmp_path)
    (tmp_path / "quant_info.json").write_bytes(text)
    before = _tree(tmp_path)
    _raises(msg_id, QuantInfoError, test_quantizer, digits_mlp, digits[2], tmp_path)
    assert _tree(tmp_path) == before


def test_test_mode_with_another_models_calibration_writes_nothing(digits_mlp, digits_cnn, digits, tmp_path):
    """The CNN's result in the directory: the MLP's test mode refuses it before it writes its
    own DigitsMLP.py next to it."""
    _calib(digits_cnn, digits, tmp_path)
    before = _tree(tmp_path)
    err = _raises("CALIB_RESULT_MISMATCH", QuantInfoError, test_quantizer, digits_mlp, digits[2], tmp_path)
    assert "'DigitsMLP::l1.weight'" in str(err)
    assert _tree(tmp_path) == before and "DigitsMLP.py" not in before


def test_test_mode_with_other_bit_widths_than_calibration(digits_mlp, digits, tmp_path):
    """quant_info.json records each tensor's bit width; a test run configured differently must
    not silently quantize 4-bit fix positions to 8 bits."""
    config = _config(tmp_path / "cfg", "bw4.json", bit_width=4)
    out = tmp_path / "out"
    _calib(digits_mlp, digits, out, quant_config_file=config)
    before = _tree(out)
    err = _raises("QUANT_CONFIG_MISMATCH", QuantConfigError, test_quantizer, digits_mlp, digits[2], out)
    assert "bit width of 'DigitsMLP::l1.weight' (8 now, 4 at calibration)" in str(err)
    assert _tree(out) == before
    assert test_quantizer(digits_mlp, digits[2], out, quant_config_file=config).runtime.fix_pos


# --- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["train", "", None, 3, "CALIB", "float"])
def test_unknown_quant_mode_writes_nothing(digits_mlp, digits, tmp_path, mode):
    _raises("QUANT_MODE", QuantModeError, torch_quantizer, mode, digits_mlp, digits[0][:4],
            output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", [models.DigitsMLP, {"l1.weight": torch.zeros(2)}, None],
                         ids=["class", "state-dict", "none"])
def test_non_module_writes_nothing(digits, tmp_path, module):
    _raises("MODULE_TYPE", ModelTypeError, torch_quantizer, "calib", module, digits[0][:4],
            output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bitwidth", [1, 17, 0, -8, True, 8.0, "8"])
def test_bad_bit_widths(digits_mlp, digits, tmp_path, bitwidth):
    _raises("ILLEGAL_BITWIDTH", QuantConfigError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
            output_dir=str(tmp_path / "out"), bitwidth=bitwidth, device=CPU)
    assert list(tmp_path.iterdir()) == []


def test_bad_bit_width_in_a_config_file(digits_mlp, digits, tmp_path):
    config = _config(tmp_path, "bw1.json", bit_width=1)
    err = _raises("ILLEGAL_BITWIDTH", QuantConfigError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
                  output_dir=str(tmp_path / "out"), quant_config_file=config, device=CPU)
    assert "'overall_quantize_config.bit_width'" in str(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bw1.json"]


def test_missing_input_args_writes_nothing(digits_mlp, tmp_path):
    _raises("CNN_NO_INPUT_ARGS", DataError, torch_quantizer, "calib", digits_mlp,
            output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


# --- config files ------------------------------------------------------------------------------------


def test_missing_config_file_writes_nothing(digits_mlp, digits, tmp_path):
    err = _raises("QUANT_CONFIG_FILE_MISSING", MissingFileError, torch_quantizer, "calib", digits_mlp,
                  digits[0][:4], output_dir=str(tmp_path / "out"), quant_config_file=str(tmp_path / "no.json"),
                  device=CPU)
    assert "no.json" in str(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("overall", "target", "msg_id"),
    [
        ({"per_channel": True}, "CPU", "QUANT_CONFIG_CONFLICT"),  # per-channel activations
        ({"bit_width": 4}, "DPU", "QUANT_CONFIG_TARGET"),  # the DPU computes in int8
        ({"method": "nearest"}, "CPU", "QUANT_CONFIG_VALUE"),
    ],
    ids=["conflict", "target", "value"],
)
def test_conflicting_config_file_writes_nothing(digits_mlp, digits, tmp_path, overall, target, msg_id):
    config = _config(tmp_path, "c.json", target, **overall)
    _raises(msg_id, QuantConfigError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
            output_dir=str(tmp_path / "out"), quant_config_file=config, device=CPU)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_bitwidth_argument_and_config_file_disagree(digits_mlp, digits, tmp_path, caplog):
    """The guide's BITWIDTH_MISMATCH warning; the file's bit width is used."""
    config = _config(tmp_path / "cfg", "bw4.json", bit_width=4)
    with caplog.at_level(logging.WARNING, logger="nndct"):
        q = torch_quantizer("calib", digits_mlp, digits[0][:4], output_dir=str(tmp_path / "out"),
                            bitwidth=8, quant_config_file=config, device=CPU)
    assert "[QUANTIZER_TORCH_BITWIDTH_MISMATCH]" in caplog.text
    assert "configuration file (4) differs from the bitwidth argument (8)" in caplog.text
    assert {s.bit_width for s in q.settings.values()} == {4}


# --- state_dict_file -----------------------------------------------------------------------------------


def test_missing_state_dict_file_writes_nothing(digits, tmp_path):
    _raises("STATE_DICT_MISSING", MissingFileError, torch_quantizer, "calib", models.DigitsMLP(), digits[0][:4],
            state_dict_file=str(tmp_path / "none.pth"), output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


def _pickled_model(path: Path) -> None:
    torch.save(models.DigitsMLP(), path)  # a whole pickled model: refused by weights_only=True


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint"), "cannot be read with torch.load(weights_only=True)"),
        (lambda p: p.write_bytes(b""), "cannot be read with torch.load(weights_only=True)"),
        (_pickled_model, "cannot be read with torch.load(weights_only=True)"),
        (lambda p: torch.save([torch.zeros(2)], p), "holds a list"),
        (lambda p: torch.save(models.DigitsCNN().state_dict(), p), "missing keys 'l1.bias'"),
        (lambda p: torch.save({**models.DigitsMLP().state_dict(), "l1.weight": torch.zeros(32, 63)}, p),
         "keys of another shape 'l1.weight'"),
    ],
    ids=["garbage", "empty", "pickled-model", "list", "other-model", "other-shape"],
)
def test_bad_state_dict_file_leaves_the_model_and_directory_alone(digits, tmp_path, write, reason):
    path = tmp_path / "w.pth"
    write(path)
    model = models.DigitsMLP()
    weights = copy.deepcopy(model.state_dict())
    err = _raises("STATE_DICT_INVALID", ArgumentError, torch_quantizer, "calib", model, digits[0][:4],
                  state_dict_file=str(path), output_dir=str(tmp_path / "out"), device=CPU)
    assert reason in str(err)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]


def test_state_dict_file_is_loaded(digits_mlp, digits, tmp_path):
    torch.save(digits_mlp.state_dict(), tmp_path / "w.pth")
    fresh = models.DigitsMLP()
    torch_quantizer("calib", fresh, digits[0][:4], state_dict_file=str(tmp_path / "w.pth"),
                    output_dir=str(tmp_path / "out"), device=CPU)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in digits_mlp.state_dict().items())


# --- calibration data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_calibration_data_is_skipped_and_poisons_nothing(digits_mlp, digits, tmp_path, value, caplog):
    """NaN/inf in the data given to quant_model (the guide's TENSOR_VALUE_INVALID: "Quantization
    for this tensor is ignored"): the warning names the input, the batch still runs, but no
    observer sees it and it is not kept for bias correction, so the result is exactly that of a
    calibration that never saw the bad batch (bias correction on: the default config)."""
    reset_warn_once()
    x = digits[0][:200]
    bad = x[:100].clone()
    bad[7, 0, 3, 4] = value
    q = torch_quantizer("calib", digits_mlp, x[:100], output_dir=str(tmp_path / "a"), device=CPU)
    q.quant_model(x[:100])
    before = _tree(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nndct"):
        out = q.quant_model(bad)
    assert "[QUANTIZER_TORCH_TENSOR_VALUE_INVALID]: Tensor 'DigitsMLP::nndct_input_0' has inf or nan" in caplog.text
    assert out.shape == (100, 10) and bool(torch.isfinite(out[:7]).all())  # the other samples run
    assert _tree(tmp_path) == before and q.runtime.skipped_forwards == 1
    q.quant_model(x[100:200])
    q.export_quant_config()
    _calib(digits_mlp, digits, tmp_path / "b")
    assert visible_tree(tmp_path / "a") == visible_tree(tmp_path / "b")


def test_calibration_without_one_clean_batch_fails_the_export(digits_mlp, digits, tmp_path):
    bad = digits[0][:100].clone()
    bad[0, 0, 0, 0] = float("nan")
    q = torch_quantizer("calib", digits_mlp, bad, output_dir=str(tmp_path), device=CPU)
    q.quant_model(bad)
    q.quant_model(bad)
    err = _raises("CALIB_DATA_NONFINITE", DataError, q.export_quant_config)
    assert "'DigitsMLP::nndct_input_0'" in str(err) and "contains 2 NaN/inf value(s)" in str(err)
    assert not (tmp_path / "quant_info.json").exists()


def test_test_mode_passes_nan_through_and_saturates_inf(digits_mlp, digits, tmp_path):
    """Test mode checks and skips nothing: NaN reaches the outputs of its own sample only, and
    +-inf saturates at the input's end codes, so its sample's outputs stay finite."""
    _calib(digits_mlp, digits, tmp_path)
    q = test_quantizer(digits_mlp, digits[2], tmp_path)
    x = digits[2][:4].clone()
    clean = q.quant_model(x)
    x[1, 0, 2, 2] = float("nan")
    x[2, 0, 2, 2] = float("inf")
    out = q.quant_model(x)
    assert bool(torch.isnan(out[1]).all()) and torch.equal(out[[0, 3]], clean[[0, 3]])
    assert bool(torch.isfinite(out[2]).all())
    saturated = x[2:3].clone()
    step = 2.0 ** -q.runtime.fix_pos["DigitsMLP::nndct_input_0"]
    saturated[0, 0, 2, 2] = 127 * step  # the input grid's largest code
    assert torch.equal(out[2:3], q.quant_model(saturated))


def test_non_finite_values_inside_the_model_fail_the_export_not_the_file(digits_mlp, digits, tmp_path, caplog):
    """A NaN that arises in the model (here a NaN bias): its tensors are skipped with a warning
    naming them, as the calibration observers do; a tensor that never saw finite data has no
    fix position, so export_quant_config raises instead of writing null into quant_info.json."""
    reset_warn_once()  # the warning is shown once per tensor and process
    model = copy.deepcopy(digits_mlp)
    with torch.no_grad():
        model.l3.bias[2] = float("nan")
    q = torch_quantizer("calib", model, digits[0][:100], output_dir=str(tmp_path), device=CPU)
    with caplog.at_level(logging.WARNING, logger="nndct"):
        q.quant_model(digits[0][:100])
    assert "[QUANTIZER_TORCH_TENSOR_VALUE_INVALID]: Tensor 'DigitsMLP::l3.bias' has inf or nan" in caplog.text
    before = _tree(tmp_path)
    err = _raises("CALIB_DATA_NONFINITE", DataError, q.export_quant_config)
    assert "'DigitsMLP::l3." in str(err)
    assert _tree(tmp_path) == before and not (tmp_path / "quant_info.json").exists()


@pytest.mark.parametrize("mode", ["calib", "test"])
def test_inputs_shaped_unlike_input_args(digits_mlp, digits, tmp_path, mode):
    """Only the batch dimension may differ from input_args; the checks run before the batch
    reaches the model, so nothing is observed or recorded."""
    _calib(digits_mlp, digits, tmp_path)
    q = test_quantizer(digits_mlp, digits[2], tmp_path) if mode == "test" else torch_quantizer(
        "calib", digits_mlp, digits[0][:4], output_dir=str(tmp_path), device=CPU)
    forwards = q.runtime.forwards
    err = _raises("SHAPE_MISMATCH", DataError, q.quant_model, torch.rand(2, 1, 10, 10))
    assert "argument 0 of quant_model ('DigitsMLP::nndct_input_0')" in str(err)
    assert "expected (N, 1, 8, 8) as in input_args (any batch size N), got (2, 1, 10, 10)" in str(err)
    _raises("SHAPE_MISMATCH", DataError, q.quant_model, torch.rand(2, 64))
    err = _raises("SHAPE_MISMATCH", DataError, q.quant_model, digits[0][:2], digits[0][:2])
    assert "expected 1 tensor(s) ('DigitsMLP::nndct_input_0'), got 2 argument(s)" in str(err)
    _raises("SHAPE_MISMATCH", DataError, q.quant_model)
    _raises("SHAPE_MISMATCH", DataError, q.quant_model, [digits[0][:2]])
    assert q.runtime.forwards == forwards
    assert q.quant_model(digits[0][:5]).shape == (5, 10)  # another batch size is fine


def test_test_input_args_of_another_shape_than_calibration(digits_mlp, digits, tmp_path):
    _calib(digits_mlp, digits, tmp_path)
    before = _tree(tmp_path)
    err = _raises("PYTORCH_TRACE", ModelStructureError, torch_quantizer, "test", digits_mlp,
                  torch.rand(1, 1, 10, 10), output_dir=str(tmp_path), device=CPU)
    assert "running the traced model on input_args failed" in str(err)
    assert _tree(tmp_path) == before


# --- exports at the wrong time -------------------------------------------------------------------


def test_exports_before_a_forward_or_in_the_wrong_mode_write_nothing(digits_mlp, digits, tmp_path):
    calib = torch_quantizer("calib", digits_mlp, digits[0][:4], output_dir=str(tmp_path / "q"), device=CPU)
    _raises("NO_CALIBRATION", WorkflowError, calib.export_quant_config)
    for export in (calib.export_xmodel, calib.export_onnx_model, calib.export_torch_script):
        _raises("EXPORT_MODE", ExportError, export, str(tmp_path / "x"))
    calib.quant_model(digits[0][:100])
    calib.export_quant_config()
    test = test_quantizer(digits_mlp, digits[2], tmp_path / "q")
    before = _tree(tmp_path)
    _raises("EXPORT_MODE", ExportError, test.export_quant_config)
    for export in (test.export_xmodel, test.export_onnx_model, test.export_torch_script):
        _raises("NO_FORWARD", ExportError, export, str(tmp_path / "x"))
    _raises("NO_FORWARD", ExportError, test.export_xmodel, str(tmp_path / "x"), deploy_check=True)
    assert _tree(tmp_path) == before and not (tmp_path / "x").exists()


def test_xmodel_export_after_a_batch_larger_than_one(cnn_export, digits, tmp_path):
    quantizer, export = cnn_export
    before = _tree(export)
    quantizer.quant_model(digits[2][:4])
    try:
        err = _raises("XMODEL_BATCHSIZE", ExportError, quantizer.export_xmodel, str(export), deploy_check=True)
        assert "batch size 4" in str(err)
        _raises("XMODEL_BATCHSIZE", ExportError, quantizer.export_xmodel, str(tmp_path / "new"))
    finally:
        quantizer.quant_model(digits[2][:1])
    assert _tree(export) == before and list(tmp_path.iterdir()) == []


def test_test_mode_nan_reaches_the_output_and_the_dump_refuses_it(cnn_export, digits, tmp_path):
    """Test mode computes no statistic: NaN passes through the fix ops as in the float model.
    Its deploy-check data cannot be written (codes of NaN), which is caught before any file."""
    quantizer, _ = cnn_export
    x = digits[2][:1].clone()
    x[0, 0, 0, 0] = float("nan")
    try:
        assert torch.isnan(quantizer.quant_model(x)).all()
        err = _raises("EXPORT_XMODEL", ExportError, quantizer.export_xmodel, str(tmp_path / "x"), deploy_check=True)
        assert "deploy-check data cannot be written" in str(err) and "is not a 8-bit fixed-point" in str(err)
    finally:
        quantizer.quant_model(digits[2][:1])
    assert list(tmp_path.iterdir()) == []


def test_per_channel_exports_are_refused_before_any_file(digits_mlp, digits, tmp_path, caplog):
    """Per-channel weights are for CPU/GPU targets: export_xmodel() writes nothing for such a
    config (XMODEL_DEVICE), ONNX refuses them (one scale per tensor), TorchScript keeps them."""
    config = str(tmp_path / "cfg" / "pc.json")
    Path(config).parent.mkdir()
    data = default_config(8, "CPU").to_dict()
    data["tensor_quantize_config"] = {"weights": {"per_channel": True}}
    Path(config).write_text(json.dumps(data))
    _calib(digits_mlp, digits, tmp_path / "q", quant_config_file=config)
    test = test_quantizer(digits_mlp, digits[2], tmp_path / "q", quant_config_file=config)
    test.quant_model(digits[2][:1])
    with caplog.at_level(logging.WARNING, logger="nndct"):
        assert test.export_xmodel(str(tmp_path / "x")) is None
    assert "[QUANTIZER_TORCH_XMODEL_DEVICE]: The xmodel is not dumped because target_device is 'CPU'" in caplog.text
    err = _raises("EXPORT_UNSUPPORTED", UnsupportedOpError, test.export_onnx_model, str(tmp_path / "x"))
    assert "'DigitsMLP::l1.weight' is quantized per channel" in str(err)
    assert not (tmp_path / "x").exists()
    assert test.export_torch_script(str(tmp_path / "x")).is_file()


# --- unusable output directories ---------------------------------------------------------------


def test_output_dir_that_is_a_file(digits_mlp, digits, tmp_path):
    (tmp_path / "out").write_text("not a directory")
    err = _raises("OUTPUT_DIR", OutputDirError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
                  output_dir=str(tmp_path / "out"), device=CPU)
    assert isinstance(err, OSError) and f"output_dir '{tmp_path / 'out'}' cannot be used" in str(err)
    _raises("OUTPUT_DIR", OutputDirError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
            output_dir=str(tmp_path / "out" / "below"), device=CPU)
    assert _tree(tmp_path) == {"out": b"not a directory"}


def test_generated_module_path_blocked_by_a_directory(digits_mlp, digits, tmp_path):
    (tmp_path / "DigitsMLP.py").mkdir()
    err = _raises("OUTPUT_DIR", OutputDirError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
                  output_dir=str(tmp_path), device=CPU)
    assert "a directory of that name is in the way" in str(err)
    assert _tree(tmp_path) == {"DigitsMLP.py": None}


def test_new_output_dir_is_removed_again_when_the_write_fails(digits_mlp, digits, tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_io.os, "fsync", full_disk)
    err = _raises("OUTPUT_DIR", OutputDirError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
                  output_dir=str(tmp_path / "a" / "b"), device=CPU)
    assert "No space left on device" in str(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_read_only_output_dir(digits_mlp, digits, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        _raises("OUTPUT_DIR", OutputDirError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
                output_dir=str(out), device=CPU)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("export", ["export_xmodel", "export_onnx_model", "export_torch_script"])
def test_export_dir_that_is_a_file(cnn_export, tmp_path, export):
    quantizer, _ = cnn_export
    (tmp_path / "x").write_text("in the way")
    err = _raises("OUTPUT_DIR", OutputDirError, getattr(quantizer, export), str(tmp_path / "x"))
    assert f"output_dir '{tmp_path / 'x'}'" in str(err)
    assert _tree(tmp_path) == {"x": b"in the way"}


def test_deploy_check_blocked_by_a_file_writes_no_xmodel(cnn_export, tmp_path):
    """The dump directory's place is taken by a file: found while staging, so the xmodel of the
    same export is not written either."""
    quantizer, _ = cnn_export
    (tmp_path / "deploy_check_data_int").mkdir()
    (tmp_path / "deploy_check_data_int" / "DigitsCNN").write_text("a file")
    _raises("OUTPUT_DIR", OutputDirError, quantizer.export_xmodel, str(tmp_path), deploy_check=True)
    assert _tree(tmp_path) == {"deploy_check_data_int": None, "deploy_check_data_int/DigitsCNN": b"a file"}


# --- a failed export keeps the previous one ---------------------------------------------------


@pytest.fixture
def second_quantizer(digits_cnn, digits, tmp_path):
    """A test-mode quantizer of the digits CNN with other weights (so other files)."""
    model = copy.deepcopy(digits_cnn)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.75)
    _calib(model, digits, tmp_path / "qb")
    quantizer = test_quantizer(model, digits[2], tmp_path / "qb")
    quantizer.quant_model(digits[2][:1])
    return quantizer


@pytest.fixture
def first_export(cnn_export, tmp_path):
    """The module's export written again into a private directory (the tests below try to
    overwrite it)."""
    quantizer, export = cnn_export
    target = tmp_path / "export"
    quantizer.export_xmodel(str(target), deploy_check=True)
    quantizer.export_onnx_model(str(target))
    quantizer.export_torch_script(str(target))
    assert visible_tree(target).keys() == visible_tree(export).keys()
    return target, _tree(target)


def test_failure_while_staging_keeps_the_previous_export(first_export, second_quantizer, monkeypatch):
    export, before = first_export
    calls = fail_on_call(monkeypatch, atomic_io.os, "fsync", 1)  # the xmodel, staged before the dumps
    err = _raises("OUTPUT_DIR", OutputDirError, second_quantizer.export_xmodel, str(export), deploy_check=True)
    assert "No space left on device" in str(err) and calls == [1]
    assert _tree(export) == before  # same files, same bytes, no temporaries


@pytest.mark.parametrize(("name", "n"), [("rename", 1), ("rename", 2), ("symlink", 1), ("symlink", 2),
                                         ("replace", 1)],
                         ids=["staged-xmodel-to-object", "staged-dumps-to-object", "version-entry",
                              "another-version-entry", "the-switch"])
def test_failure_while_committing_restores_the_previous_export(first_export, second_quantizer, monkeypatch,
                                                               name, n):
    """Each file-system call of the commit fails once: the previous export stays as it was."""
    export, before = first_export
    calls = fail_on_call(monkeypatch, export_commit.os, name, n)
    _raises("OUTPUT_DIR", OutputDirError, second_quantizer.export_xmodel, str(export), deploy_check=True)
    assert len(calls) >= n
    assert _tree(export) == before


def test_failure_while_carrying_another_graphs_dumps_keeps_everything(first_export, second_quantizer,
                                                                      monkeypatch):
    """`deploy_check_data_int/` also holds another graph's dumps, carried (hard links) into the
    export's new `deploy_check_data_int/`: that failing leaves the directory as it was."""
    export, _ = first_export
    with staged_export(export) as unit:
        unit.write_bytes(export / "deploy_check_data_int" / "Other" / "x.bin", b"another graph")
    before = _tree(export)
    calls = fail_on_call(monkeypatch, export_commit.os, "link", 1)
    _raises("OUTPUT_DIR", OutputDirError, second_quantizer.export_xmodel, str(export), deploy_check=True)
    assert calls == [1] and _tree(export) == before


def test_export_that_fails_in_the_dumps_keeps_the_previous_xmodel(digits_cnn, digits, first_export):
    """A real failure, no patching: a 12-bit model's deploy-check codes cannot be dumped; its
    xmodel, built first, must not replace the previous one."""
    export, before = first_export
    out = export.parent / "q12"
    _calib(digits_cnn, digits, out, bitwidth=12)
    quantizer = test_quantizer(digits_cnn, digits[2], out, bitwidth=12)
    quantizer.quant_model(digits[2][:1])
    err = _raises("EXPORT_XMODEL", ExportError, quantizer.export_xmodel, str(export), deploy_check=True)
    assert "bit width 12 cannot be dumped" in str(err)
    assert _tree(export) == before
    quantizer.export_xmodel(str(out))  # without dumps the 12-bit xmodel is fine
    assert (out / "DigitsCNN_int.xmodel").is_file()


@pytest.mark.parametrize("export", ["export_onnx_model", "export_torch_script"])
def test_failed_single_file_export_keeps_the_previous_file(first_export, second_quantizer, monkeypatch, export):
    target, before = first_export
    fail_on_call(monkeypatch, atomic_io.os, "fsync", 1)
    _raises("OUTPUT_DIR", OutputDirError, getattr(second_quantizer, export), str(target))
    assert _tree(target) == before


def test_the_second_export_differs_when_it_succeeds(first_export, second_quantizer):
    """Guards the tests above: the second model's files really differ from the first's."""
    export, _ = first_export
    before = visible_tree(export)
    second_quantizer.export_xmodel(str(export), deploy_check=True)
    second_quantizer.export_onnx_model(str(export))
    second_quantizer.export_torch_script(str(export))
    after = visible_tree(export)
    assert after.keys() == before.keys()
    changed = {name for name in after if after[name] != before[name]}
    assert {"DigitsCNN_int.xmodel", "DigitsCNN_int.onnx", "DigitsCNN_int.pt"} <= changed
    assert "deploy_check_data_int/DigitsCNN/DigitsCNN__fc_weight.bin" in changed


# --- names never leave output_dir ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../escape", "/abs/escape", "1st.model", "__Hidden", "M" * 300, "class"],
                         ids=["dotdot", "absolute", "digit-and-dot", "dunder", "long", "keyword"])
def test_model_names_cannot_put_files_outside_output_dir(digits, tmp_path, name):
    """A class name comes from the user (type() accepts any string): the generated module, the
    exports and the dumps must stay inside their directories, with valid bounded names."""
    cls = type(name, (models.DigitsMLP,), {})
    torch.manual_seed(0)
    model = cls().eval()
    out = tmp_path / "out"
    calibrate(model, digits[0][:100], out)
    test = test_quantizer(model, digits[2], out)
    y = test.quant_model(digits[2][:1])
    written = [test.export_xmodel(str(out), deploy_check=True), test.export_onnx_model(str(out)),
               test.export_torch_script(str(out))]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    for path in [*written, *(out / name for name in visible_tree(out)), *out.rglob("*")]:
        assert path.resolve().is_relative_to(out.resolve())
        assert len(path.name.encode()) <= 255
    assert not [name for name in visible_tree(out) if Path(name).name.startswith(".")]
    assert store_debris(out) == []  # no temporary left
    assert len([p for p in out.iterdir() if p.suffix == ".py"]) == 1
    assert torch.equal(torch.jit.load(str(written[2]))(digits[2][:1]), y)
    assert len(read_xmodel(written[0])) > 0


# --- the xmodel reader ------------------------------------------------------------------------------


def test_truncated_or_foreign_xmodel_is_refused_by_the_readers(cnn_export, tmp_path, digits):
    quantizer, export = cnn_export
    data = (export / "DigitsCNN_int.xmodel").read_bytes()
    x = digits[2][:1].numpy()
    cases = {f"cut{n}": data[:n] for n in (0, 1, 7, len(data) // 3, len(data) // 2, len(data) - 1)}
    cases["onnx"] = (export / "DigitsCNN_int.onnx").read_bytes()
    cases["torchscript"] = (export / "DigitsCNN_int.pt").read_bytes()
    cases["text"] = b"hello, this is not an xmodel\n"
    for label, payload in cases.items():
        path = tmp_path / f"{label}.xmodel"
        path.write_bytes(payload)
        err = _raises("XMODEL_INVALID", XmodelFormatError, read_xmodel, path)
        assert str(path) in str(err), label
        _raises("XMODEL_INVALID", XmodelFormatError, evaluate_xmodel, path, {"input_0": x})
    assert len(read_xmodel(export / "DigitsCNN_int.xmodel")) > 0


# --- progress bars -------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_export_shows_transient_progress_bars_on_a_terminal(cnn_export, tmp_path, monkeypatch):
    pytest.importorskip("tqdm")
    quantizer, _ = cnn_export
    monkeypatch.delenv("NNDCT_NO_PROGRESS", raising=False)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    quantizer.export_xmodel(str(tmp_path), deploy_check=True)
    text = terminal.getvalue()
    assert "export xmodel DigitsCNN" in text and "dump DigitsCNN" in text and "node" in text
    monkeypatch.setenv("NNDCT_NO_PROGRESS", "1")
    terminal.seek(0)
    terminal.truncate()
    quantizer.export_xmodel(str(tmp_path), deploy_check=True)
    assert terminal.getvalue() == ""


def test_staged_exports_hold_the_quantized_model(cnn_export, digits):
    """The staged exports are complete: the dump of the last node holds the quantized model's
    output and the TorchScript module reproduces quant_model."""
    quantizer, export = cnn_export
    x = digits[2][:1]
    want = quantizer.quant_model(x)
    dump = export / "deploy_check_data_int" / "DigitsCNN" / "DigitsCNN__nndct_dense_10.bin"
    assert np.array_equal(np.fromfile(dump, dtype=np.float32), want.numpy().reshape(-1))
    assert torch.equal(torch.jit.load(str(export / "DigitsCNN_int.pt"))(x), want)


# --- issue 13: names that are code, processes that share output_dir, arguments ------------------


@pytest.mark.parametrize("breakout", ["\n", "\r", "\r\n", "\x0c\n"], ids=["newline", "cr", "crlf", "formfeed"])
def test_a_class_name_cannot_run_code_through_the_generated_module(digits, tmp_path, breakout):
    """Issue 13, item 1: the class name is in every node name, and node names are in comments
    of <Model>.py, which the quantizer builds quant_model from: a class name holding a line
    break and a statement must stay text, in the file and when the model is built."""
    marker = tmp_path / "ran"
    cls = type(f"Net{breakout}open({str(marker)!r}, 'w').write('x'){breakout}#", (models.DigitsMLP,), {})
    torch.manual_seed(0)
    out = tmp_path / "out"
    calibrate(cls().eval(), digits[0][:100], out)
    test = test_quantizer(cls().eval(), digits[2], out)
    test.quant_model(digits[2][:1])
    assert not marker.exists()
    (module,) = [p for p in out.iterdir() if p.suffix == ".py"]
    source = module.read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert [type(node).__name__ for node in tree.body] == ["Import", "Import", "Import", "ClassDef"]
    assert "open(\\x27" in source  # the node names are in the comments, escaped
    exec(compile(source, str(module), "exec"), {})  # importing the file runs no user text either
    assert not marker.exists()


class _WideMLP(nn.Module):
    """Another structure (other layer sizes, sigmoid) for a model of the same class name."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(64, 24)
        self.l2 = nn.Linear(24, 10)

    def forward(self, x):
        return self.l2(torch.sigmoid(self.l1(x.view(x.size(0), -1))))


def test_two_processes_with_same_named_models_each_run_their_own(digits, tmp_path):
    """Issue 13, item 2: two processes quantize different models that share the class name `Net`
    into one output_dir at the same time, again and again. Each must run its own model (the
    generated module is built from memory, not re-imported from the shared directory), and the
    directory must end with one complete result."""
    torch.manual_seed(0)
    models_by_kind = {"narrow": type("Net", (models.DigitsMLP,), {})().eval(),
                      "wide": type("Net", (_WideMLP,), {})().eval()}
    x = digits[0][:50]
    config = plain_config(tmp_path / "cfg")
    expected = {}
    for kind, model in models_by_kind.items():  # each model's output, quantized alone
        q = torch_quantizer("calib", model, x, output_dir=str(tmp_path / kind), device=CPU,
                            quant_config_file=config)
        expected[kind] = q.quant_model(x)
    shared = tmp_path / "shared"

    def run(kind: str) -> None:
        for _ in range(6):
            q = torch_quantizer("calib", models_by_kind[kind], x, output_dir=str(shared), device=CPU,
                                quant_config_file=config)
            if not torch.equal(q.quant_model(x), expected[kind]):
                os._exit(3)  # ran the other model
            q.export_quant_config()

    pids = []
    for kind in models_by_kind:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                torch.set_num_threads(1)
                run(kind)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 2
            os._exit(code)
        pids.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    assert statuses == [0, 0], statuses
    sources = {kind: (tmp_path / kind / "Net.py").read_bytes() for kind in models_by_kind}
    assert sources["narrow"] != sources["wide"] and (shared / "Net.py").read_bytes() in sources.values()
    assert store_debris(shared) == []
    names = set(json.loads((shared / "quant_info.json").read_text())["param"])
    assert names in ({"Net::l1.weight", "Net::l1.bias", "Net::l2.weight", "Net::l2.bias", "Net::l3.weight",
                      "Net::l3.bias"}, {"Net::l1.weight", "Net::l1.bias", "Net::l2.weight", "Net::l2.bias"})


def test_the_model_is_built_from_its_own_source_not_from_the_shared_file(digits, tmp_path, monkeypatch):
    """The race of issue 13, item 2 made certain: right after this quantizer writes `Net.py`,
    "another process" writes its own `Net.py` there. The model must still be this one."""
    from pytorch_nndct.qproc import cnn as cnn_flow

    torch.manual_seed(0)
    narrow, wide = type("Net", (models.DigitsMLP,), {})().eval(), type("Net", (_WideMLP,), {})().eval()
    x = digits[0][:50]
    expected = torch_quantizer("calib", narrow, x, output_dir=str(tmp_path / "alone"), device=CPU).quant_model(x)
    torch_quantizer("calib", wide, x, output_dir=str(tmp_path / "wide"), device=CPU)
    wide_source = (tmp_path / "wide" / "Net.py").read_text()
    real_write = cnn_flow.write_source

    def and_then_the_other_process(output_dir, class_name, source):
        path = real_write(output_dir, class_name, source)
        real_write(output_dir, class_name, wide_source)
        return path

    monkeypatch.setattr(cnn_flow, "write_source", and_then_the_other_process)
    shared = tmp_path / "shared"
    q = torch_quantizer("calib", narrow, x, output_dir=str(shared), device=CPU)
    assert (shared / "Net.py").read_text() == wide_source
    assert torch.equal(q.quant_model(x), expected)


@pytest.mark.parametrize(("value", "reason"), [
    (None, "NoneType"), (b"out", "bytes path"), (7, "a int"), ("out\0x", "NUL character"),
])
def test_output_dir_that_is_not_a_path(cnn_export, digits_mlp, digits, tmp_path, monkeypatch, value, reason):
    """Issue 13, item 9: OUTPUT_DIR for the quantizer's and for each export's output_dir."""
    monkeypatch.chdir(tmp_path)
    err = _raises("OUTPUT_DIR", OutputDirError, torch_quantizer, "calib", digits_mlp, digits[0][:4],
                  output_dir=value, device=CPU)
    assert reason in str(err)
    quantizer, _ = cnn_export
    for export in (quantizer.export_xmodel, quantizer.export_onnx_model, quantizer.export_torch_script):
        assert reason in str(_raises("OUTPUT_DIR", OutputDirError, export, value))
    assert list(tmp_path.iterdir()) == []


def test_unreadable_calibration_result(digits_mlp, digits, tmp_path, monkeypatch):
    """Issue 13, item 9: quant_info.json that cannot be read: CALIB_RESULT_UNREADABLE."""
    _calib(digits_mlp, digits, tmp_path)
    real_read = Path.read_bytes

    def denied(self):
        if self.name == "quant_info.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    before = _tree(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_bytes", denied)
        err = _raises("CALIB_RESULT_UNREADABLE", QuantInfoError, test_quantizer, digits_mlp, digits[2], tmp_path)
    assert "PermissionError" in str(err) and str(tmp_path / "quant_info.json") in str(err)
    assert _tree(tmp_path) == before

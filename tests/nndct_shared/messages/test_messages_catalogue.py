"""The catalogue: the guide's IDs are all there, IDs are unique, every entry renders, and each
error entry raises a typed exception that is also the natural built-in."""

from __future__ import annotations

import re

import pytest

from nndct_shared.messages import (
    CATALOGUE,
    ERROR_CLASSES,
    GUIDE_CODES,
    Frontend,
    Level,
    NndctError,
    all_messages,
    error,
    lookup,
    resolve_id,
    warn,
)

# The IDs of the user guide's "vai_q_pytorch message" tables.
GUIDE_WARNING_IDS = [
    "BATCHNORM_AFFINE", "BITWIDTH_MISMATCH", "CONVERT_XMODEL", "CUDA_UNAVAILABLE",
    "DATA_PARALLEL", "DEPLOY_MODEL", "DEVICE_MISMATCH", "EXPORT_XMODEL", "FINETUNE_IGNORED",
    "FLOAT_OP", "INSPECTOR_PATTERN", "LEAKYRELU", "MATPLOTLIB", "MEMORY_SHORTAGE", "NO_XIR",
    "REPLACE_RELU6", "REPLACE_SIGMOID", "REPLACE_SILU", "SHIFT_CHECK", "TENSOR_NOT_QUANTIZED",
    "TENSOR_TYPE_NOT_QUANTIZABLE", "TENSOR_VALUE_INVALID", "TORCH_VERSION", "XIR_MISMATCH",
    "XMODEL_DEVICE", "REUSED_MODULE", "DEPRECATED_ARGUMENT", "SCALE_VALUE",
]
GUIDE_ERROR_IDS = [
    "BIAS_CORRECTION", "CALIB_RESULT_MISMATCH", "EXPORT_ONNX", "EXPORT_XMODEL", "FAST_FINETUNE",
    "FIX_INPUT_TYPE", "ILLEGAL_BITWIDTH", "IMPORT_KERNEL", "NO_CALIB_RESULT", "NO_CALIBRATION",
    "NO_FORWARD", "OP_REGIST", "PYTORCH_TRACE", "QUANT_CONFIG", "SHAPE_MISMATCH",
    "TORCH_VERSION", "XMODEL_BATCHSIZE", "INSPECTOR_OUTPUT_FORMAT", "INSPECTOR_INPUT_FORMAT",
    "UNSUPPORTED_OPS", "TRACED_NOT_SUPPORT", "NO_SCRIPT_MODEL", "REUSED_MODULE",
    "DATA_PARALLEL_NOT_ALLOWED", "INPUT_NOT_QUANTIZED", "NOT_A_MODULE", "QAT_PROCESS_ERROR",
    "QAT_DEPLOYABLE_MODEL_ERROR", "XMODEL_DEVICE",
]
# Project errors the LSTM flow, the files and the config need (brief and spec §7).
PROJECT_ERROR_CODES = [
    "MODULE_TYPE", "NO_LSTM", "PACKED_LSTM_TRACE", "INITIAL_STATES", "ODD_BIAS_COUNT",
    "DEVICE_MISMATCH", "PARAM_NOT_QUANTIZED", "QUANT_INFO_CORRUPT", "QUANT_MODE",
    "CALIB_DATA_NONFINITE", "EXPORT_MODE", "QUANT_CONFIG_FILE_MISSING", "QUANT_CONFIG_MISMATCH",
    "STATE_DICT_MISSING", "OUTPUT_DIR", "XMODEL_INVALID", "QUANT_CONFIG_UNKNOWN_KEY",
    "QUANT_CONFIG_MISSING_KEY", "QUANT_CONFIG_TYPE", "QUANT_CONFIG_VALUE",
    "QUANT_CONFIG_CONFLICT", "QUANT_CONFIG_TARGET",
]
BUILTINS = (ValueError, TypeError, RuntimeError, NotImplementedError, OSError, ImportError)
RESERVED_FIELDS = {"frontend", "log", "once_key"}


@pytest.mark.parametrize("code", GUIDE_WARNING_IDS)
def test_guide_warning_ids_present(code: str) -> None:
    entry = CATALOGUE[Level.WARNING]["QUANTIZER_TORCH_" + code]
    assert entry.level is Level.WARNING and entry.code == code


@pytest.mark.parametrize("code", GUIDE_ERROR_IDS)
def test_guide_error_ids_present(code: str) -> None:
    assert CATALOGUE[Level.ERROR]["QUANTIZER_TORCH_" + code].exc_type is not None


@pytest.mark.parametrize("code", PROJECT_ERROR_CODES)
def test_project_error_ids_present(code: str) -> None:
    assert lookup(Level.ERROR, code).msg_id == "QUANTIZER_TORCH_" + code


def test_guide_codes_are_exactly_the_guides_tables_plus_tf_analogues() -> None:
    assert GUIDE_CODES == set(GUIDE_WARNING_IDS) | set(GUIDE_ERROR_IDS) | {"TF_VERSION", "TF_TRACE"}


def test_ids_are_unique_within_each_level_and_well_formed() -> None:
    for level in Level:
        ids = [e.msg_id for e in all_messages() if e.level is level]
        assert len(ids) == len(set(ids)) == len(CATALOGUE[level])
    for entry in all_messages():
        assert re.fullmatch(r"QUANTIZER_(TORCH|TF)_[A-Z0-9_]+", entry.msg_id)
        assert entry.msg_id == entry.frontend.id_prefix + entry.code


def test_codes_in_both_tables_are_the_guides() -> None:
    both = set(CATALOGUE[Level.WARNING]) & set(CATALOGUE[Level.ERROR])
    assert {i.removeprefix("QUANTIZER_TORCH_").removeprefix("QUANTIZER_TF_") for i in both} == {
        "EXPORT_XMODEL", "TORCH_VERSION", "TF_VERSION", "REUSED_MODULE", "XMODEL_DEVICE",
        "DEVICE_MISMATCH",
    }


def test_tf_analogues() -> None:
    errors = CATALOGUE[Level.ERROR]
    for code in ("QUANT_CONFIG", "CALIB_RESULT_MISMATCH", "NO_FORWARD", "MODULE_TYPE", "NO_LSTM",
                 "QUANT_CONFIG_CONFLICT", "XMODEL_BATCHSIZE"):
        assert "QUANTIZER_TF_" + code in errors
    for code in ("DATA_PARALLEL_NOT_ALLOWED", "TRACED_NOT_SUPPORT", "PYTORCH_TRACE",
                 "TORCH_VERSION", "PACKED_LSTM_TRACE", "ODD_BIAS_COUNT"):
        assert "QUANTIZER_TF_" + code not in errors
    for code in ("TF_VERSION", "TF_TRACE", "RECURRENT_ACTIVATION", "DUMP_BATCHSIZE"):
        assert "QUANTIZER_TF_" + code in errors
        assert "QUANTIZER_TORCH_" + code not in errors
    assert "keras.Model" in errors["QUANTIZER_TF_MODULE_TYPE"].template
    assert "torch.nn.Module" in errors["QUANTIZER_TORCH_MODULE_TYPE"].template


@pytest.mark.parametrize("entry", all_messages(), ids=lambda e: f"{e.level}:{e.msg_id}")
def test_every_entry_renders_with_its_fields(entry) -> None:
    names = entry.field_names()
    assert not names & RESERVED_FIELDS
    fields = {name: f"<<{name}>>" for name in names}
    text = entry.render_text(fields, strict=True)
    fix = entry.render_fix(fields, strict=True)
    assert "?>" not in text + fix and "{" not in text + fix
    for name in names:
        assert f"<<{name}>>" in text + fix
    assert entry.meaning
    if entry.level is Level.NOTE:
        assert entry.exc_type is None and entry.fix == ""
    elif entry.level is Level.WARNING:
        assert entry.exc_type is None
    else:
        assert fix, "every error says how to fix it"


@pytest.mark.parametrize(
    "entry", [e for e in all_messages() if e.level is Level.ERROR], ids=lambda e: e.msg_id
)
def test_every_error_raises_its_typed_exception(entry) -> None:
    fields = {name: "x" for name in entry.field_names()}
    exc = error(entry.msg_id, **fields)
    assert type(exc) is entry.exc_type
    assert isinstance(exc, NndctError) and isinstance(exc, BUILTINS)
    assert exc.msg_id == entry.msg_id
    assert str(exc).startswith(f"[VAIQ_ERROR][{entry.msg_id}]: ")
    assert str(exc).endswith(" Fix: " + exc.fix)
    with pytest.raises(entry.exc_type):
        raise exc


def test_every_error_class_is_used_and_also_a_builtin() -> None:
    used = {e.exc_type for e in all_messages() if e.exc_type is not None}
    assert used == set(ERROR_CLASSES)
    for cls in ERROR_CLASSES:
        assert issubclass(cls, NndctError) and issubclass(cls, BUILTINS)


def test_strict_rendering_reports_a_missing_field() -> None:
    entry = lookup("error", "QUANT_MODE")
    with pytest.raises(KeyError, match="QUANTIZER_TORCH_QUANT_MODE: field 'expected'"):
        entry.render_text({"value": "x"}, strict=True)


def test_lookup_by_code_or_id_and_frontend() -> None:
    assert resolve_id("NO_FORWARD") == "QUANTIZER_TORCH_NO_FORWARD"
    assert resolve_id("NO_FORWARD", "tf") == "QUANTIZER_TF_NO_FORWARD"
    assert resolve_id("QUANTIZER_TF_NO_FORWARD", Frontend.TORCH) == "QUANTIZER_TF_NO_FORWARD"
    assert lookup("error", "NO_FORWARD", "tensorflow").frontend is Frontend.TF


def test_lookup_errors_are_helpful() -> None:
    with pytest.raises(KeyError, match="no warning message 'QUANTIZER_TORCH_QUANT_MODE'.*"
                                       "it exists as: error"):
        warn("QUANT_MODE", value=1)
    with pytest.raises(KeyError, match="close error IDs: QUANTIZER_TORCH_NO_FORWARD"):
        error("NO_FORWAD")
    with pytest.raises(ValueError, match="unknown front end 'jax'"):
        lookup("error", "NO_FORWARD", "jax")

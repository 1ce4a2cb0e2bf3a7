"""warn / warn_once / note go through logging ("nndct"); error builds typed exceptions."""

from __future__ import annotations

import logging
import pickle
import threading

import pytest

from nndct_shared.messages import (
    DataError,
    KernelImportError,
    LOGGER_NAME,
    MissingFileError,
    ModelTypeError,
    NndctError,
    OutputDirError,
    QuantModeError,
    UnsupportedOpError,
    VaiqConsoleHandler,
    current_frontend,
    error,
    note,
    reset_warn_once,
    use_frontend,
    warn,
    warn_once,
)


@pytest.fixture(autouse=True)
def _fresh_once():
    reset_warn_once()
    yield
    reset_warn_once()


def records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER_NAME]


def test_logger_is_set_up_for_notes() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    assert logger.getEffectiveLevel() <= logging.INFO
    assert sum(isinstance(h, VaiqConsoleHandler) for h in logger.handlers) == 1


def test_warn_logs_a_warning_record(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    line = warn("BITWIDTH_MISMATCH", tensor="weights", config_bit_width=8, api_bit_width=16)
    (rec,) = records(caplog)
    assert rec.levelno == logging.WARNING
    assert rec.getMessage() == line == (
        "[VAIQ_WARN][QUANTIZER_TORCH_BITWIDTH_MISMATCH]: Bit width of weights in the "
        "configuration file (8) differs from the bitwidth argument (16); the configuration "
        "file's value is used. Fix: Pass the same bitwidth to the API as in the configuration "
        "file, or drop one of them."
    )
    assert rec.pathname == __file__  # attributed to the caller, not to the emitter


def test_note_by_text_by_code_and_with_fields(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    note("=>Calibration done.")
    note("INSPECT_START")
    note("XMODEL_WRITTEN", graph="g", path="/o/g_int.xmodel")
    note("Processed {n} batches", n=3)
    note("USE {braces} LITERALLY")
    assert [r.getMessage() for r in records(caplog)] == [
        "[VAIQ_NOTE]: =>Calibration done.",
        "[VAIQ_NOTE]: =>Start to inspect model...",
        "[VAIQ_NOTE]: =>Successfully converted 'g' to xmodel '/o/g_int.xmodel'",
        "[VAIQ_NOTE]: Processed 3 batches",
        "[VAIQ_NOTE]: USE {braces} LITERALLY",
    ]
    assert {r.levelno for r in records(caplog)} == {logging.INFO}


def test_note_with_an_unknown_full_id_is_a_bug() -> None:
    with pytest.raises(KeyError):
        note("QUANTIZER_TORCH_NOT_A_NOTE")


def test_warn_once_per_id_or_per_key(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    assert warn_once("TENSOR_TYPE_NOT_QUANTIZABLE", name="a", dtype="int64") is True
    assert warn_once("TENSOR_TYPE_NOT_QUANTIZABLE", name="b", dtype="int64") is False
    assert warn_once("TENSOR_VALUE_INVALID", once_key="x", name="x") is True
    assert warn_once("TENSOR_VALUE_INVALID", once_key="y", name="y") is True
    assert warn_once("TENSOR_VALUE_INVALID", once_key="x", name="x") is False
    assert len(records(caplog)) == 3
    reset_warn_once()
    assert warn_once("TENSOR_TYPE_NOT_QUANTIZABLE", name="c", dtype="bool") is True
    assert len(records(caplog)) == 4


def test_warn_once_is_thread_safe(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    threads = [threading.Thread(target=warn_once, args=("FLOAT_OP",), kwargs={"ops": ["x"]})
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(records(caplog)) == 1


def test_error_is_returned_not_logged(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    exc = error("QUANT_MODE", value="train", expected=["calib", "test"])
    assert records(caplog) == []
    assert isinstance(exc, QuantModeError) and isinstance(exc, ValueError)
    assert exc.msg_id == "QUANTIZER_TORCH_QUANT_MODE"
    assert exc.text == "Unknown quant_mode 'train'; expected one of calib, test."
    assert exc.fix.startswith("Use 'calib' to calibrate")
    assert exc.fields == {"value": "train", "expected": ["calib", "test"]}
    assert str(exc) == f"[VAIQ_ERROR][QUANTIZER_TORCH_QUANT_MODE]: {exc.text} Fix: {exc.fix}"


def test_error_can_also_be_logged(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    exc = error("NO_LSTM", log=True, module="Net")
    (rec,) = records(caplog)
    assert rec.levelno == logging.ERROR
    assert rec.getMessage() == str(exc)


@pytest.mark.parametrize(
    ("code", "fields", "cls", "builtin"),
    [
        ("MODULE_TYPE", {"got": "dict"}, ModelTypeError, TypeError),
        ("PACKED_LSTM_TRACE", {"module": "lstm"}, UnsupportedOpError, NotImplementedError),
        ("INITIAL_STATES", {"which": "h0", "got": 1, "module": "lstm", "expected": 2}, DataError,
         ValueError),
        ("OUTPUT_DIR", {"path": "/ro", "reason": "read-only"}, OutputDirError, OSError),
        ("NO_CALIB_RESULT", {"path": "q/quant_info.json"}, MissingFileError, FileNotFoundError),
        ("IMPORT_KERNEL", {"module": "nndct_shared._kernels", "reason": "r"}, KernelImportError,
         ImportError),
        ("ODD_BIAS_COUNT", {"module": "lstm", "count": 3}, NndctError, RuntimeError),
    ],
)
def test_errors_are_catchable_as_builtins_and_pickle(code, fields, cls, builtin) -> None:
    with pytest.raises(builtin) as info:
        raise error(code, **fields)
    exc = info.value
    assert isinstance(exc, cls)
    assert exc.msg_id == "QUANTIZER_TORCH_" + code
    assert f"[{exc.msg_id}]" in str(exc) and "Fix: " in str(exc)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert (str(back), back.msg_id, back.fix, back.fields) == (
        str(exc), exc.msg_id, exc.fix, exc.fields
    )


def test_calib_result_mismatch_lists_missing_and_unexpected_names() -> None:
    exc = error(
        "CALIB_RESULT_MISMATCH",
        path="quantize_result/quant_info.json",
        n_missing=2,
        missing=["P::h_next", "P::c_next"],
        n_unexpected=1,
        unexpected=["Other::input_0"],
    )
    assert exc.text == (
        "Calibration result 'quantize_result/quant_info.json' does not belong to this model: "
        "2 tensor(s) of the model are missing from it (P::h_next, P::c_next); 1 name(s) in it "
        "are not in the model (Other::input_0)."
    )


def test_frontend_scope_selects_the_id_prefix(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    assert current_frontend() == "torch"
    with use_frontend("tf") as fe:
        assert fe == "tf" and current_frontend() == "tf"
        exc = error("NO_LSTM", module="seq")
        warn("TENSOR_VALUE_INVALID", name="x")
        with use_frontend("torch"):
            assert error("NO_LSTM", module="m").msg_id == "QUANTIZER_TORCH_NO_LSTM"
        assert current_frontend() == "tf"
        with pytest.raises(KeyError):
            error("DATA_PARALLEL_NOT_ALLOWED", argument="module")  # torch only
    assert current_frontend() == "torch"
    assert exc.msg_id == "QUANTIZER_TF_NO_LSTM"
    assert "keras.layers.LSTM" in exc.fix
    assert records(caplog)[0].getMessage().startswith("[VAIQ_WARN][QUANTIZER_TF_TENSOR_VALUE")
    assert error("NO_LSTM", frontend="tf", module="m").msg_id == "QUANTIZER_TF_NO_LSTM"


def test_frontend_is_per_thread() -> None:
    seen = []
    with use_frontend("tf"):
        t = threading.Thread(target=lambda: seen.append(current_frontend()))
        t.start()
        t.join()
    assert seen == ["torch"]


def test_forgotten_field_does_not_hide_the_error() -> None:
    exc = error("STATE_DICT_MISSING")
    assert "state_dict_file '<path?>' does not exist." in str(exc)

"""The VAIQ line format: plain in logs and pipes, coloured on a terminal."""

from __future__ import annotations

import io
import logging

import pytest

from nndct_shared.messages import (
    Level,
    VaiqConsoleHandler,
    VaiqFormatter,
    format_line,
    lookup,
    render,
    stream_supports_color,
    warn,
)


class FakeTty(io.StringIO):
    """A terminal stand-in: like a real tty file, isatty() raises once closed."""

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return True


def test_plain_lines() -> None:
    assert format_line(Level.ERROR, "QUANTIZER_TORCH_X", "bad.") == (
        "[VAIQ_ERROR][QUANTIZER_TORCH_X]: bad."
    )
    assert format_line(Level.WARNING, "QUANTIZER_TF_Y", "hm.") == "[VAIQ_WARN][QUANTIZER_TF_Y]: hm."
    assert format_line(Level.NOTE, None, "ok") == "[VAIQ_NOTE]: ok"
    # Notes never show an ID, even when given one.
    assert format_line(Level.NOTE, "QUANTIZER_TORCH_Z", "ok") == "[VAIQ_NOTE]: ok"


def test_coloured_lines() -> None:
    assert format_line(Level.ERROR, "I", "t", color=True) == "\033[1;31m[VAIQ_ERROR][I]\033[0m: t"
    assert format_line(Level.WARNING, "I", "t", color=True) == "\033[1;33m[VAIQ_WARN][I]\033[0m: t"
    assert format_line(Level.NOTE, None, "t", color=True) == "\033[1;32m[VAIQ_NOTE]\033[0m: t"


def test_colour_only_on_a_terminal(monkeypatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert stream_supports_color(FakeTty()) is True
    assert stream_supports_color(io.StringIO()) is False
    assert stream_supports_color(None) is False
    closed = FakeTty()
    closed.close()
    assert stream_supports_color(closed) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert stream_supports_color(FakeTty()) is False


def test_render_shows_text_and_fix() -> None:
    line = render("warning", "TENSOR_VALUE_INVALID", name="lstm::h")
    assert line == (
        "[VAIQ_WARN][QUANTIZER_TORCH_TENSOR_VALUE_INVALID]: Tensor 'lstm::h' has inf or nan "
        "values; its quantization is skipped. Fix: Check the float model and its inputs for "
        "overflow or invalid data."
    )


def test_list_fields_are_joined_and_truncated() -> None:
    entry = lookup("warning", "TENSOR_NOT_QUANTIZED")
    assert entry.render_text({"names": ["a", "b"]}) == "These tensors are not quantized: a, b"
    assert entry.render_text({"names": []}) == "These tensors are not quantized: none"
    many = [f"t{i}" for i in range(13)]
    assert entry.render_text({"names": many}).endswith("t8, t9, ... and 3 more")
    assert entry.render_text({"names": {"z", "a"}}) == "These tensors are not quantized: a, z"


def test_missing_field_is_shown_not_raised() -> None:
    assert lookup("warning", "TENSOR_NOT_QUANTIZED").render_text({}) == (
        "These tensors are not quantized: <names?>"
    )


def _console(stream) -> tuple[logging.Logger, VaiqConsoleHandler]:
    handler = VaiqConsoleHandler(stream, defer_to_root=False)
    logger = logging.getLogger("nndct")
    logger.addHandler(handler)
    return logger, handler


@pytest.mark.parametrize(("stream_cls", "coloured"), [(FakeTty, True), (io.StringIO, False)])
def test_console_handler_colours_terminals_only(monkeypatch, stream_cls, coloured) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = stream_cls()
    logger, handler = _console(stream)
    try:
        warn("REPLACE_RELU6", node="m.act")
    finally:
        logger.removeHandler(handler)
    plain = (
        "[VAIQ_WARN][QUANTIZER_TORCH_REPLACE_RELU6]: ReLU6 'm.act' has been replaced by ReLU. "
        "Fix: Set convert_relu6_to_relu to false in the quantization config to keep ReLU6."
    )
    expected = plain.replace(
        "[VAIQ_WARN][QUANTIZER_TORCH_REPLACE_RELU6]",
        "\033[1;33m[VAIQ_WARN][QUANTIZER_TORCH_REPLACE_RELU6]\033[0m",
    ) if coloured else plain
    assert stream.getvalue() == expected + "\n"


def test_console_handler_defers_to_an_application_root_handler(monkeypatch) -> None:
    stream = io.StringIO()
    handler = VaiqConsoleHandler(stream)  # defer_to_root=True
    logger = logging.getLogger("nndct")
    logger.addHandler(handler)
    try:
        monkeypatch.setattr(logging.getLogger(), "handlers", [logging.NullHandler()])
        warn("REPLACE_RELU6", node="a")
        assert stream.getvalue() == ""
        monkeypatch.setattr(logging.getLogger(), "handlers", [])
        warn("REPLACE_RELU6", node="b")
        assert stream.getvalue().startswith("[VAIQ_WARN][QUANTIZER_TORCH_REPLACE_RELU6]: ReLU6 'b'")
    finally:
        logger.removeHandler(handler)


def test_default_stream_is_the_current_stderr(capsys, monkeypatch) -> None:
    handler = VaiqConsoleHandler(defer_to_root=False)
    logger = logging.getLogger("nndct")
    logger.addHandler(handler)
    try:
        warn("REPLACE_SILU", node="s")
    finally:
        logger.removeHandler(handler)
    assert "[VAIQ_WARN][QUANTIZER_TORCH_REPLACE_SILU]: SiLU 's'" in capsys.readouterr().err


def test_formatter_passes_other_records_through() -> None:
    record = logging.LogRecord("nndct", logging.INFO, __file__, 1, "plain %s", ("text",), None)
    assert VaiqFormatter(color=True).format(record) == "plain text"

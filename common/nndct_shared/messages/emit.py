"""Emitting catalogue messages: `warn`, `warn_once`, `note` log through Python `logging`
(logger ``"nndct"``); `error` builds the typed exception for the caller to raise.

Logging set-up, and why: the reference tool always printed its VAIQ lines to the screen, so the
``nndct`` logger gets a `VaiqConsoleHandler` (stderr, coloured on a terminal) and level INFO, so
notes show by default. Records still propagate to the root logger, so an application that
configured logging (or pytest's ``caplog``) receives them; in that case the console handler
stays quiet (``defer_to_root``) to avoid printing every line twice. Silence the quantizer with
``logging.getLogger("nndct").setLevel(logging.ERROR)``.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Hashable
from typing import IO, Any

from .catalogue import lookup
from .entry import Frontend, Level, _Lenient
from .errors import NndctError
from .formatting import (
    RECORD_BODY,
    RECORD_ID,
    RECORD_LEVEL,
    VaiqFormatter,
    body,
    format_line,
    stream_supports_color,
)

LOGGER_NAME = "nndct"
logger = logging.getLogger(LOGGER_NAME)

_LOG_LEVELS = {Level.ERROR: logging.ERROR, Level.WARNING: logging.WARNING, Level.NOTE: logging.INFO}
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")

_warned_lock = threading.Lock()
_warned: set[tuple[str, Hashable]] = set()


class VaiqConsoleHandler(logging.StreamHandler):
    """Prints catalogue records to a stream (default: the *current* ``sys.stderr``).

    The stream is looked up at emit time when none is given, so redirections of sys.stderr
    (pytest's capsys, notebooks) are honoured. With `defer_to_root`, the handler prints nothing
    while the root logger has handlers, i.e. when the application already shows log records.
    """

    def __init__(self, stream: IO[str] | None = None, *, defer_to_root: bool = True) -> None:
        super().__init__(stream)
        self._own_stream = stream
        self.defer_to_root = defer_to_root
        self.setFormatter(VaiqFormatter())

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return self._own_stream if self._own_stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: IO[str] | None) -> None:
        self._own_stream = value

    def filter(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if self.defer_to_root and logging.getLogger().handlers:
            return False
        return bool(super().filter(record))

    def format(self, record: logging.LogRecord) -> str:
        formatter = self.formatter
        if isinstance(formatter, VaiqFormatter):
            formatter.color = stream_supports_color(self.stream)
        return super().format(record)


def install_console_handler() -> VaiqConsoleHandler:
    """Attach the console handler to the ``nndct`` logger once; return the attached one."""
    for handler in logger.handlers:
        if isinstance(handler, VaiqConsoleHandler):
            return handler
    handler = VaiqConsoleHandler()
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler


def _log(level: Level, msg_id: str | None, text: str) -> str:
    line = format_line(level, msg_id, text)
    logger.log(
        _LOG_LEVELS[level],
        line,
        extra={RECORD_LEVEL: level.value, RECORD_ID: msg_id, RECORD_BODY: text},
        stacklevel=3,
    )
    return line


def render(
    level: Level | str, msg_id: str, /, *, frontend: Frontend | str | None = None, **fields: Any
) -> str:
    """The plain line an entry would print (no logging, no colour), e.g. for reports."""
    entry = lookup(level, msg_id, frontend)
    return format_line(entry.level, entry.msg_id, body(entry.render_text(fields),
                                                        entry.render_fix(fields)))


def warn(msg_id: str, /, *, frontend: Frontend | str | None = None, **fields: Any) -> str:
    """Log warning `msg_id` (full ID or code) with `fields`; return the plain line."""
    entry = lookup(Level.WARNING, msg_id, frontend)
    return _log(Level.WARNING, entry.msg_id,
                body(entry.render_text(fields), entry.render_fix(fields)))


def warn_once(
    msg_id: str,
    /,
    *,
    once_key: Hashable = None,
    frontend: Frontend | str | None = None,
    **fields: Any,
) -> bool:
    """Like `warn`, but only the first time per process for (ID, `once_key`).

    With the default `once_key` None the warning shows once per ID whatever its fields; pass
    e.g. the tensor name as `once_key` to warn once per tensor. Returns True if it was logged.
    """
    entry = lookup(Level.WARNING, msg_id, frontend)
    with _warned_lock:
        seen_key = (entry.msg_id, once_key)
        if seen_key in _warned:
            return False
        _warned.add(seen_key)
    _log(Level.WARNING, entry.msg_id, body(entry.render_text(fields), entry.render_fix(fields)))
    return True


def reset_warn_once() -> None:
    """Forget which `warn_once` warnings were shown (for tests and long-lived sessions)."""
    with _warned_lock:
        _warned.clear()


def note(text_or_id: str, /, *, frontend: Frontend | str | None = None, **fields: Any) -> str:
    """Log a note; return the plain line.

    `text_or_id` is either a note entry's code/ID (rendered from its template) or free text,
    which is used as is, or formatted with `fields` when fields are given.
    """
    if _CODE_RE.match(text_or_id):
        try:
            entry = lookup(Level.NOTE, text_or_id, frontend)
        except KeyError:
            if text_or_id.startswith("QUANTIZER_"):
                raise
        else:
            return _log(Level.NOTE, None, entry.render_text(fields))
    text = text_or_id.format_map(_Lenient(fields)) if fields else text_or_id
    return _log(Level.NOTE, None, text)


def error(
    msg_id: str, /, *, frontend: Frontend | str | None = None, log: bool = False, **fields: Any
) -> NndctError:
    """The exception for error `msg_id`, of the class its catalogue entry names.

    Use it as ``raise error("CODE", field=value)``.

    Its message is ``[VAIQ_ERROR][ID]: text Fix: hint``; ``.msg_id``, ``.text``, ``.fix`` and
    ``.fields`` hold the parts. With `log` the line is also logged at ERROR level (for flows
    that report and then carry on or exit).
    """
    entry = lookup(Level.ERROR, msg_id, frontend)
    text = entry.render_text(fields)
    fix = entry.render_fix(fields)
    message = format_line(Level.ERROR, entry.msg_id, body(text, fix))
    assert entry.exc_type is not None, f"error entry {entry.msg_id} has no exception class"
    exc = entry.exc_type(message, msg_id=entry.msg_id, text=text, fix=fix, fields=fields)
    if log:
        _log(Level.ERROR, entry.msg_id, body(text, fix))
    return exc


install_console_handler()

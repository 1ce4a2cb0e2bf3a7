"""The on-screen form of a message: ``[VAIQ_ERROR][ID]: text``, ``[VAIQ_WARN][ID]: text``,
``[VAIQ_NOTE]: text`` (the user guide's format), coloured only on a terminal.

Colour is decided per stream: a terminal gets ANSI colours (red errors, yellow warnings, green
notes, as the reference tool); files, pipes and log collectors get plain text so that logs stay
grep-able. The ``NO_COLOR`` environment variable (https://no-color.org) turns colour off.
"""

from __future__ import annotations

import logging
import os
from typing import IO, Any

from .entry import Level

#: Tag printed for each level.
TAGS: dict[Level, str] = {
    Level.ERROR: "VAIQ_ERROR",
    Level.WARNING: "VAIQ_WARN",
    Level.NOTE: "VAIQ_NOTE",
}

#: ANSI colour of each level's prefix.
COLORS: dict[Level, str] = {
    Level.ERROR: "\033[1;31m",
    Level.WARNING: "\033[1;33m",
    Level.NOTE: "\033[1;32m",
}
RESET = "\033[0m"

#: Separator between the message text and its "how to fix" hint.
FIX_SEPARATOR = " Fix: "

# Attributes a record emitted through the catalogue carries, so formatters can re-render it.
RECORD_LEVEL = "vaiq_level"
RECORD_ID = "vaiq_id"
RECORD_BODY = "vaiq_body"


def prefix(level: Level, msg_id: str | None) -> str:
    """``[VAIQ_WARN][ID]`` for errors and warnings, ``[VAIQ_NOTE]`` for notes (no ID shown)."""
    tag = f"[{TAGS[level]}]"
    if level is Level.NOTE or not msg_id:
        return tag
    return f"{tag}[{msg_id}]"


def body(text: str, fix: str = "") -> str:
    """The message text followed by the fix hint, when there is one."""
    return f"{text}{FIX_SEPARATOR}{fix}" if fix else text


def format_line(level: Level, msg_id: str | None, text: str, *, color: bool = False) -> str:
    """One message line; with `color` the prefix is wrapped in the level's ANSI colour."""
    head = prefix(level, msg_id)
    if color:
        head = f"{COLORS[level]}{head}{RESET}"
    return f"{head}: {text}"


def stream_supports_color(stream: IO[Any] | None) -> bool:
    """True when `stream` is an interactive terminal and NO_COLOR is not set."""
    if stream is None or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed or detached stream
        return False


class VaiqFormatter(logging.Formatter):
    """Renders catalogue records as VAIQ lines; other records fall back to ``%(message)s``.

    `color` None means "decide from the handler's stream" (set by `VaiqConsoleHandler`).
    """

    def __init__(self, color: bool = False) -> None:
        super().__init__("%(message)s")
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        level = getattr(record, RECORD_LEVEL, None)
        if level is None:
            return super().format(record)
        line = format_line(
            Level(level), getattr(record, RECORD_ID, None), getattr(record, RECORD_BODY, ""),
            color=self.color,
        )
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line

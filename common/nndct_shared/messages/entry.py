"""One catalogue entry (`MessageDef`) and how its template is rendered.

Templates are ``str.format`` strings with named fields only. Rendering is lenient by default:
a field the caller forgot shows up as ``<name?>`` instead of raising ``KeyError``, because a
``KeyError`` thrown while reporting an error would hide the real problem. Tests render every
entry with ``strict=True`` to catch template/field mistakes early.

Sequence values (lists, tuples, sets) are shown as a comma-separated list, truncated after
`MAX_LISTED` items, so callers can pass e.g. the missing tensor names directly. Text longer than
`MAX_FIELD_CHARS` (a 10 MB module name, a huge path) is cut in the middle, so that a message stays
a line one can read; the exception's ``fields`` keep the full values.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .errors import NndctError

#: How many items of a list field are shown before "... and N more".
MAX_LISTED = 10
#: Longest text a field shows; longer text keeps its start and end around "...".
MAX_FIELD_CHARS = 1000


class Level(str, Enum):
    """Severity of a message: errors stop the flow, warnings and notes are only logged."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    def __str__(self) -> str:
        return self.value


class Frontend(str, Enum):
    """Which framework front end a message ID belongs to; it picks the ID prefix."""

    TORCH = "torch"
    TF = "tf"

    def __str__(self) -> str:
        return self.value

    @property
    def id_prefix(self) -> str:
        """``QUANTIZER_TORCH_`` or ``QUANTIZER_TF_``: the prefix of every ID of this front end."""
        return "QUANTIZER_TORCH_" if self is Frontend.TORCH else "QUANTIZER_TF_"


@dataclass(frozen=True)
class MessageDef:
    """A catalogue entry.

    Attributes:
        msg_id: full ID, e.g. ``QUANTIZER_TORCH_NO_FORWARD``.
        code: the ID without the front-end prefix (``NO_FORWARD``); the same code names the
            analogous entry of the other front end.
        level: error, warning or note.
        frontend: torch or tf.
        meaning: what the message means, in the words of the user guide where it has the ID.
        template: the message text with ``{field}`` placeholders.
        fix: the "how to fix" hint, also a template ("" for notes).
        exc_type: the exception class raised for an error entry; None for warnings and notes.
    """

    msg_id: str
    code: str
    level: Level
    frontend: Frontend
    meaning: str
    template: str
    fix: str
    exc_type: type[NndctError] | None = None

    def field_names(self) -> frozenset[str]:
        """Names of the fields used by the template and the fix."""
        return frozenset(_field_names(self.template)) | frozenset(_field_names(self.fix))

    def render_text(self, fields: Mapping[str, Any], *, strict: bool = False) -> str:
        """The message text with `fields` filled in."""
        return _render(self.template, fields, strict=strict, msg_id=self.msg_id)

    def render_fix(self, fields: Mapping[str, Any], *, strict: bool = False) -> str:
        """The fix hint with `fields` filled in ("" if the entry has none)."""
        return _render(self.fix, fields, strict=strict, msg_id=self.msg_id)


def _field_names(template: str) -> Iterable[str]:
    for _literal, field, _spec, _conv in string.Formatter().parse(template):
        if field is None:
            continue
        # "a.b" / "a[0]" use field "a"; positional fields are not allowed in the catalogue.
        base = field.split(".", 1)[0].split("[", 1)[0]
        yield base


class _Lenient(dict):
    """Fields mapping that renders a forgotten field as ``<name?>``."""

    def __missing__(self, key: str) -> str:
        return f"<{key}?>"


def clip_text(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """`text`, or its start and end around a note of how much was left out when it is longer
    than `limit` characters."""
    if len(text) <= limit:
        return text
    head, tail = (limit * 3) // 4, limit // 8
    return f"{text[:head]}...[{len(text) - head - tail} more characters]...{text[len(text) - tail:]}"


def _display(value: Any) -> Any:
    """Turn collections into a readable comma-separated list and clip long text (also inside a
    list); keep everything else."""
    if isinstance(value, str):
        return clip_text(value)
    if isinstance(value, bytes) or not isinstance(value, (list, tuple, set, frozenset)):
        return value
    items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    if not items:
        return "none"
    shown = ", ".join(clip_text(str(v)) for v in items[:MAX_LISTED])
    rest = len(items) - MAX_LISTED
    return clip_text(f"{shown}, ... and {rest} more" if rest > 0 else shown, MAX_LISTED * MAX_FIELD_CHARS)


def _render(template: str, fields: Mapping[str, Any], *, strict: bool, msg_id: str) -> str:
    values = {k: _display(v) for k, v in fields.items()}
    if strict:
        try:
            return template.format_map(values)
        except KeyError as exc:
            raise KeyError(f"message {msg_id}: field {exc.args[0]!r} was not given") from None
    return template.format_map(_Lenient(values))

"""Read, write and check ``quant_info.json``, the file that carries calibration into test mode.

Calibration ends by writing every tensor's ``[bit_width, fix_pos]`` to ``quant_info.json``; test
mode, the xmodel export and the deploy-check dumps read it back. The file is also what users diff,
hand-edit and feed to the reference tool's test mode, so it is written byte for byte in the
reference layout (see ``to_json_text``), and it is read strictly: a wrong, stale or hand-broken
file must fail with a message that names the file, the entry and the fix, never later with a
``KeyError`` in the middle of a forward pass.
"""
from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from nndct_shared.atomic_io import write_bytes_atomic
from nndct_shared.messages import QuantInfoError, error

__all__ = [
    "QuantEntry",
    "QuantInfo",
    "QuantInfoError",
    "SECTIONS",
    "check_against",
    "check_sections",
    "corrupt",
    "entry_text",
    "load_document",
    "parse_entry",
    "read_quant_info",
    "to_json_text",
    "write_quant_info",
]

QuantEntry = tuple[int, "int | None"]
"""``(bit_width, fix_pos)``; ``fix_pos`` is None for a tensor that calibration never saw."""

SECTIONS: tuple[str, str, str] = ("param", "output", "input")
"""Top-level keys, in the order the reference writes them."""

_MAX_NAMES_IN_MESSAGE = 10

MIN_BIT_WIDTH, MAX_BIT_WIDTH = 2, 32
"""Bit widths the fixed-point kernels accept (``nndct_shared.kernels``); an entry outside them
would only fail later, inside a forward pass."""
MIN_FIX_POS, MAX_FIX_POS = -126, 126
"""Fix positions the kernels accept: 2**fix_pos stays a normal float32."""

_MAX_INT_DIGITS = 20
"""Longer integer literals are rejected before conversion: no entry needs them, and Python
refuses to convert more than 4300 digits with a bare ValueError."""

# Errors are ``nndct_shared.messages.QuantInfoError`` (a ValueError). A file that cannot be
# used raises catalogue entry QUANT_INFO_CORRUPT, a file that belongs to another model
# CALIB_RESULT_MISMATCH (tell them apart by ``.msg_id``); an invalid QuantInfo handed to the
# writer is a programming error and raises a QuantInfoError without catalogue ID.


class _EntryProblem(Exception):
    """Internal: what is wrong with one entry; the caller decides which error to raise."""


@dataclass
class QuantInfo:
    """The three ordered name -> (bit_width, fix_pos) tables of ``quant_info.json``.

    ``param`` holds weights and biases (by tensor name), ``output`` node outputs (by node name)
    and ``input`` node inputs that need their own quantization (empty in LSTM mode). Insertion
    order is kept because the reference writes entries in graph order and users read the file.
    ``source`` records where the object was read from, for error messages only.
    """

    param: dict[str, QuantEntry] = field(default_factory=dict)
    output: dict[str, QuantEntry] = field(default_factory=dict)
    input: dict[str, QuantEntry] = field(default_factory=dict)
    source: Path | None = field(default=None, compare=False)

    def sections(self) -> Iterator[tuple[str, dict[str, QuantEntry]]]:
        """Yield ``(section_name, table)`` in file order."""
        yield "param", self.param
        yield "output", self.output
        yield "input", self.input


def _as_entry(value: Any, section: str, name: str) -> QuantEntry:
    """Return ``value`` as a ``(bit_width, fix_pos)`` tuple or raise ``_EntryProblem``."""
    where = f"entry \"{name}\" in \"{section}\""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _EntryProblem(
            f"{where} is {value!r}; expected a pair [bit_width, fix_pos] such as [16, 12]."
        )
    bit_width, fix_pos = value
    if (
        isinstance(bit_width, bool)
        or not isinstance(bit_width, numbers.Integral)
        or not MIN_BIT_WIDTH <= bit_width <= MAX_BIT_WIDTH
    ):
        raise _EntryProblem(
            f"{where} has bit_width {bit_width!r}; expected an integer from {MIN_BIT_WIDTH} to "
            f"{MAX_BIT_WIDTH} such as 8 or 16."
        )
    if fix_pos is not None and (
        isinstance(fix_pos, bool)
        or not isinstance(fix_pos, numbers.Integral)
        or not MIN_FIX_POS <= fix_pos <= MAX_FIX_POS
    ):
        raise _EntryProblem(
            f"{where} has fix_pos {fix_pos!r}; expected an integer from {MIN_FIX_POS} to "
            f"{MAX_FIX_POS} (or null for a tensor that was never calibrated)."
        )
    return int(bit_width), (None if fix_pos is None else int(fix_pos))


def _corrupt(source: Path, reason: str) -> QuantInfoError:
    exc = error("QUANT_INFO_CORRUPT", path=str(source), reason=reason)
    assert isinstance(exc, QuantInfoError)
    return exc


def to_json_text(qi: QuantInfo) -> str:
    """Render ``qi`` exactly as the reference's ``to_jsonstr`` lays out quant_info.json.

    Layout (checked byte for byte against a file written by the reference tool): ``{`` on the
    first line; each section key indented 2 spaces and followed by ``:`` and a newline; the
    section's ``{`` on its own line at 2 spaces; one ``"name":[bw,fp]`` entry per line at 4
    spaces with no blanks, ``null`` for a missing fix_pos, commas between entries; the closing
    ``}`` at 2 spaces. An empty section is ``{``, an empty line, ``}``. The file ends with ``}``
    and no newline. Names are JSON-escaped (the reference pasted them in raw, which only differs
    for names containing quotes, backslashes or control characters; non-ASCII stays as is).
    """
    blocks = []
    for section, table in qi.sections():
        lines = []
        for name, value in table.items():
            if not isinstance(name, str):
                raise QuantInfoError(
                    f"quant_info: name {name!r} in \"{section}\" is not a string."
                )
            lines.append(f"    {json.dumps(name, ensure_ascii=False)}:{entry_text(value, section, name)}")
        body = ",\n".join(lines)
        blocks.append(f'  "{section}":\n  {{\n{body}\n  }}')
    return "{\n" + ",\n".join(blocks) + "\n}"


def write_quant_info(qi: QuantInfo, path: str | os.PathLike[str]) -> Path:
    """Write ``qi`` to ``path`` atomically (temp file in the same directory, then rename).

    A crash midway leaves either the old file or the new one, never half a file that test mode
    would later reject. Returns the path written.
    """
    target = Path(path)
    data = to_json_text(qi).encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(target, data)


def _reject_duplicate_keys(source: Path):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _corrupt(
                    source,
                    f"the name \"{key}\" appears twice in the same table; each tensor may have "
                    "one entry.",
                )
            result[key] = value
        return result

    return hook


def _parse_int(source: Path):
    def hook(literal: str) -> int:
        if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
            raise _corrupt(
                source,
                f"it holds an integer of {len(literal.lstrip('-'))} digits; bit widths and fix "
                "positions are small integers.",
            )
        return int(literal)

    return hook


def _check_names_encodable(source: Path, document: dict[str, Any]) -> None:
    """Reject names with lone surrogates (JSON escapes such as ``\\ud800``): they decode to a
    Python str that can be neither written back as UTF-8 nor matched to a tensor name."""
    for section in SECTIONS:
        for name in document[section]:
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise _corrupt(
                    source,
                    f"the name {name!r} in \"{section}\" holds an escaped lone surrogate, which "
                    "is not a character; tensor names are plain text.",
                ) from None


def read_file_bytes(path: str | os.PathLike[str], shown_as: str | os.PathLike[str] | None = None) -> bytes:
    """The bytes of a calibration-result file; a file that exists but cannot be read (no
    permission, a directory in its place, an I/O error) raises CALIB_RESULT_UNREADABLE naming
    `shown_as` (default `path`). A missing file raises the usual ``FileNotFoundError``."""
    source = Path(path)
    try:
        return source.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        shown = source if shown_as is None else shown_as
        raise error("CALIB_RESULT_UNREADABLE", path=str(shown),
                    reason=f"{type(exc).__name__}: {exc.strerror or exc}") from None


def read_quant_info(path: str | os.PathLike[str], shown_as: str | os.PathLike[str] | None = None) -> QuantInfo:
    """Read a quant_info.json written by this project or by the reference tool.

    Raises ``QuantInfoError`` (catalogue entry QUANT_INFO_CORRUPT, naming the file, and the
    entry where there is one) for a file that is not UTF-8 JSON, whose top level is not an
    object with exactly the keys ``param``, ``output``, ``input``, whose sections are not
    objects, that repeats a name, whose names are not encodable text, or whose entries are not
    ``[bit_width, fix_pos]`` / ``[bit_width, null]`` pairs of integers in the kernels' ranges
    (bit_width 2..32, fix_pos -126..126). Deep nesting and overlong numbers are reported the
    same way, never as ``RecursionError`` or a bare ``ValueError``. A file that cannot be read
    raises CALIB_RESULT_UNREADABLE; a missing file raises the usual ``FileNotFoundError``.
    Messages name `shown_as` when given (the path the user knows, where `path` is a pinned
    copy, see `nndct_shared.export_commit.snapshot`).
    """
    source = Path(path if shown_as is None else shown_as)
    document = load_document(path, shown_as)
    check_sections(source, document)
    qi = QuantInfo(source=source)
    for section, table in qi.sections():
        entries = document[section]
        for name, value in entries.items():
            try:
                table[name] = _as_entry(value, section, name)
            except _EntryProblem as exc:
                raise _corrupt(source, str(exc)) from None
    return qi


def load_document(path: str | os.PathLike[str], shown_as: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The JSON object of a calibration result file, read strictly (QUANT_INFO_CORRUPT naming
    the file, `shown_as` when given, for anything but a UTF-8 JSON object without repeated names
    or overlong numbers; CALIB_RESULT_UNREADABLE for a file that cannot be read)."""
    raw = read_file_bytes(path, shown_as)
    source = Path(path if shown_as is None else shown_as)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt(source, f"it is not UTF-8 text ({exc}).") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys(source),
            parse_int=_parse_int(source),
        )
    except json.JSONDecodeError as exc:
        raise _corrupt(
            source, f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise _corrupt(
            source, "its JSON is nested too deeply; a calibration result has two levels."
        ) from None
    if not isinstance(document, dict):
        raise _corrupt(
            source,
            f"the top level is a {type(document).__name__}; expected an object with the keys "
            '"param", "output" and "input".',
        )
    return document


def check_sections(source: Path, document: dict[str, Any], extra_keys: tuple[str, ...] = ()) -> None:
    """QUANT_INFO_CORRUPT unless the top-level keys are exactly the three sections (and
    `extra_keys`, the 3.x format's) and each section is an object of encodable names."""
    missing = [key for key in SECTIONS + extra_keys if key not in document]
    unexpected = sorted(key for key in document if key not in SECTIONS + extra_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f'"{k}"' for k in missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(f'"{k}"' for k in unexpected))
        quoted = [f'"{k}"' for k in SECTIONS + extra_keys]
        expected = ", ".join(quoted[:-1]) + " and " + quoted[-1]
        raise _corrupt(
            source,
            f"its top-level keys are wrong ({'; '.join(parts)}); expected exactly {expected}.",
        )
    for section in SECTIONS:
        entries = document[section]
        if not isinstance(entries, dict):
            raise _corrupt(
                source,
                f'"{section}" is a {type(entries).__name__}; expected an object mapping names to '
                "[bit_width, fix_pos].",
            )
    _check_names_encodable(source, document)


def parse_entry(source: Path, value: Any, section: str, name: str) -> QuantEntry:
    """One `[bit_width, fix_pos]` pair of a file as a QuantEntry (QUANT_INFO_CORRUPT otherwise)."""
    try:
        return _as_entry(value, section, name)
    except _EntryProblem as exc:
        raise _corrupt(source, str(exc)) from None


def corrupt(source: Path, reason: str) -> QuantInfoError:
    """QUANT_INFO_CORRUPT naming `source` and `reason` (to raise)."""
    return _corrupt(source, reason)


def entry_text(value: Any, section: str, name: str) -> str:
    """`[bw,fp]` as the writer lays it out (QuantInfoError for an invalid entry)."""
    try:
        bit_width, fix_pos = _as_entry(value, section, name)
    except _EntryProblem as exc:
        raise QuantInfoError(f"quant_info cannot be written: {exc}") from None
    return f"[{bit_width},{'null' if fix_pos is None else fix_pos}]"


def _name_list(section: str, names: set[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(repr(n) for n in ordered[:_MAX_NAMES_IN_MESSAGE])
    hidden = len(ordered) - _MAX_NAMES_IN_MESSAGE
    return f"{section}: {shown}" + (f", ... ({hidden} more)" if hidden > 0 else "")


def check_against(
    qi: QuantInfo,
    expected_param_names: Iterable[str],
    expected_output_names: Iterable[str],
    expected_input_names: Iterable[str] | None = None,
) -> None:
    """Raise ``QuantInfoError`` unless ``qi`` has exactly the expected names.

    Test mode applies a quant_info to a model; a file calibrated for another model (or an older
    version of this one) would otherwise quantize some tensors with stale positions and leave
    others unquantized. The error (catalogue entry CALIB_RESULT_MISMATCH) counts and lists the
    missing and the unexpected names per section (sorted, at most 10 per section shown) and
    says to re-run calibration. ``input`` is compared only when ``expected_input_names`` is
    given.
    """
    expected: list[tuple[str, Mapping[str, QuantEntry], Iterable[str]]] = [
        ("param", qi.param, expected_param_names),
        ("output", qi.output, expected_output_names),
    ]
    if expected_input_names is not None:
        expected.append(("input", qi.input, expected_input_names))
    missing_parts, unexpected_parts = [], []
    n_missing = n_unexpected = 0
    for section, table, names in expected:
        wanted = set(names)
        have = set(table)
        missing = wanted - have
        unexpected = have - wanted
        if missing:
            n_missing += len(missing)
            missing_parts.append(_name_list(section, missing))
        if unexpected:
            n_unexpected += len(unexpected)
            unexpected_parts.append(_name_list(section, unexpected))
    if n_missing or n_unexpected:
        exc = error(
            "CALIB_RESULT_MISMATCH",
            path=str(qi.source) if qi.source is not None else "(in memory)",
            n_missing=n_missing,
            missing="; ".join(missing_parts) or "none",
            n_unexpected=n_unexpected,
            unexpected="; ".join(unexpected_parts) or "none",
        )
        assert isinstance(exc, QuantInfoError)
        raise exc

"""Read, write and check ``quant_info_float.json``: the calibration result of float-scale tensors.

quant_info.json keeps the reference's byte-exact ``[bit_width, fix_pos]`` layout and holds only
power-of-two tensors; a tensor calibrated with ``scale_type: "float"`` is *omitted* from it and
recorded here instead (the CNN flow writes both files in one atomic batch, and writes this one
only when the model has such tensors). Layout::

    {
      "version": 1,
      "param": {"<tensor>": {"bit_width": 8, "signed": true, "narrow_range": false,
                             "symmetric": true, "scale": 0.0123, "zero_point": 0}, ...},
      "output": {...}
    }

``scale`` is written with Python's shortest round-trip repr, so it reads back bit for bit. The
reader is strict like quant_info.json's: anything malformed raises QUANT_INFO_CORRUPT naming
the file and the entry, and ``check_float_against`` raises CALIB_RESULT_MISMATCH when the names
differ from the model's float-scale tensors.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from nndct_shared.calibration.float_scale import quant_range
from nndct_shared.messages import QuantInfoError, error
from nndct_shared.quant_info import read_file_bytes

__all__ = ["FLOAT_QUANT_INFO_FILE", "FloatEntry", "FloatQuantInfo", "check_float_against",
           "read_float_quant_info", "to_float_json_text"]

FLOAT_QUANT_INFO_FILE = "quant_info_float.json"
VERSION = 1
_SECTIONS = ("param", "output")
_KEYS = ("bit_width", "signed", "narrow_range", "symmetric", "scale", "zero_point")
_FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class FloatEntry:
    """One float-scale tensor: its grid (bit width, signed, narrow range, symmetric) and result."""

    bit_width: int
    signed: bool
    narrow_range: bool
    symmetric: bool
    scale: float
    zero_point: int


@dataclass
class FloatQuantInfo:
    param: dict[str, FloatEntry] = field(default_factory=dict)
    output: dict[str, FloatEntry] = field(default_factory=dict)
    source: Path | None = field(default=None, compare=False)


class _Problem(Exception):
    pass


def _entry(value: Any, where: str) -> FloatEntry:
    if not isinstance(value, dict) or sorted(value) != sorted(_KEYS):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise _Problem(f"{where} is {got!r}; expected an object with exactly the keys "
                       f"{', '.join(_KEYS)}.")
    bw = value["bit_width"]
    if isinstance(bw, bool) or not isinstance(bw, numbers.Integral) or not 2 <= bw <= 32:
        raise _Problem(f"{where} has bit_width {bw!r}; expected an integer from 2 to 32.")
    for key in ("signed", "narrow_range", "symmetric"):
        if not isinstance(value[key], bool):
            raise _Problem(f"{where} has {key} {value[key]!r}; expected true or false.")
    scale = value["scale"]
    if (isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale)
            or not 0 < scale <= _FLOAT32_MAX):
        raise _Problem(f"{where} has scale {scale!r}; expected a positive finite number.")
    zp = value["zero_point"]
    qmin, qmax = quant_range(int(bw), value["signed"], value["narrow_range"])
    if isinstance(zp, bool) or not isinstance(zp, numbers.Integral) or not qmin <= zp <= qmax:
        raise _Problem(f"{where} has zero_point {zp!r}; expected an integer from {qmin} to {qmax} "
                       "(the grid of its bit width, signed and narrow_range).")
    if value["symmetric"] and zp != 0:
        raise _Problem(f"{where} is symmetric but has zero_point {zp}; symmetric means 0.")
    return FloatEntry(int(bw), value["signed"], value["narrow_range"], value["symmetric"],
                      float(scale), int(zp))


def to_float_json_text(info: FloatQuantInfo) -> str:
    """The file's text (entries validated as the reader would; QuantInfoError otherwise)."""
    document: dict[str, Any] = {"version": VERSION}
    for section in _SECTIONS:
        table = {}
        for name, e in getattr(info, section).items():
            raw = {"bit_width": e.bit_width, "signed": e.signed, "narrow_range": e.narrow_range,
                   "symmetric": e.symmetric, "scale": float(e.scale), "zero_point": int(e.zero_point)}
            try:
                _entry(raw, f'entry "{name}" in "{section}"')
            except _Problem as exc:
                raise QuantInfoError(f"quant_info_float cannot be written: {exc}") from None
            table[name] = raw
        document[section] = table
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _corrupt(source: Path, reason: str) -> QuantInfoError:
    exc = error("QUANT_INFO_CORRUPT", path=str(source), reason=reason)
    assert isinstance(exc, QuantInfoError)
    return exc


def read_float_quant_info(path: str | os.PathLike[str],
                          shown_as: str | os.PathLike[str] | None = None) -> FloatQuantInfo:
    """Read the file strictly (QUANT_INFO_CORRUPT on any malformed content, CALIB_RESULT_UNREADABLE
    when it cannot be read); messages name `shown_as` when given."""
    raw = read_file_bytes(path, shown_as)
    source = Path(path if shown_as is None else shown_as)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _corrupt(source, f"it is not UTF-8 text ({exc}).") from None

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise _corrupt(source, f'the name "{key}" appears twice in the same object.')
            result[key] = value
        return result

    def parse_int(literal: str) -> int:
        if len(literal.lstrip("-")) > 20:
            raise _corrupt(source, "it holds an overlong integer.")
        return int(literal)

    def parse_constant(literal: str) -> float:
        raise _corrupt(source, f"it holds {literal}, which is not JSON.")

    try:
        document = json.loads(text, object_pairs_hook=pairs, parse_int=parse_int,
                              parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        raise _corrupt(source, f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                               f"{exc.colno}).") from None
    except RecursionError:
        raise _corrupt(source, "its JSON is nested too deeply.") from None
    if not isinstance(document, dict) or sorted(document) != sorted(("version", *_SECTIONS)):
        got = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise _corrupt(source, f'its top level is {got!r}; expected an object with exactly the keys '
                               '"version", "param" and "output".')
    if document["version"] != VERSION or isinstance(document["version"], bool):
        raise _corrupt(source, f"its version is {document['version']!r}; this version reads {VERSION}.")
    info = FloatQuantInfo(source=source)
    for section in _SECTIONS:
        entries = document[section]
        if not isinstance(entries, dict):
            raise _corrupt(source, f'"{section}" is a {type(entries).__name__}; expected an object.')
        for name, value in entries.items():
            try:
                name.encode("utf-8")
                getattr(info, section)[name] = _entry(value, f'entry "{name}" in "{section}"')
            except UnicodeEncodeError:
                raise _corrupt(source, f"the name {name!r} is not encodable text.") from None
            except _Problem as exc:
                raise _corrupt(source, str(exc)) from None
    return info


def check_float_against(info: FloatQuantInfo, expected_param: Iterable[str],
                        expected_output: Iterable[str]) -> None:
    """CALIB_RESULT_MISMATCH unless the file has exactly the model's float-scale tensors."""
    missing_parts, unexpected_parts, n_missing, n_unexpected = [], [], 0, 0
    for section, names in (("param", expected_param), ("output", expected_output)):
        wanted, have = set(names), set(getattr(info, section))
        if wanted - have:
            n_missing += len(wanted - have)
            missing_parts.append(f"{section}: " + ", ".join(repr(n) for n in sorted(wanted - have)[:10]))
        if have - wanted:
            n_unexpected += len(have - wanted)
            unexpected_parts.append(f"{section}: " + ", ".join(repr(n) for n in sorted(have - wanted)[:10]))
    if n_missing or n_unexpected:
        exc = error("CALIB_RESULT_MISMATCH",
                    path=str(info.source) if info.source is not None else "(in memory)",
                    n_missing=n_missing, missing="; ".join(missing_parts) or "none",
                    n_unexpected=n_unexpected, unexpected="; ".join(unexpected_parts) or "none")
        assert isinstance(exc, QuantInfoError)
        raise exc

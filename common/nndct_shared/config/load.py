"""Reading and writing configuration files.

`load_config` accepts what users pass as ``quant_config_file``: a path, an already-parsed dict,
a `QuantConfig`, or None for the default. JSON problems (syntax, duplicate keys, non-UTF-8)
become `QuantConfigError`s naming the file and position; a missing file is a
`MissingFileError` (a FileNotFoundError). `save_config` writes atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..atomic_io import write_bytes_atomic
from ..messages import error
from .defaults import default_config
from .schema import QuantConfig

PathLike = str | os.PathLike[str]


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # json.load would silently keep the last value; a repeated key is almost always a
            # copy-paste mistake, so name it.
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def read_json(path: PathLike) -> Any:
    """The JSON value in file `path`, with config-flavoured errors."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("QUANT_CONFIG_FILE_MISSING", path=str(file)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, OSError) as exc:
        raise error(
            "QUANT_CONFIG",
            path=str(file),
            problem=f"the file cannot be read: {exc}",
            hint="Pass the path of a readable UTF-8 JSON file.",
        ) from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise error(
            "QUANT_CONFIG",
            path=str(file),
            problem=f"the key '{exc.key}' appears twice in the same object",
            hint=f"Keep one '{exc.key}' entry per object.",
        ) from None
    except json.JSONDecodeError as exc:
        raise error(
            "QUANT_CONFIG",
            path=str(file),
            problem=f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            hint="Fix the JSON syntax (double-quoted keys and strings, true/false/null in lower "
            "case, no trailing commas).",
        ) from None


def load_config(source: PathLike | Mapping[str, Any] | QuantConfig | None = None) -> QuantConfig:
    """The validated configuration from a JSON file path, a dict, a `QuantConfig` or None.

    None gives `default_config()`; a `QuantConfig` is returned as is (it is already valid).
    """
    if source is None:
        return default_config()
    if isinstance(source, QuantConfig):
        return source
    if isinstance(source, Mapping):
        return QuantConfig.from_dict(source)
    if isinstance(source, (str, os.PathLike)):
        return QuantConfig.from_dict(read_json(source))
    raise error(
        "QUANT_CONFIG_TYPE",
        path="quant_config_file",
        expected="a path to a JSON file, a dict or a QuantConfig",
        got=f"a Python {type(source).__name__}",
    )


def save_config(config: QuantConfig, path: PathLike) -> Path:
    """Write `config` as JSON to `path` atomically (temp file + rename); return the path."""
    target = Path(path)
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return write_bytes_atomic(target, config.to_json().encode("utf-8"))
    except OSError as exc:
        raise error("OUTPUT_DIR", path=str(directory), reason=str(exc)) from exc

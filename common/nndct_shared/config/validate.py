"""Checks of single config values and of key sets, each raising through the message catalogue.

Every check takes the option path (``"tensor_quantize_config.activation.method"``,
``"layer_quantize_config[1].overall_quantize_config.bit_width"``) so the error names exactly
where the bad value is, and returns the value in its typed form. The same checks run when a
config is parsed from JSON and when the dataclasses are built directly in Python.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ..messages import NndctError, error
from .enums import ConfigEnum, TensorKind

#: Accepted bit widths. 1 bit leaves a signed grid of {-1, 0}; above 32 the int32 kernels overflow.
BIT_WIDTH_MIN, BIT_WIDTH_MAX = 2, 32
#: Accepted numbers of fix positions the diffs search tries.
SEARCH_RANGE_MIN, SEARCH_RANGE_MAX = 1, 32

E = TypeVar("E", bound=ConfigEnum)


def join(path: str, key: str | int) -> str:
    """`path` extended by a key (``a.b``) or a list index (``a[0]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def where(path: str) -> str:
    """Words for the location of a key set: "at the top level" or "in 'a.b'"."""
    return f"in '{path}'" if path else "at the top level"


def show(value: Any) -> str:
    """`value` as it would be written in JSON (enums by their spelling), shortened if long."""
    if isinstance(value, ConfigEnum):
        value = value.value
    try:
        text = json.dumps(value, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(value: Any) -> str:
    """The JSON type of `value` and the value, e.g. 'a string "8"', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, Mapping):
        kind = "an object"
    elif isinstance(value, (list, tuple)):
        kind = "a list"
    else:
        kind = f"a Python {type(value).__name__}"
    return f"{kind} {show(value)}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate (difflib), or ""."""
    pool = list(candidates)
    folded = {c.lower(): c for c in pool}
    normal = word.strip().lower().replace(" ", "_").replace("-", "_")
    if normal in folded and folded[normal] != word:
        return f" (did you mean '{folded[normal]}'?)"
    close = difflib.get_close_matches(normal, list(folded), n=1, cutoff=0.6)
    if not close:  # swapped parts, e.g. "minmax" for "maxmin", score low in difflib
        close = [c for c in folded if sorted(c) == sorted(normal)][:1]
    return f" (did you mean '{folded[close[0]]}'?)" if close else ""


def type_error(path: str, expected: str, value: Any) -> NndctError:
    """The QUANT_CONFIG_TYPE error for `value` at `path`."""
    return error("QUANT_CONFIG_TYPE", path=path, expected=expected, got=describe(value))


def check_object(value: Any, path: str) -> Mapping[str, Any]:
    """`value` must be a JSON object."""
    if not isinstance(value, Mapping):
        raise type_error(path or "(top level)", "an object ({...})", value)
    for key in value:
        if not isinstance(key, str):
            raise type_error(join(path, str(key)), "a string key", key)
    return value


def check_keys(
    mapping: Mapping[str, Any], path: str, valid: Sequence[str], required: Iterable[str] = ()
) -> None:
    """Unknown keys and missing required keys of `mapping` are errors naming the key."""
    for key in mapping:
        if key not in valid:
            raise error(
                "QUANT_CONFIG_UNKNOWN_KEY",
                path=join(path, key),
                name=key,
                where=where(path),
                did_you_mean=did_you_mean(key, valid),
                valid=list(valid),
            )
    missing = [k for k in required if k not in mapping]
    if missing:
        raise error("QUANT_CONFIG_MISSING_KEY", path=path, where=where(path), missing=missing)


def check_bool(value: Any, path: str) -> bool:
    """`value` must be true or false (not 0/1, not "true")."""
    if not isinstance(value, bool):
        raise type_error(path, "a boolean (true or false)", value)
    return value


def check_bit_width(value: Any, path: str) -> int:
    """`value` must be an integer in [BIT_WIDTH_MIN, BIT_WIDTH_MAX]."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
        BIT_WIDTH_MIN <= value <= BIT_WIDTH_MAX
    ):
        raise error(
            "ILLEGAL_BITWIDTH", value=value, path=path, low=BIT_WIDTH_MIN, high=BIT_WIDTH_MAX
        )
    return value


def check_enum(cls: type[E], value: Any, path: str) -> E:
    """`value` must spell a member of `cls` (case-insensitive)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise type_error(path, f"a string, one of {', '.join(cls.choices())}", value)
    member = cls.lookup(value)
    if member is None:
        raise error(
            "QUANT_CONFIG_VALUE",
            path=path,
            value=show(value),
            did_you_mean=did_you_mean(value, cls.choices()),
            valid=cls.choices(),
        )
    return member  # type: ignore[return-value]


def _check_number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(path, "a number", value)
    return float(value)


def check_percentage(value: Any, path: str) -> float:
    """`value` must be a finite number in (0, 100] (a percentile for method percentile)."""
    number = _check_number(value, path)
    if not math.isfinite(number) or not 0.0 < number <= 100.0:
        raise error(
            "QUANT_CONFIG_VALUE",
            path=path,
            value=show(value),
            did_you_mean="",
            valid="a number greater than 0 and at most 100 (e.g. 99.99)",
        )
    return number


def check_search_range(value: Any, path: str) -> int:
    """`value` must be an integer number of candidate fix positions."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(path, "an integer", value)
    if not SEARCH_RANGE_MIN <= value <= SEARCH_RANGE_MAX:
        raise error(
            "QUANT_CONFIG_VALUE",
            path=path,
            value=show(value),
            did_you_mean="",
            valid=f"an integer from {SEARCH_RANGE_MIN} to {SEARCH_RANGE_MAX}",
        )
    return value


def check_kinds(value: Any, path: str) -> tuple[TensorKind, ...]:
    """`value` must be a non-empty list of distinct tensor kinds."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise type_error(path, f"a list of strings from {', '.join(TensorKind.choices())}", value)
    kinds = tuple(check_enum(TensorKind, v, join(path, i)) for i, v in enumerate(value))
    if not kinds:
        raise error(
            "QUANT_CONFIG_VALUE",
            path=path,
            value="[]",
            did_you_mean="",
            valid=f"a non-empty list of {', '.join(TensorKind.choices())}",
        )
    for i, kind in enumerate(kinds):
        if kind in kinds[:i]:
            raise error(
                "QUANT_CONFIG_VALUE",
                path=join(path, i),
                value=show(kind),
                did_you_mean=" (it is listed twice)",
                valid="each tensor kind at most once",
            )
    return kinds


def check_optional_name(value: Any, path: str) -> str | None:
    """`value` must be null or a non-empty string (a layer type or a layer name)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise type_error(path, "null or a string", value)
    if not value.strip():
        raise error(
            "QUANT_CONFIG_VALUE",
            path=path,
            value=show(value),
            did_you_mean="",
            valid="null or a non-empty string",
        )
    return value

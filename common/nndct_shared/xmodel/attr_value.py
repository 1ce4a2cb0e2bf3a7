"""Typed XIR attribute values: plain Python values <-> `serial_v2.AttrValue` messages.

XIR keeps attribute values as C++ `std::any`, so the oneof member a writer picks *is* the type
the reader sees: `fix_point` must be `int32_value`, `kernel` must be `int32_vec_value`, const
`data` must be `bytes_value`. This module names those members as *kinds* ("int32",
"int32_vec", "bytes", ...), converts plain Python values to and from them, and checks ranges so
that a value that would not fit its kind fails here instead of being silently truncated.

Plain Python forms: bool; int (all integer kinds); float (float, double); str; bytes; list of
those for `*_vec`; dict[str, ...] for `map_string_2_*` (insertion order is kept).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .proto_schema import ATTR_VALUE_MEMBERS

#: Every attribute kind, in AttrValue field-number order. kind + "_value" = oneof member.
ATTR_KINDS: tuple[str, ...] = tuple(name[: -len("_value")] for name, _, _ in ATTR_VALUE_MEMBERS)

_INT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_SCALAR_KINDS = ("bool", "int32", "uint32", "int64", "uint64", "float", "double", "string", "bytes")
_MAP_PREFIX = "map_string_2_"


@dataclass(frozen=True)
class TypedAttr:
    """A value with an explicit XIR kind, for attributes that have no op-def entry to give
    their type (graph attrs, tensor attrs, extra op attrs) when inference would pick the
    wrong one, e.g. `TypedAttr("int64", 5)` or `TypedAttr("double", 0.1)`."""

    kind: str
    value: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", normalize(self.kind, self.value))


def check_kind(kind: str) -> str:
    if kind not in ATTR_KINDS:
        raise ValueError(
            f"unknown XIR attribute kind {kind!r}; use one of: {', '.join(ATTR_KINDS)}"
        )
    return kind


def element_kind(kind: str) -> str:
    """The kind of one element of a vector kind (`int32_vec` -> `int32`)."""
    return kind[: -len("_vec")]


def is_vector_kind(kind: str) -> bool:
    return kind.endswith("_vec") and not kind.startswith(_MAP_PREFIX)


def is_map_kind(kind: str) -> bool:
    return kind.startswith(_MAP_PREFIX)


def map_value_kind(kind: str) -> str:
    """The kind of the values of a map kind (`map_string_2_int32_vec` -> `int32_vec`)."""
    return kind[len(_MAP_PREFIX) :]


def _normalize_scalar(kind: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise TypeError(f"expected a bool for XIR kind 'bool', got {value!r}")
    if kind in _INT_RANGES:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"expected an int for XIR kind {kind!r}, got {value!r}")
        low, high = _INT_RANGES[kind]
        if not low <= int(value) <= high:
            raise ValueError(f"{int(value)} does not fit XIR kind {kind!r} [{low}, {high}]")
        return int(value)
    if kind in ("float", "double"):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"expected a number for XIR kind {kind!r}, got {value!r}")
        # float values are stored at float32 precision so that the in-memory value equals
        # what a reader of the written file gets back.
        return float(np.float32(value)) if kind == "float" else float(value)
    if kind == "string":
        if isinstance(value, str):
            return value
        raise TypeError(f"expected a str for XIR kind 'string', got {value!r}")
    if kind == "bytes":
        if isinstance(value, np.ndarray):
            return array_to_le_bytes(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"expected bytes for XIR kind 'bytes', got {type(value).__name__}")
    raise ValueError(f"{kind!r} is not a scalar XIR kind")


def normalize(kind: str, value: Any) -> Any:
    """Validate `value` for `kind` and return its canonical plain Python form."""
    check_kind(kind)
    if kind in _SCALAR_KINDS:
        return _normalize_scalar(kind, value)
    if is_vector_kind(kind):
        if isinstance(value, (str, bytes, dict)) or not _is_sequence(value):
            raise TypeError(f"expected a list for XIR kind {kind!r}, got {value!r}")
        element = element_kind(kind)
        return [_normalize_scalar(element, item) for item in value]
    if not isinstance(value, dict):
        raise TypeError(f"expected a dict[str, ...] for XIR kind {kind!r}, got {value!r}")
    value_kind = map_value_kind(kind)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"map keys of XIR kind {kind!r} must be str, got {key!r}")
        out[key] = normalize(value_kind, item)
    return out


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or (
        hasattr(value, "__iter__") and hasattr(value, "__len__")
    )


def array_to_le_bytes(array: np.ndarray) -> bytes:
    """Row-major little-endian bytes of `array` (XIR const `data`)."""
    array = np.ascontiguousarray(array)
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _infer_scalar_kind(value: Any) -> str | None:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int32" if -(2**31) <= int(value) < 2**31 else "int64"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray, memoryview, np.ndarray)):
        return "bytes"
    return None


def infer_kind(value: Any) -> str:
    """The kind XIR's quantizer would use for a plain Python value with no op-def entry.

    bool -> bool, int -> int32 (int64 when it does not fit), float -> float, str -> string,
    bytes -> bytes, lists of those -> the `*_vec` kind, dict[str, ...] -> `map_string_2_*`.
    Pass a `TypedAttr` to choose any other kind.
    """
    if isinstance(value, TypedAttr):
        return value.kind
    scalar = _infer_scalar_kind(value)
    if scalar is not None:
        return scalar
    if isinstance(value, dict):
        if not value:
            raise ValueError(
                "cannot infer the XIR kind of an empty dict; pass TypedAttr(kind, {})"
            )
        item_kinds = {infer_kind(item) for item in value.values()}
        if len(item_kinds) == 1:
            kind = _MAP_PREFIX + item_kinds.pop()
            if kind in ATTR_KINDS:
                return kind
        raise ValueError(f"no XIR map kind holds the values of {value!r}; pass TypedAttr")
    if _is_sequence(value):
        items = list(value)
        if not items:
            raise ValueError(
                "cannot infer the XIR kind of an empty list; pass TypedAttr(kind, [])"
            )
        item_kinds = {_infer_scalar_kind(item) for item in items}
        if item_kinds == {"int32", "int64"}:
            item_kinds = {"int64"}
        if item_kinds == {"int32", "float"}:
            item_kinds = {"float"}
        if len(item_kinds) == 1 and None not in item_kinds:
            return item_kinds.pop() + "_vec"
        raise ValueError(f"no XIR vector kind holds the items of {value!r}; pass TypedAttr")
    raise TypeError(f"cannot store {type(value).__name__} {value!r} as an XIR attribute")


def empty_value(kind: str) -> Any:
    """The typed empty value XIR uses as default of a REQUIRED attr (0, '', [], ...)."""
    check_kind(kind)
    if is_map_kind(kind):
        return {}
    if is_vector_kind(kind):
        return []
    return {"bool": False, "string": "", "bytes": b"", "float": 0.0, "double": 0.0}.get(kind, 0)


# --- protobuf conversion ----------------------------------------------------------------


def _fill_wrapper(wrapper: Any, kind: str, value: Any) -> None:
    """Fill a Bytes / *Vec / MapString2* wrapper message (its field `value`)."""
    wrapper.SetInParent()
    if kind == "bytes":
        wrapper.value = value
    elif kind == "bytes_vec":
        for item in value:
            wrapper.value.add().value = item
    elif is_vector_kind(kind):
        wrapper.value.extend(value)
    else:
        value_kind = map_value_kind(kind)
        for key, item in value.items():
            entry = wrapper.value.add()  # ordered-map schema: a repeated entry message
            entry.key = key
            if value_kind in _SCALAR_KINDS and value_kind != "bytes":
                entry.value = item
            else:
                _fill_wrapper(entry.value, value_kind, item)


def to_proto(kind: str, value: Any, message: Any) -> Any:
    """Set the oneof member of the AttrValue `message` for (`kind`, `value`) and return it."""
    value = normalize(kind, value)
    member = kind + "_value"
    if kind in _SCALAR_KINDS and kind != "bytes":
        setattr(message, member, value)
    else:
        _fill_wrapper(getattr(message, member), kind, value)
    return message


def _read_wrapper(wrapper: Any, kind: str) -> Any:
    if kind == "bytes":
        return bytes(wrapper.value)
    if kind == "bytes_vec":
        return [bytes(item.value) for item in wrapper.value]
    if is_vector_kind(kind):
        return list(wrapper.value)
    value_kind = map_value_kind(kind)
    out: dict[str, Any] = {}
    for entry in wrapper.value:
        if value_kind in _SCALAR_KINDS and value_kind != "bytes":
            out[entry.key] = entry.value
        else:
            out[entry.key] = _read_wrapper(entry.value, value_kind)
    return out


def from_proto(message: Any) -> tuple[str, Any]:
    """(kind, plain value) of an AttrValue message. Raises ValueError if no member is set."""
    member = message.WhichOneof("value")
    if member is None:
        raise ValueError("attribute value has no type (empty AttrValue)")
    kind = member[: -len("_value")]
    if kind in _SCALAR_KINDS and kind != "bytes":
        return kind, getattr(message, member)
    return kind, _read_wrapper(getattr(message, member), kind)


def format_value(value: Any, limit: int = 8) -> str:
    """Short human-readable form of an attribute value (bytes and long lists summarized)."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, list):
        if len(value) > limit:
            head = ", ".join(format_value(v, limit) for v in value[:limit])
            return f"[{head}, ... ({len(value)} items)]"
        return "[" + ", ".join(format_value(v, limit) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v, limit)}" for k, v in value.items()) + "}"
    return repr(value)

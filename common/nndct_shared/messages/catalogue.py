"""The message catalogue: every entry by level and ID, and lookup by full ID or neutral code.

IDs are unique within a level. The guide itself uses a few codes both as a warning and as an
error (e.g. EXPORT_XMODEL), so `warn()` looks only among warnings and `error()` only among
errors; the same ID in both tables is the guide's own convention, not a clash.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from .catalogue_guide import GUIDE_ERRORS, GUIDE_WARNINGS
from .catalogue_project import PROJECT_SPECS
from .entry import Frontend, Level, MessageDef
from .frontend import as_frontend, current_frontend
from .spec import Spec

_ID_PREFIXES = tuple(fe.id_prefix for fe in Frontend)

#: Codes (IDs without prefix) that the user guide documents, for documentation and tests.
GUIDE_CODES: frozenset[str] = frozenset(s.code for s in GUIDE_WARNINGS + GUIDE_ERRORS)


def _build(specs: tuple[Spec, ...]) -> Mapping[Level, Mapping[str, MessageDef]]:
    tables: dict[Level, dict[str, MessageDef]] = {level: {} for level in Level}
    for spec in specs:
        for entry in spec.expand():
            table = tables[entry.level]
            if entry.msg_id in table:
                raise RuntimeError(f"duplicate {entry.level} message ID {entry.msg_id}")
            table[entry.msg_id] = entry
    return MappingProxyType({lvl: MappingProxyType(t) for lvl, t in tables.items()})


#: level -> {msg_id -> MessageDef}.
CATALOGUE: Mapping[Level, Mapping[str, MessageDef]] = _build(
    GUIDE_WARNINGS + GUIDE_ERRORS + PROJECT_SPECS
)


def all_messages() -> tuple[MessageDef, ...]:
    """Every entry of every level."""
    return tuple(e for table in CATALOGUE.values() for e in table.values())


def resolve_id(id_or_code: str, frontend: Frontend | str | None = None) -> str:
    """The full ID for `id_or_code`: full IDs are returned unchanged, codes get the prefix of
    `frontend` (default: the current front end, see `use_frontend`)."""
    if id_or_code.startswith(_ID_PREFIXES):
        return id_or_code
    fe = current_frontend() if frontend is None else as_frontend(frontend)
    return fe.id_prefix + id_or_code


def lookup(
    level: Level | str, id_or_code: str, frontend: Frontend | str | None = None
) -> MessageDef:
    """The entry of `level` named by a full ID or a neutral code.

    Raises KeyError (a programming error in the caller) naming close IDs of that level and the
    levels where the ID does exist.
    """
    lvl = Level(level)
    msg_id = resolve_id(id_or_code, frontend)
    table = CATALOGUE[lvl]
    try:
        return table[msg_id]
    except KeyError:
        pass
    elsewhere = [str(other) for other in Level if msg_id in CATALOGUE[other]]
    close = difflib.get_close_matches(msg_id, list(table), n=3)
    detail = f"; it exists as: {', '.join(elsewhere)}" if elsewhere else ""
    hint = f"; close {lvl} IDs: {', '.join(close)}" if close else ""
    raise KeyError(f"no {lvl} message {msg_id!r} in the catalogue{detail}{hint}")

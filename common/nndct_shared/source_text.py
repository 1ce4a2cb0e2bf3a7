"""Names in generated Python source: shown, never executed, whatever the user named things.

Model, module and node names come from the user: `type()` accepts any string as a class name and
an nn.Module attribute name may hold newlines or quotes. The generated files (`<Model>.py` of the
CNN flow, the LSTM cells' `<graph>.py`) show these names in comments and docstrings; written raw,
a newline in a name ends the comment and the rest of the name is a statement that runs when the
file is imported. So every name goes into source through `source_text` (printable ASCII only,
everything else backslash-escaped, quotes included, bounded in length) and every class name
through `python_class_name` (letters, digits and `_` only).
"""
from __future__ import annotations

import keyword

from .deploy_check import dump_file_stem

__all__ = ["MAX_SOURCE_NAME_CHARS", "python_class_name", "source_text"]

MAX_SOURCE_NAME_CHARS = 300
"""Longest name shown in generated source; longer ones are cut and say how long they were."""


def _escaped(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii").replace('"', "\\x22").replace("'", "\\x27")


def source_text(name: str, limit: int = MAX_SOURCE_NAME_CHARS) -> str:
    """`name` as text that is inert inside a comment or a (non-raw) string literal: printable
    ASCII without quotes; newlines, control and non-ASCII characters, backslashes and quotes
    appear as escapes (``\\n``, ``\\x22``, ``\\u00e9``). A name whose text would be longer
    than `limit` characters is cut between two characters and says how long it was."""
    name = str(name)
    if len(name) <= limit:
        text = _escaped(name)
        if len(text) <= limit:
            return text
    note = f"...({len(name)} characters)"
    budget, pieces = limit - len(note), []
    for ch in name:
        piece = _escaped(ch)
        budget -= len(piece)
        if budget < 0:
            break
        pieces.append(piece)
    return "".join(pieces) + note


def python_class_name(name: str) -> str:
    """A valid Python class name for `name`: its file stem (`dump_file_stem`: `[0-9A-Za-z_]`
    only, bounded, so `<class>.py` stays inside output_dir), prefixed with `Model_` where the
    stem starts with a digit, is a keyword, or starts with `__` (Python would mangle the name
    inside the class body). An ordinary class name is unchanged."""
    stem = dump_file_stem(name)
    if stem[0].isdigit() or stem.startswith("__") or keyword.iskeyword(stem):
        return f"Model_{stem}"
    return stem

"""Where a flow writes: the output_dir argument checked, file-system failures reported as the
catalogued OUTPUT_DIR error, and a whole export committed as one unit.

A user who passes an output_dir that is not a path (None, bytes, a number, a string with a NUL),
that is a file, lies below a file, or cannot be written must get one clear message naming the
directory and the cause (not a bare TypeError or FileExistsError from deep in pathlib), and find
nothing written. An export that fails midway (a file in the way, a full disk, a node the format
cannot express) or is killed must leave the previous export of that directory as it was:
`staged_export` gives one `nndct_shared.export_commit.ExportUnit` for every file of the export,
committed as one unit, and maps OS errors to OUTPUT_DIR. (File names made from model, graph or
node names go through `nndct_shared.deploy_check.dump_file_stem`, so no name can leave the
directory.)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .export_commit import ExportUnit, export_unit
from .messages import NndctError, error

__all__ = ["checked_output_dir", "staged_export", "writing_to"]


def checked_output_dir(value: Any) -> Path:
    """`value` as a Path, or OUTPUT_DIR when it is not a usable path: only a non-empty `str` or
    `os.PathLike` of str without NUL characters names a directory."""
    reason = None
    text = None
    if isinstance(value, (bytes, bytearray)):
        reason = "it is a bytes path; pass the directory as a str (or pathlib.Path)"
    elif isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not isinstance(text, str):
            reason = "it is a bytes path; pass the directory as a str (or pathlib.Path)"
        elif not text:
            reason = "it is an empty string; pass a directory name such as 'quantize_result'"
        elif "\0" in text:
            reason = "it contains a NUL character, which no file system allows in a path"
    else:
        reason = (f"it is a {type(value).__name__}, not a path; pass the directory as a str (or "
                  "pathlib.Path)")
    if reason is not None:
        shown = text if isinstance(text, str) and "\0" not in text else repr(value)
        raise error("OUTPUT_DIR", path=shown, reason=reason)
    return Path(text)


@contextmanager
def writing_to(directory: str | os.PathLike[str]) -> Iterator[None]:
    """Report a file-system failure while writing under `directory` as OUTPUT_DIR (naming the
    directory and the cause) instead of a bare OSError; catalogued errors pass through."""
    try:
        yield
    except NndctError:
        raise
    except OSError as exc:
        raise error("OUTPUT_DIR", path=str(directory), reason=str(exc)) from exc


@contextmanager
def staged_export(directory: Any, owns: Iterable[str] = ()) -> Iterator[ExportUnit]:
    """One export into `directory` (created if missing), committed as one unit.

    Everything written through the unit appears together when the block ends, and the paths in
    `owns` (relative to `directory`: files or directories that belong to this export) hold
    exactly what it wrote there; an exception in the block (or a failing commit) leaves every
    previous file as it was and removes the directories this export created. A bad
    `directory` argument and OS errors become OUTPUT_DIR naming `directory`.
    """
    out = checked_output_dir(directory)
    with writing_to(out), export_unit(out, owns) as unit:
        yield unit

"""Where a flow writes: file-system failures reported as the catalogued OUTPUT_DIR error, and a
whole export staged so that it lands all or nothing.

A user who passes an output_dir that is a file, lies below a file, or cannot be written must get
one clear message naming the directory and the cause (not a bare FileExistsError from deep in
pathlib), and find nothing written. An export that fails midway (a file in the way, a full
disk, a node the format cannot express) must leave the previous export of that directory as it
was: `staged_export` gives one `AtomicBatch` for every file of the export and maps OS errors to
OUTPUT_DIR. (File names made from model, graph or node names go through
`nndct_shared.deploy_check.dump_file_stem`, so no name can leave the directory.)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .atomic_io import AtomicBatch
from .messages import NndctError, error

__all__ = ["staged_export", "writing_to"]


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
def staged_export(directory: str | os.PathLike[str]) -> Iterator[AtomicBatch]:
    """An `AtomicBatch` for one export into `directory` (created if missing).

    Everything staged in the batch is swapped in together when the block ends; an exception in
    the block (or a failing swap) leaves every previous file as it was and removes the
    directories this export created. OS errors become OUTPUT_DIR naming `directory`.
    """
    out = Path(directory)
    with writing_to(out), AtomicBatch() as batch:
        batch.make_dirs(out)
        yield batch

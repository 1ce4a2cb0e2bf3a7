"""What the flows need from a group of processes that quantize one model together.

Why an interface here: merging calibration statistics, checking that every process quantizes
the same model, and deciding who writes the output files is framework-neutral; only moving the
bytes between processes is not (``pytorch_nndct.distributed`` implements it with
torch.distributed). The base class is the group of one process, so a flow calls the same code
with or without a process group.

Rules every flow follows with a ``Collective``:

- calibration statistics are gathered from every rank and merged in rank order, so every rank
  ends with the same result (``gather_checked`` first checks that the ranks agree on the model
  and the settings, raising DIST_MISMATCH otherwise);
- only the writer (rank 0) writes into output directories; another rank writes nothing there,
  and what it must write for itself (a generated module it imports) goes under its own private
  temporary directory (``write_dir``), so no two ranks ever write the same path.
"""
from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .messages import error

__all__ = ["Collective", "LOCAL", "digest", "gather_checked", "private_dir", "write_dir"]


class Collective:
    """A group of ``world_size`` processes; this base class is the one-process group."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_writer(self) -> bool:
        """True on the one rank that writes output files (rank 0)."""
        return self.rank == 0

    @property
    def spans_processes(self) -> bool:
        """True when there is more than one rank (statistics must be merged)."""
        return self.world_size > 1

    def all_gather(self, obj: Any, action: str) -> list[Any]:
        """Every rank's ``obj`` in rank order (a collective: every rank must call it).

        ``action`` names the user-facing call for the error messages (e.g.
        "export_quant_config()"); a rank that does not join raises DIST_TIMEOUT.
        """
        return [obj]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


LOCAL = Collective()
"""The one-process group."""


def digest(*parts: Any) -> str:
    """A SHA-256 hex digest of numpy arrays (dtype, shape and bytes), strings, numbers and
    nested lists/tuples/dicts of them: a short fingerprint to compare across processes."""
    hasher = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, np.ndarray):
            hasher.update(f"array:{value.dtype.str}:{value.shape}:".encode())
            hasher.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, Mapping):
            hasher.update(f"dict:{len(value)}:".encode())
            for key in value:
                feed(key)
                feed(value[key])
        elif isinstance(value, (list, tuple)):
            hasher.update(f"seq:{len(value)}:".encode())
            for item in value:
                feed(item)
        else:
            hasher.update(f"{type(value).__name__}:{value!r};".encode())

    for part in parts:
        feed(part)
    return hasher.hexdigest()


def gather_checked(collective: Collective, fingerprint: Mapping[str, str], payload: Any,
                   action: str) -> list[Any]:
    """Every rank's ``payload`` (rank order), after checking that every rank sent the same
    ``fingerprint`` ({what it describes: digest}) as rank 0; every rank raises the same
    DIST_MISMATCH naming the first part that differs and the first rank that differs."""
    gathered = collective.all_gather((dict(fingerprint), payload), action)
    reference = gathered[0][0]
    for rank, (theirs, _) in enumerate(gathered[1:], start=1):
        for what in list(reference) + [k for k in theirs if k not in reference]:
            if reference.get(what) != theirs.get(what):
                raise error("DIST_MISMATCH", action=action, what=what, rank=rank)
    return [item[1] for item in gathered]


_PRIVATE: list[Path] = []


def private_dir() -> Path:
    """This process's own temporary directory (created on first use, removed at exit)."""
    if not _PRIVATE:
        path = Path(tempfile.mkdtemp(prefix="nndct_rank_private_"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _PRIVATE.append(path)
    return _PRIVATE[0]


def write_dir(collective: Collective, output_dir: str | Path) -> Path:
    """Where this rank writes the files of ``output_dir``: the directory itself on the writer,
    a directory of its own under ``private_dir()`` on any other rank."""
    if collective.is_writer:
        return Path(output_dir)
    return private_dir() / digest(str(Path(output_dir).resolve()))[:16]

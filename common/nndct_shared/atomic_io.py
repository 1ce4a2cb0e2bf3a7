"""Atomic file writes: a reader never sees a half-written quant_info.json, config, xmodel,
drawing or generated module, and a failed run leaves the previous file intact."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# mkstemp creates 0600 files; give the result the mode a plain open() would (0666 & ~umask).
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to a temp file in the target's directory, then `os.replace` it over
    `path`, so the file is either the old one or the complete new one."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"cannot write {target}: directory {directory} does not exist; create it first"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target

"""Atomic file writes: a reader never sees a half-written quant_info.json, config, xmodel,
drawing or generated module, and a failed run leaves the previous file intact
(`write_bytes_atomic`); a failed export of many files leaves all previous files intact
(`AtomicBatch`). Exports into an output_dir go through `nndct_shared.export_commit`, which
also survives a kill; AtomicBatch is its fallback where the file system has no symlinks."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
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


def write_new_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Create file `path` (it must not exist) holding `data`, flushed to disk, with the mode a
    plain open() gives (0666 & ~umask)."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return target


class AtomicBatch:
    """All-or-nothing replacement of several files and directories.

    An export writes many files (one xmodel per cell, one dump directory per frame). Writing
    each one atomically is not enough: a failure at the third file would leave the first two
    from this run next to the rest from the previous run, a mix that matches no model. A batch
    stages every file and directory under a temporary name next to its target, then swaps them
    all in at the end; if a swap fails, the ones already swapped are put back, so the targets
    hold either all the old contents or all the new ones.

        with AtomicBatch() as batch:
            batch.write_bytes(out / "a.xmodel", data)
            frame = batch.directory(out / "dump" / "frame_0")   # fill it; it becomes frame_0
            (frame / "x.txt").write_bytes(b"1")

    Leaving the block with an exception discards everything staged and touches no target;
    directories the batch created (`make_dirs`, the parents of `directory`) are removed again
    when they are empty. `write_bytes` needs its target's directory to exist.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path | None, Path, bool]] = []  # (temp or None: remove, target, is_dir)
        self._targets: set[Path] = set()
        self._created: list[Path] = []  # directories made by this batch, parents first

    def __enter__(self) -> "AtomicBatch":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def _claim(self, path: str | os.PathLike[str], want_dir: bool) -> Path:
        target = Path(path)
        key = target.absolute()
        if key in self._targets:
            raise ValueError(f"{target} is written twice in one batch")
        if target.exists() and target.is_dir() != want_dir:
            # Found before anything is written, so the error leaves every target as it was.
            in_the_way, error_type = (
                ("a file", NotADirectoryError) if want_dir else ("a directory", IsADirectoryError)
            )
            raise error_type(f"cannot write {target}: {in_the_way} of that name is in the way")
        self._targets.add(key)
        return target

    def make_dirs(self, path: str | os.PathLike[str]) -> Path:
        """Create directory `path` and its missing parents now (a file in the way raises
        FileExistsError); a discarded batch removes them again if they are empty."""
        target = Path(path)
        missing = []
        probe = target
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        target.mkdir(parents=True, exist_ok=True)
        self._created.extend(reversed(missing))
        return target

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Stage `data` to become file `path` at commit; returns `path`."""
        target = self._claim(path, want_dir=False)
        directory = target.parent if str(target.parent) else Path(".")
        if not directory.is_dir():
            raise FileNotFoundError(
                f"cannot write {target}: directory {directory} does not exist; create it first"
            )
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        self._staged.append((Path(tmp_name), target, False))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        return target

    def directory(self, path: str | os.PathLike[str]) -> Path:
        """Stage a new, empty directory that replaces directory `path` (and everything in it)
        at commit; returns the temporary directory to fill."""
        target = self._claim(path, want_dir=True)
        self.make_dirs(target.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_UMASK)
        self._staged.append((tmp, target, True))
        return tmp

    def adopt(self, staged: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
        """A finished file or directory `staged` (on the same file system) becomes `path` at
        commit, as if it had been staged here; returns `path`."""
        source = Path(staged)
        target = self._claim(path, want_dir=source.is_dir() and not source.is_symlink())
        self._staged.append((source, target, source.is_dir() and not source.is_symlink()))
        return target

    def remove(self, path: str | os.PathLike[str]) -> None:
        """`path` (file or directory, if it exists) is removed at commit, and restored if the
        commit fails."""
        target = self._claim(path, want_dir=Path(path).is_dir())
        self._staged.append((None, target, target.is_dir()))

    def discard(self) -> None:
        """Remove everything staged; no target is touched."""
        for tmp, _, is_dir in self._staged:
            if tmp is not None:
                _remove(tmp, is_dir)
        for directory in reversed(self._created):
            try:
                directory.rmdir()
            except OSError:  # not empty (it held something before) or already gone
                pass
        self._staged.clear()
        self._targets.clear()
        self._created.clear()

    def commit(self) -> None:
        """Swap every staged entry in, in staging order; on failure restore all targets."""
        done: list[tuple[Path, Path | None, bool]] = []  # (target, backup, is_dir)
        try:
            for tmp, target, is_dir in self._staged:
                backup = None
                if tmp is None:  # a removal: move the target aside, restored on failure
                    if os.path.lexists(target):
                        backup = _backup_name(target)
                        os.rename(target, backup)
                        done.append((target, backup, True))
                    continue
                if is_dir and target.exists():
                    # A directory cannot be renamed over a non-empty one: move it aside first.
                    backup = _backup_name(target)
                    os.rename(target, backup)
                elif not is_dir and target.exists():
                    backup = _backup_name(target)
                    os.link(target, backup, follow_symlinks=False)
                done.append((target, backup, is_dir))
                if is_dir:
                    os.rename(tmp, target)
                else:
                    os.replace(tmp, target)
        except BaseException:
            for target, backup, is_dir in reversed(done):
                if backup is None:
                    _remove(target, is_dir)
                elif is_dir:
                    if os.path.lexists(target):
                        _remove(target, target.is_dir() and not target.is_symlink())
                    os.rename(backup, target)
                else:
                    os.replace(backup, target)
                    # rename() between two links of one file (the swap never happened) does
                    # nothing and succeeds, leaving the backup name behind.
                    _remove(backup, False)
            self.discard()
            raise
        for _, backup, is_dir in done:
            if backup is not None:
                try:  # the new files are in place: a backup that stays is no failure
                    _remove(backup, backup.is_dir() and not backup.is_symlink())
                except OSError:
                    pass
        self._staged.clear()
        self._targets.clear()
        self._created.clear()


def _backup_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.old"


def _remove(path: Path, is_dir: bool) -> None:
    try:
        if is_dir:
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass

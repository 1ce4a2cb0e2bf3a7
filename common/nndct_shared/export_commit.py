"""Exports that land in output_dir as one unit, even when the process is killed at any instruction.

Why: an export is several files that only make sense together (quant_info.json with bias_corr.pth
and quant_info_float.json; an xmodel with its deploy-check dumps; the generated modules of one
model). Replacing them one by one, however carefully, leaves moments in which a killed process or
a concurrent reader sees new files next to old ones. So a result is never changed in place: every
export writes a complete new version of the directory's content and switches ONE name to it with
one atomic rename.

Layout (the user-visible paths are the reference's, unchanged)::

    <output_dir>/quant_info.json  -> .nndct_store/current/quant_info.json    stable symlinks, one per
    <output_dir>/xmodel           -> .nndct_store/current/xmodel             top-level name
    <output_dir>/.nndct_store/current  -> versions/<v>     the one name a commit switches
    <output_dir>/.nndct_store/previous -> versions/<u>     kept for readers still inside it
    <output_dir>/.nndct_store/versions/<v>/...             complete results, never modified
    <output_dir>/.nndct_store/staging/<token>/ + .lock     exports being written
    <output_dir>/.nndct_store/lock                         flock: one commit at a time

A reader that opens ``quantize_result/xmodel/a.xmodel`` resolves ``current`` once, during that
open, so every file it opens belongs to a complete version. A reader that needs several files of
one unit from the SAME version pins it (`snapshot`, as test mode does for quant_info.json and
quant_info_float.json); the previous version stays on disk until the next commit, so a pinned
reader has the whole time between two commits to finish. Tools that walk the tree must follow
symlinks (``find -L``, ``os.walk(followlinks=True)``); open, listdir, glob of explicit patterns,
cp/zip/scp of the directory do.

Commit protocol (`ExportUnit`): the export writes its files into its own staging directory
(``staging/<token>``, flock'd so that no other process's sweep removes it while it is written);
then, under the directory lock: sweep (below); move the staging directory to ``versions/<v>``;
hard-link into it every entry of the current version that the unit does not own (no data is
copied); create the stable links of names that are new (they dangle until the switch, which a
reader sees as "no such file", the old state); rename a new ``current`` symlink over the old
one: THE commit point; point ``previous`` at the version that was current; remove stable links
of names the new version dropped and versions other than current and previous. A unit owns the paths it
writes and the paths it declares with `owns` (an export of 6 time steps owns the whole
``deploy_check_data_int/<graph>`` directory, so the frames 6..9 of an older export of 10 steps
are not carried over). Failures after the switch do not fail the export (OUTPUT_CLEANUP warning).

Startup sweep (under the lock, at the start of every commit, so at every quantizer start): what
a killed run left is removed: staging directories whose flock is free (their owner died),
versions other than current and previous, temporary links, stable links that point at nothing,
and, when an output_dir written by an older release is taken over, that release's hidden
``.<name>.<random>.tmp`` / ``.old`` files beside the top-level results (only those older than a
minute: a live writer of that kind may still be using a younger one).

Output directories written by an older release (real files and directories at the stable
paths) are taken over when an export first owns one of their top-level names: the entry is
hard-linked into a version and committed with unchanged content, then replaced by its stable
link (a file in one rename; a directory by a move aside and a rename, a moment in which the
directory is missing; a kill there is repaired by the next sweep).

File systems without symbolic links or file locks (FAT, some network shares): the export then
replaces its entries one by one (`AtomicBatch`: all or nothing on errors, but not under a kill)
and logs OUTPUT_NOT_ATOMIC once per directory.

Two processes that export into one output_dir never see each other's half-written files:
their commits are serialized by the lock (waiting up to ``NNDCT_OUTPUT_LOCK_TIMEOUT`` seconds,
default 120, then OUTPUT_BUSY) and each commit carries the other's finished results forward.

Fault injection (for tests): every step of the protocol calls `_step`; with the environment
variable ``NNDCT_COMMIT_FAULT_STEP=n`` the process kills itself with SIGKILL after the n-th step
it reaches, and ``NNDCT_COMMIT_TRACE=<file>`` appends each step's number and label to the file.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import stat
import time
import uuid
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: exports fall back to AtomicBatch
    fcntl = None  # type: ignore[assignment]

from .atomic_io import AtomicBatch, write_new_file
from .messages import error, warn, warn_once

__all__ = [
    "ExportUnit",
    "STORE_DIR",
    "Snapshot",
    "StagedView",
    "export_unit",
    "output_lock",
    "snapshot",
    "sweep",
]

STORE_DIR = ".nndct_store"
CURRENT, PREVIOUS, VERSIONS, OBJECTS, STAGING, MIGRATING, LOCK_FILE = (
    "current", "previous", "versions", "objects", "staging", "migrating", "lock")
LOCK_TIMEOUT_ENV = "NNDCT_OUTPUT_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 120.0
FAULT_STEP_ENV = "NNDCT_COMMIT_FAULT_STEP"
TRACE_ENV = "NNDCT_COMMIT_TRACE"
LEGACY_DEBRIS_AGE_S = 60.0
"""Temporaries of older releases younger than this may belong to a live writer: kept."""
_LINK_TMP = ".nndct-link-"
_LEGACY_DEBRIS = re.compile(r"^\..+\.(?:[a-z0-9_]{8}\.tmp|[0-9a-f]{12}\.old)$")
"""`tempfile` names (``.<name>.<8 chars>.tmp``) and AtomicBatch backups (``.<name>.<12 hex>.old``)."""
_LINK_FALLBACK_ERRNOS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP,
                         errno.ENOSYS, errno.EACCES}

# --------------------------------------------------------------------------- fault injection

_steps_taken = 0


def _step(label: str) -> None:
    """A boundary between two steps of the protocol (see "Fault injection" above)."""
    kill_at, trace = os.environ.get(FAULT_STEP_ENV), os.environ.get(TRACE_ENV)
    if not kill_at and not trace:
        return
    global _steps_taken
    _steps_taken += 1
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{_steps_taken}\t{ascii(label)[1:-1]}\n")
    if kill_at and int(kill_at) == _steps_taken:
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- small helpers


def _token() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove(path: Path) -> None:
    """Remove a file, link or directory tree; a missing one is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:  # missing, or not empty
        pass


def _stable_target(name: str) -> str:
    return f"{STORE_DIR}/{CURRENT}/{name}"


def _is_stable_link(root: Path, name: str) -> bool:
    try:
        return os.readlink(root / name) == _stable_target(name)
    except OSError:
        return False


def _pointed(store: Path, which: str) -> str | None:
    """The version name `current` / `previous` points at, or None."""
    try:
        target = os.readlink(store / which)
    except OSError:
        return None
    head, _, name = target.partition("/")
    return name if head == VERSIONS and name and "/" not in name else None


def _switch_link(directory: Path, name: str, target: str, tmp_prefix: str) -> None:
    """Make `directory/name` a symlink to `target` with one rename (over a file or a link)."""
    tmp = directory / f"{tmp_prefix}{_token()}.tmp"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, directory / name)
    except BaseException:
        _remove(tmp)
        raise


def _point(store: Path, which: str, version: str) -> None:
    """Switch `store/which` (current, previous) to `versions/<version>`."""
    _switch_link(store, which, f"{VERSIONS}/{version}", f".{which}-")


def _place_link(root: Path, name: str) -> None:
    """Make `root/name` the stable link of `name`."""
    _switch_link(root, name, _stable_target(name), _LINK_TMP)


def _link_file(src: Path, dst: Path) -> None:
    """Give `dst` the content of file `src` without copying data (a hard link); where the file
    system has no hard links, copy it."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in _LINK_FALLBACK_ERRNOS:
            raise
        shutil.copy2(src, dst)


def _link_tree(src: Path, dst: Path, skip_debris: bool = False) -> None:
    """`dst` becomes a copy of directory `src` made of hard links (symlinks copied as links)."""
    os.mkdir(dst)
    for name in _listdir(src):
        if skip_debris and _LEGACY_DEBRIS.match(name):
            continue
        s, d = src / name, dst / name
        if os.path.islink(s):
            os.symlink(os.readlink(s), d)
        elif s.is_dir():
            _link_tree(s, d, skip_debris)
        elif s.is_file():
            _link_file(s, d)


def _relative(root: Path, path: str | os.PathLike[str]) -> PurePosixPath:
    """`path` (joined from `root`) relative to root; it must lie inside it, outside the store."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    parts = PurePosixPath(Path(rel).as_posix()).parts
    if not parts or parts[0] in (".", "..", STORE_DIR) or ".." in parts:
        raise ValueError(f"{path} is not a path inside output_dir {root} (outside {STORE_DIR})")
    return PurePosixPath(*parts)


def _within(path: PurePosixPath, owner: PurePosixPath) -> bool:
    return path == owner or owner in path.parents


# --------------------------------------------------------------------------- the lock


def _lock_timeout() -> float:
    text = os.environ.get(LOCK_TIMEOUT_ENV)
    try:
        return max(0.0, float(text)) if text else DEFAULT_LOCK_TIMEOUT_S
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT_S


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def _acquire(root: Path, timeout: float | None = None) -> int:
    """Take the directory lock (exclusive flock on ``.nndct_store/lock``); OUTPUT_BUSY after
    `timeout` seconds. The holder's pid is written into the file for that message."""
    store = root / STORE_DIR
    wait = _lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        store.mkdir(exist_ok=True)
        path = store / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise error("OUTPUT_BUSY", path=str(root), holder=_holder(path), seconds=f"{wait:g}") from None
            time.sleep(delay)
            delay = min(2 * delay, 0.1)
            continue
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder we waited for may have removed the file (an unused store)
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


def _release(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def output_lock(output_dir: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold the commit lock of `output_dir` (created if missing): no export commits there
    meanwhile. For tools that must see the directory unchanged for a while."""
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    fd = _acquire(root, timeout)
    try:
        yield
    finally:
        _release(fd)


# --------------------------------------------------------------------------- capabilities

_degraded_reasons: dict[str, str | None] = {}


def _degraded_reason(store: Path) -> str | None:
    """Why this file system cannot carry the versioned store (no symlinks or no flock), or None."""
    key = os.path.abspath(store)
    if key in _degraded_reasons:
        return _degraded_reasons[key]
    reason = None
    if fcntl is None:
        reason = "this platform has no POSIX file locks"
    else:
        probe = store / f".probe-{_token()}.tmp"
        try:
            os.symlink(CURRENT, probe)
        except OSError as exc:
            reason = f"symbolic links cannot be created there ({exc.strerror or exc})"
        else:
            os.unlink(probe)
        if reason is None:
            fd = os.open(store / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except BlockingIOError:
                pass  # held by a writer: locks work
            except OSError as exc:
                reason = f"file locks are not supported there ({exc.strerror or exc})"
            finally:
                os.close(fd)
    _degraded_reasons[key] = reason
    return reason


# --------------------------------------------------------------------------- sweep


def _sweep_store(root: Path, own_token: str | None = None) -> None:
    """Remove what killed runs left (see "Startup sweep"); the caller holds the lock."""
    store = root / STORE_DIR
    current = _pointed(store, CURRENT)
    for name in _listdir(store / MIGRATING):  # a take-over killed between its two renames
        if current and not os.path.lexists(root / name) and os.path.lexists(store / VERSIONS / current / name):
            _place_link(root, name)
        _remove(store / MIGRATING / name)
    _rmdir_if_empty(store / MIGRATING)
    staging = store / STAGING
    alive = set()
    for entry in _listdir(staging):
        if not entry.endswith(".lock"):
            continue
        token = entry[: -len(".lock")]
        if token == own_token:
            alive.add(token)
            continue
        try:
            fd = os.open(staging / entry, os.O_RDWR)
        except FileNotFoundError:  # its unit is finishing (it drops its lock without ours):
            alive.add(token)       # it removes its staging itself, or a later sweep does
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alive.add(token)
        else:
            _remove(staging / token)
            _remove(staging / entry)
        finally:
            os.close(fd)
    for entry in _listdir(staging):
        if not entry.endswith(".lock") and entry not in alive:
            _remove(staging / entry)
    _remove_unused(root, store, {current, _pointed(store, PREVIOUS)})
    for entry in _listdir(store):
        if entry.startswith(".") and entry.endswith(".tmp"):
            _remove(store / entry)
    for entry in _listdir(root):
        if entry.startswith(_LINK_TMP) and entry.endswith(".tmp"):
            _remove(root / entry)
    _sweep_legacy_debris(root)


def _sweep_legacy_debris(directory: Path) -> None:
    """Older releases' temporaries in `directory` (not younger than LEGACY_DEBRIS_AGE_S)."""
    now = time.time()
    for entry in _listdir(directory):
        if not _LEGACY_DEBRIS.match(entry):
            continue
        try:
            age = now - os.lstat(directory / entry).st_mtime
        except FileNotFoundError:
            continue
        if age >= LEGACY_DEBRIS_AGE_S:
            _remove(directory / entry)


def sweep(output_dir: str | os.PathLike[str], timeout: float | None = None) -> None:
    """Remove what killed exports left in `output_dir` now (every commit does this first)."""
    root = Path(output_dir)
    if not (root / STORE_DIR).is_dir() or _degraded_reason(root / STORE_DIR):
        _sweep_legacy_debris(root)
        return
    fd = _acquire(root, timeout)
    try:
        _sweep_store(root)
    finally:
        _release(fd)


# --------------------------------------------------------------------------- readers


class Snapshot:
    """The content of output_dir as one version: `path(name)` is where to READ `name` so that
    all files read through one snapshot come from the same complete export."""

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.root = Path(output_dir)
        version = _pointed(self.root / STORE_DIR, CURRENT)
        self.version_dir = None if version is None else self.root / STORE_DIR / VERSIONS / version

    def path(self, name: str | os.PathLike[str]) -> Path:
        """The pinned path of `name` (relative to output_dir); the visible path where `name` is
        not managed by the store (a file written by another tool or an older release)."""
        rel = PurePosixPath(Path(name).as_posix())
        if self.version_dir is not None and rel.parts and _is_stable_link(self.root, rel.parts[0]):
            return self.version_dir / rel
        return self.root / rel


def snapshot(output_dir: str | os.PathLike[str]) -> Snapshot:
    """Pin the current version of `output_dir` for reading (see `Snapshot`)."""
    return Snapshot(output_dir)


class StagedView:
    """The content output_dir will have when an export unit commits, for reading before the
    commit: `path(name)` is the staged file for what the unit writes or owns (missing where it
    owns without writing) and the pinned current version for everything else (what the commit
    carries along). Why: a step that reads back what it is about to commit (QAT builds its
    deployable model from the quant_info.json it stages) reads exactly that, and the files it
    reads and the files it writes land as one unit. Valid until the unit commits or discards."""

    def __init__(self, unit: "ExportUnit") -> None:
        self.root = unit.root
        self._unit = unit
        self._committed = snapshot(unit.root)

    def path(self, name: str | os.PathLike[str]) -> Path:
        rel = _relative(self.root, self.root / name)
        unit = self._unit
        if any(_within(rel, own) for own in (*unit._entries, *unit._owned)):
            return unit._ensure_staging() / rel
        return self._committed.path(rel)


# --------------------------------------------------------------------------- writers


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p; returns the directories it created, parents first."""
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


class ExportUnit:
    """The files of one export into `root`, written aside and committed together (module doc).

    `write_bytes` and `directory` take paths joined from `root` and return the path the entry
    will have; `owns` declares paths that belong to the unit without being written (they
    disappear at commit unless written). Use it through `export_unit` (or
    `nndct_shared.output_dir.staged_export`, which adds the OUTPUT_DIR mapping)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.version: str | None = None
        """Name of the version this unit created, after a commit in versioned mode."""
        self._entries: dict[PurePosixPath, bool] = {}  # written path -> is a directory
        self._owned: set[PurePosixPath] = set()
        self._staging: Path | None = None
        self._token = _token()
        self._staging_lock: int | None = None
        self._created: list[Path] = []
        self._degraded: str | None = None
        self._pending: list[Path] = []  # objects and a version made, not switched to yet

    # --- staging ---------------------------------------------------------------------------

    @property
    def _store(self) -> Path:
        return self.root / STORE_DIR

    def _ensure_staging(self) -> Path:
        if self._staging is not None:
            return self._staging
        self._created = _make_dirs(self.root)
        self._store.mkdir(exist_ok=True)
        self._degraded = _degraded_reason(self._store)
        staging_root = self._store / STAGING
        if self._degraded is None:
            fd = _acquire(self.root)  # under the lock, so no sweep sees it half made
            try:
                staging_root.mkdir(exist_ok=True)
                self._staging_lock = os.open(staging_root / f"{self._token}.lock",
                                             os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
                fcntl.flock(self._staging_lock, fcntl.LOCK_EX)
                (staging_root / self._token).mkdir()
            finally:
                _release(fd)
        else:
            staging_root.mkdir(exist_ok=True)
            (staging_root / self._token).mkdir()
        self._staging = staging_root / self._token
        _step("staging created")
        return self._staging

    def _check_visible(self, rel: PurePosixPath, want_dir: bool) -> None:
        """Found before anything is written, as before: a file where a directory must go (or the
        reverse) is an error, not silently replaced."""
        for parent in reversed(list(rel.parents)[:-1]):
            visible = self.root / parent
            if os.path.exists(visible) and not visible.is_dir():
                raise NotADirectoryError(f"cannot write {self.root / rel}: a file of that name is in the way "
                                         f"({visible})")
        target = self.root / rel
        if os.path.exists(target) and target.is_dir() != want_dir:
            in_the_way, error_type = (("a file", NotADirectoryError) if want_dir
                                      else ("a directory", IsADirectoryError))
            raise error_type(f"cannot write {target}: {in_the_way} of that name is in the way")

    def _claim(self, path: str | os.PathLike[str], want_dir: bool) -> tuple[PurePosixPath, Path]:
        rel = _relative(self.root, path)
        if rel in self._entries:
            raise ValueError(f"{self.root / rel} is written twice in one export")
        self._check_visible(rel, want_dir)
        staged = self._ensure_staging() / rel
        self._entries[rel] = want_dir
        return rel, staged

    def owns(self, path: str | os.PathLike[str]) -> None:
        """`path` belongs to this export: after the commit it holds exactly what the export
        wrote under it, and nothing if it wrote nothing there."""
        self._owned.add(_relative(self.root, path))

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> Path:
        """Stage `data` to become file `path` at commit; returns `path`."""
        rel, staged = self._claim(path, want_dir=False)
        staged.parent.mkdir(parents=True, exist_ok=True)
        write_new_file(staged, data)
        _step(f"staged {rel}")
        return self.root / rel

    def view(self) -> StagedView:
        """What output_dir holds once this unit commits, to read before the commit
        (`StagedView`)."""
        return StagedView(self)

    def directory(self, path: str | os.PathLike[str]) -> Path:
        """Stage a new, empty directory that replaces directory `path` (and everything in it)
        at commit; returns the staging directory to fill."""
        rel, staged = self._claim(path, want_dir=True)
        staged.mkdir(parents=True, exist_ok=True)
        _step(f"staged {rel}/")
        return staged

    # --- commit ----------------------------------------------------------------------------

    def _replaced(self) -> set[PurePosixPath]:
        return set(self._entries) | self._owned

    def commit(self) -> None:
        """Make everything staged visible at once (module doc); on failure nothing changes."""
        try:
            staging = self._ensure_staging()
            if self._degraded is not None:
                self._commit_entry_by_entry(staging)
            else:
                self._commit_version(staging)
        except BaseException:
            self.discard()
            raise
        self._drop_staging_lock()

    def _commit_version(self, staging: Path) -> None:
        root, store = self.root, self._store
        fd = _acquire(root)
        try:
            _step("locked")
            _sweep_store(root, own_token=self._token)
            _step("swept")
            base = _pointed(store, CURRENT)
            replaced = self._replaced()
            touched = {rel.parts[0] for rel in replaced}
            legacy = sorted(n for n in touched if os.path.lexists(root / n) and not _is_stable_link(root, n))
            if legacy:
                base = _take_over(root, base, legacy)
            shown = _shown_entries(root, base)
            (store / OBJECTS).mkdir(exist_ok=True)
            entries = {name: target for name, target in shown.items() if name not in touched}
            for number, name in enumerate(sorted(touched)):
                obj = store / OBJECTS / f"{self._token}-{number}"
                self._pending.append(obj)
                if os.path.lexists(staging / name):
                    os.rename(staging / name, obj)
                if name in shown:  # what this export does not replace comes along (hard links)
                    _carry_entry(store / OBJECTS / _object_name(shown[name]), obj, PurePosixPath(name), replaced)
                if os.path.lexists(obj):
                    entries[name] = _object_link(obj.name)
                _step(f"object {name}")
            version = f"{time.time_ns():x}-{self._token}"
            self._pending.append(store / VERSIONS / version)
            _make_version(store, version, entries)
            _step("version created")
            in_base = set(_listdir(store / VERSIONS / base)) if base is not None else set()
            late = []
            for name in sorted(entries):
                if _is_stable_link(root, name) or os.path.lexists(root / name):
                    continue  # linked already, or another tool's entry, which is left alone
                if name in in_base:
                    late.append(name)  # the old version has it: link after the switch
                    continue
                _place_link(root, name)
                _step(f"linked {name}")
            _point(store, CURRENT, version)  # the commit point
            self._pending, self.version = [], version
            _step("switched")
            try:  # the export is complete: what follows must not report it as failed
                if base is not None:  # kept for readers that pinned it (a hint: may be lost)
                    _point(store, PREVIOUS, base)
                    _step("previous set")
                for name in late:
                    _place_link(root, name)
                    _step(f"linked {name}")
                _remove_unused(root, store, {version, base})
            except OSError as exc:
                warn("OUTPUT_CLEANUP", path=str(root), reason=str(exc))
            _step("cleaned")
        finally:
            _release(fd)
        _remove(staging)  # empty: every staged entry became an object
        self._staging = None
        _step("unlocked")

    def _commit_entry_by_entry(self, staging: Path) -> None:
        """No symlinks or locks: swap the entries in one by one (all or nothing on errors)."""
        warn_once("OUTPUT_NOT_ATOMIC", once_key=os.path.abspath(self.root), path=str(self.root),
                  reason=self._degraded)
        replaced = self._replaced()
        targets = sorted(r for r in replaced if not any(o != r and _within(r, o) for o in self._owned))
        batch = AtomicBatch()
        try:
            for rel in targets:
                staged = staging / rel
                if os.path.lexists(staged):
                    batch.make_dirs((self.root / rel).parent)
                    batch.adopt(staged, self.root / rel)
                else:
                    batch.remove(self.root / rel)
                _sweep_legacy_debris((self.root / rel).parent)
            batch.commit()
        except BaseException:
            batch.discard()
            raise
        _remove(staging)
        self._staging = None

    # --- discard ---------------------------------------------------------------------------

    def _drop_staging_lock(self) -> None:
        if self._staging_lock is None:
            return
        try:
            os.unlink(self._store / STAGING / f"{self._token}.lock")
        except FileNotFoundError:
            pass
        finally:
            os.close(self._staging_lock)  # closing releases the flock
            self._staging_lock = None

    def discard(self) -> None:
        """Remove everything staged; no visible entry changes. A store and output_dir this unit
        created are removed again when nothing else uses them."""
        for leftover in (self._staging, *self._pending):
            if leftover is not None:
                try:
                    _remove(leftover)
                except OSError:
                    pass  # the next sweep removes it
        self._staging, self._pending = None, []
        self._drop_staging_lock()
        if self._created or os.path.isdir(self._store):
            try:
                self._remove_unused_store()
            except OSError:
                pass
        for directory in reversed(self._created):
            try:
                directory.rmdir()
            except OSError:  # not empty: something else is there now
                pass
        self._created = []

    def _remove_unused_store(self) -> None:
        """Remove the store when no version, take-over or other export is in it (a first export
        that failed), so a failed run leaves output_dir as it found it."""
        store = self._store
        if not store.is_dir() or os.path.lexists(store / CURRENT):
            return
        if self._degraded is not None:
            if not _listdir(store / STAGING):
                _remove(store)
            return
        fd = _acquire(self.root, timeout=0.0)
        try:
            if (os.path.lexists(store / CURRENT) or _listdir(store / STAGING) or _listdir(store / VERSIONS)
                    or _listdir(store / MIGRATING)):
                return
            for entry in _listdir(store):
                if entry != LOCK_FILE:
                    _remove(store / entry)
            os.unlink(store / LOCK_FILE)
            store.rmdir()
        finally:
            _release(fd)


def _shown_entries(root: Path, version: str | None) -> dict[str, str]:
    """{top-level name: object link} of `version`, for the names still shown (their stable link
    exists: a name whose link the user deleted is not carried into the next version)."""
    if version is None:
        return {}
    vdir = root / STORE_DIR / VERSIONS / version
    return {name: os.readlink(vdir / name) for name in _listdir(vdir) if _is_stable_link(root, name)}


def _make_version(store: Path, version: str, entries: dict[str, str]) -> Path:
    """`versions/<version>/`: one symlink per top-level name to its (shared) object."""
    (store / VERSIONS).mkdir(exist_ok=True)
    vdir = store / VERSIONS / version
    os.mkdir(vdir)
    for name, target in sorted(entries.items()):
        os.symlink(target, vdir / name)
    return vdir


def _object_link(obj: str) -> str:
    """The target of a version's entry: relative, so the directory can be moved or copied."""
    return f"../../{OBJECTS}/{obj}"


def _object_name(link: str) -> str:
    return link.rsplit("/", 1)[-1]


def _objects_of(store: Path, versions: Iterable[str | None]) -> set[str]:
    """Names of the objects the given versions use."""
    used = set()
    for version in versions:
        if version is None:
            continue
        for name in _listdir(store / VERSIONS / version):
            try:
                used.add(_object_name(os.readlink(store / VERSIONS / version / name)))
            except OSError:
                pass
    return used


def _carry_entry(src: Path, dst: Path, rel: PurePosixPath, replaced: set[PurePosixPath]) -> None:
    if rel in replaced:
        return
    mode = os.lstat(src).st_mode
    if stat.S_ISDIR(mode):
        created = False
        if os.path.lexists(dst):
            if os.path.islink(dst) or not dst.is_dir():
                return  # the export put a file there: it wins
        elif not any(rel in r.parents for r in replaced):
            _link_tree(src, dst)
            return
        else:
            os.mkdir(dst)
            created = True
        for child in _listdir(src):
            _carry_entry(src / child, dst / child, rel / child, replaced)
        if created and not _listdir(dst):
            os.rmdir(dst)  # held only what the export removed
    elif os.path.lexists(dst):
        return
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(mode):
        _link_file(src, dst)


def _take_over(root: Path, base: str | None, names: list[str]) -> str:
    """Commit the entries `names` written by an older release (or another tool) into a version
    with unchanged content, then replace each by its stable link (module doc)."""
    store = root / STORE_DIR
    token = _token()
    entries = _shown_entries(root, base)
    (store / OBJECTS).mkdir(exist_ok=True)
    for number, name in enumerate(names):
        src, obj = root / name, store / OBJECTS / f"{token}-{number}"
        if src.is_dir():
            _link_tree(src, obj, skip_debris=True)
        elif src.is_file():
            _link_file(src, obj)
        else:
            continue  # a link to nothing: nothing to keep
        entries[name] = _object_link(obj.name)
        _step(f"took over {name}")
    version = f"{time.time_ns():x}-{token}"
    _make_version(store, version, entries)
    _point(store, CURRENT, version)
    _step("took over: switched")
    if base is not None:
        _point(store, PREVIOUS, base)
    for name in names:
        src = root / name
        if src.is_dir() and not src.is_symlink():
            (store / MIGRATING).mkdir(exist_ok=True)
            os.rename(src, store / MIGRATING / name)
            _step(f"moved aside {name}")
            _place_link(root, name)
            _step(f"linked {name}")
            _remove(store / MIGRATING / name)
            _rmdir_if_empty(store / MIGRATING)
        else:
            _place_link(root, name)
            _step(f"linked {name}")
    return version


def _remove_unused(root: Path, store: Path, keep: set[str | None]) -> None:
    """Remove stable links that point at nothing (a name no version has, any more), versions
    not in `keep` and the objects no kept version uses."""
    for entry in _listdir(root):
        if _is_stable_link(root, entry) and not os.path.exists(root / entry):
            os.unlink(root / entry)
    for version in _listdir(store / VERSIONS):
        if version not in keep:
            _remove(store / VERSIONS / version)
    used = _objects_of(store, keep)
    for obj in _listdir(store / OBJECTS):
        if obj not in used:
            _remove(store / OBJECTS / obj)


@contextmanager
def export_unit(output_dir: str | os.PathLike[str], owns: Iterable[str] = ()) -> Iterator[ExportUnit]:
    """An `ExportUnit` for one export into `output_dir` (created when missing), committed when
    the block ends; an exception in the block discards it. `owns`: paths relative to output_dir
    that belong to the export (see `ExportUnit.owns`)."""
    unit = ExportUnit(output_dir)
    for rel in owns:
        unit.owns(unit.root / rel)
    try:
        yield unit
    except BaseException:
        unit.discard()
        raise
    unit.commit()

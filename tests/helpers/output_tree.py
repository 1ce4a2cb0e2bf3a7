"""What an output_dir holds, as the tests compare it.

`raw_tree` is every entry below a directory as stored, without following symlinks (the versioned
store of `nndct_shared.export_commit` included): comparing it before and after a failed export
proves that nothing at all changed. `visible_tree` is what a user sees: the stable symlinks
followed, the store left out, links that point at nothing absent. `store_debris` lists what a
killed export may have left that a sweep must remove.
"""
from __future__ import annotations

import os
from pathlib import Path

from nndct_shared.export_commit import CURRENT, PREVIOUS, STAGING, STORE_DIR, VERSIONS


def raw_tree(root: Path) -> dict[str, bytes | str | None]:
    """Relative path -> file bytes, ``"-> target"`` for a symlink, None for a directory."""
    tree: dict[str, bytes | str | None] = {}
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                tree[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                tree[key] = None
            else:
                tree[key] = path.read_bytes()
    return dict(sorted(tree.items()))


def visible_tree(root: Path) -> dict[str, bytes | None]:
    """Relative path -> file bytes (None for a directory), through the stable links, without
    any `.nndct_store`."""
    tree: dict[str, bytes | None] = {}
    for directory, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != STORE_DIR)
        for name in sorted(dirs + files):
            path = Path(directory) / name
            if not path.exists():
                continue  # a link to nothing: a reader sees no such file
            tree[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return dict(sorted(tree.items()))


def store_debris(root: Path) -> list[str]:
    """Leftovers of killed exports in output_dir `root`: staging directories, versions other
    than current and previous, temporaries, and links that point at nothing."""
    store = root / STORE_DIR
    keep = set()
    for pointer in (CURRENT, PREVIOUS):
        if os.path.islink(store / pointer):
            keep.add(os.readlink(store / pointer).split("/", 1)[1])
    found = [f"{STAGING}/{name}" for name in sorted(os.listdir(store / STAGING))] if (store / STAGING).is_dir() else []
    if (store / VERSIONS).is_dir():
        found += [f"{VERSIONS}/{name}" for name in sorted(os.listdir(store / VERSIONS)) if name not in keep]
    if store.is_dir():
        found += [name for name in sorted(os.listdir(store)) if name.endswith(".tmp")]
        found += [name for name in sorted(os.listdir(store)) if name == "migrating"]
    for name in sorted(os.listdir(root)):
        path = root / name
        if name.endswith(".tmp") or name.endswith(".old") or (path.is_symlink() and not path.exists()):
            found.append(name)
    return found

"""Compare two deploy-check dump trees code by code: ``python -m nndct_shared.deploy_check diff A B``.

Why: when a model runs on the hardware (or its simulator) and the result disagrees with the
quantizer, the question is *where* it starts. In a recurrent cell an error at one node of one
time step propagates to every later node and frame, so the useful answer is the first frame and
the first node (in processing order) whose integer codes differ, plus how much differs in all.

The comparison is driven by the files, not by a node list, so it works on every layout the
writers of ``nndct_shared.deploy_check`` produce: the LSTM (and GRU) flows'
``<root>/<graph>/frame_<t>/`` and the CNN flow's ``<root>/<graph>/``, txt or bin. Within a
directory the node order is the order of ``shape.txt`` (processing order); parameters (files
not listed there, dumped in frame 0 / the graph directory) follow in name order. Only the
integer codes (``<stem>_fix.txt`` / ``_fix.bin``) are compared; a record without codes (a float
node) is counted as not compared.

bin files hold no element type: it follows from the size, as the writer chose it from the bit
width (2 bytes per value: int16; 1: int8; half a byte: two 4-bit codes per byte, high nibble
first). The element count comes from ``shape.txt``, or for a parameter from its float32 file.

A tree that is not a dump tree, lacks a frame, a file or values the other tree has, or dumps
other graphs or nodes than the other, raises a catalogued error (``DEPLOY_DIFF_*``) naming the
path; the command prints it and exits with status 2. Status 1 means the trees differ, 0 that
every code agrees (within ``--tolerance`` codes).
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .deploy_check import dump_file_stem
from .messages import NndctError, error

__all__ = ["DUMP_DIR", "GraphDiff", "NodeDiff", "compare_trees", "format_diff", "main", "read_codes"]

DUMP_DIR = "deploy_check_data_int"
_SHAPE_FILE = "shape.txt"
_FRAME = re.compile(r"^frame_(\d+)$")
_SHAPE_LINE = re.compile(r"^\s*[\(\[]([0-9,\s]*)[\)\]]\s*:\s(.*)$")


@dataclass(frozen=True)
class NodeDiff:
    """Codes of one record in one frame that differ by more than the tolerance."""

    frame: int | None
    node: str
    count: int
    differing: int
    max_abs: int


@dataclass
class GraphDiff:
    """The comparison of one graph (cell) directory."""

    graph: str
    frames: int = 0
    framed: bool = True
    records: int = 0
    codes: int = 0
    not_compared: int = 0
    within_tolerance: int = 0
    diffs: list[NodeDiff] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.diffs

    @property
    def first(self) -> NodeDiff | None:
        return self.diffs[0] if self.diffs else None

    @property
    def differing(self) -> int:
        return sum(d.differing for d in self.diffs)

    @property
    def max_abs(self) -> int:
        return max((d.max_abs for d in self.diffs), default=0)


# ----------------------------------------------------------------------------------- reading
def dump_root(path: str | Path) -> Path:
    """The dump root of `path`: the directory itself, or its `deploy_check_data_int`."""
    root = Path(path)
    if not root.is_dir():
        raise error("DEPLOY_DIFF_NOT_A_DUMP", path=str(root), reason="it is not a directory")
    inner = root / DUMP_DIR
    if inner.is_dir() and not _graph_dirs(root):
        return inner
    return root


def _graph_dirs(root: Path) -> dict[str, Path]:
    """Graph directories under `root`: those holding shape.txt or frame_<t> subdirectories."""
    graphs = {}
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        if (child / _SHAPE_FILE).is_file() or any(_FRAME.match(c.name) and c.is_dir() for c in child.iterdir()):
            graphs[child.name] = child
    return graphs


def _frames(graph_dir: Path) -> dict[int | None, Path]:
    frames = {int(m.group(1)): c for c in graph_dir.iterdir()
              if c.is_dir() and (m := _FRAME.match(c.name))}
    if frames:
        return dict(sorted(frames.items()))
    return {None: graph_dir}


def _shape_entries(directory: Path, tree: Path) -> list[tuple[str, int]]:
    """(raw node name, element count) per line of shape.txt, in order."""
    path = directory / _SHAPE_FILE
    if not path.is_file():
        raise error("DEPLOY_DIFF_TRUNCATED", path=str(tree), reason=f"{path} is missing")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        match = _SHAPE_LINE.match(line)
        if not match:
            raise error("DEPLOY_DIFF_NOT_A_DUMP", path=str(tree),
                        reason=f"line {number} of {path} is not '<shape>: <node name>' ({line[:60]!r})")
        dims = [int(d) for d in match.group(1).replace(" ", "").split(",") if d]
        entries.append((match.group(2), int(np.prod(dims, dtype=np.int64)) if dims else 1))
    return entries


def _unpack_nibbles(data: bytes, count: int) -> np.ndarray:
    raw = np.frombuffer(data, dtype=np.uint8)
    pairs = np.stack([raw >> 4, raw & 0xF], axis=1).reshape(-1)[:count].astype(np.int16)
    return np.where(pairs >= 8, pairs - 16, pairs)


def read_codes(directory: Path, stem: str, count: int | None, tree: Path) -> np.ndarray | None:
    """The integer codes of record `stem` in `directory` (None when it has no `_fix` file).

    `count` is the element count from shape.txt; None for a parameter (taken from its float
    file). A file with fewer or more values than that raises DEPLOY_DIFF_TRUNCATED."""
    txt, binary = directory / f"{stem}_fix.txt", directory / f"{stem}_fix.bin"
    if txt.is_file():
        text = txt.read_text(encoding="ascii", errors="replace").split()
        try:
            codes = np.array([int(float(v)) for v in text], dtype=np.int64)
        except ValueError:
            raise error("DEPLOY_DIFF_NOT_A_DUMP", path=str(tree), reason=f"{txt} holds a value that is not an "
                                                                         "integer code") from None
        if count is None:
            float_file = directory / f"{stem}.txt"
            count = len(float_file.read_text(encoding="ascii", errors="replace").split()) if float_file.is_file() \
                else codes.size
        if codes.size != count:
            raise error("DEPLOY_DIFF_TRUNCATED", path=str(tree),
                        reason=f"{txt} holds {codes.size} codes, its shape says {count}")
        return codes
    if binary.is_file():
        data = binary.read_bytes()
        if count is None:
            float_file = directory / f"{stem}.bin"
            if not float_file.is_file():
                raise error("DEPLOY_DIFF_TRUNCATED", path=str(tree), reason=f"{float_file} is missing")
            count = float_file.stat().st_size // 4
        if count and len(data) == 2 * count:
            return np.frombuffer(data, dtype="<i2").astype(np.int64)
        if len(data) == count:
            return np.frombuffer(data, dtype="i1").astype(np.int64)
        if len(data) == (count + 1) // 2:
            return _unpack_nibbles(data, count).astype(np.int64)
        raise error("DEPLOY_DIFF_TRUNCATED", path=str(tree),
                    reason=f"{binary} has {len(data)} bytes, which fits no code width for {count} values")
    return None


def _records(directory: Path, tree: Path) -> dict[str, tuple[str, int | None]]:
    """{stem: (display name, count)}: shape.txt's nodes in order, then parameter files by name."""
    records: dict[str, tuple[str, int | None]] = {}
    for name, count in _shape_entries(directory, tree):
        records[dump_file_stem(name)] = (name, count)
    for path in sorted(directory.iterdir()):
        for suffix in ("_fix.txt", "_fix.bin"):
            if path.name.endswith(suffix):
                stem = path.name[: -len(suffix)]
                records.setdefault(stem, (stem, None))
    return records


# ----------------------------------------------------------------------------------- comparing
def _compare_dir(diff: GraphDiff, frame: int | None, dir_a: Path, dir_b: Path, tree_a: Path, tree_b: Path,
                 tolerance: int) -> None:
    rec_a, rec_b = _records(dir_a, tree_a), _records(dir_b, tree_b)
    where = f"graph '{diff.graph}'" + ("" if frame is None else f", frame_{frame}")
    only_a, only_b = [n for n in rec_a if n not in rec_b], [n for n in rec_b if n not in rec_a]
    if only_a or only_b:
        shown = (f"{where}: only in the first tree: {only_a[:3] or 'none'}; only in the second: "
                 f"{only_b[:3] or 'none'}")
        raise error("DEPLOY_DIFF_FOREIGN", reason=shown)
    for stem, (name, count) in rec_a.items():
        count_b = rec_b[stem][1]
        if count is not None and count_b is not None and count != count_b:
            raise error("DEPLOY_DIFF_FOREIGN", reason=f"{where}: node '{name}' has {count} values in the first "
                                                      f"tree and {count_b} in the second")
        a = read_codes(dir_a, stem, count, tree_a)
        b = read_codes(dir_b, stem, count_b, tree_b)
        diff.records += 1
        if a is None and b is None:
            diff.not_compared += 1
            continue
        if a is None or b is None:
            missing, tree = (dir_a, tree_a) if a is None else (dir_b, tree_b)
            raise error("DEPLOY_DIFF_TRUNCATED", path=str(tree), reason=f"{missing} has no codes of '{name}'")
        if a.size != b.size:
            raise error("DEPLOY_DIFF_FOREIGN", reason=f"{where}: node '{name}' has {a.size} codes in the first "
                                                      f"tree and {b.size} in the second")
        delta = np.abs(a - b)
        diff.codes += int(a.size)
        bad = delta > tolerance
        diff.within_tolerance += int(np.count_nonzero(delta[~bad]))
        if bad.any():
            diff.diffs.append(NodeDiff(frame, name, int(a.size), int(bad.sum()), int(delta.max())))


def compare_graph(name: str, dir_a: Path, dir_b: Path, tree_a: Path, tree_b: Path, tolerance: int = 0) -> GraphDiff:
    """Compare one graph directory of each tree, frame by frame in order."""
    frames_a, frames_b = _frames(dir_a), _frames(dir_b)
    for frames, other, tree in ((frames_a, frames_b, tree_b), (frames_b, frames_a, tree_a)):
        missing = [f for f in frames if f not in other]
        if missing:
            label = "the graph directory itself" if missing[0] is None else f"frame_{missing[0]}"
            raise error("DEPLOY_DIFF_TRUNCATED", path=str(tree),
                        reason=f"graph '{name}' lacks {label} ({len(missing)} frame(s) missing)")
    diff = GraphDiff(name, frames=len(frames_a), framed=None not in frames_a)
    for frame, path_a in frames_a.items():
        _compare_dir(diff, frame, path_a, frames_b[frame], tree_a, tree_b, tolerance)
    return diff


def compare_trees(dir_a: str | Path, dir_b: str | Path, tolerance: int = 0) -> list[GraphDiff]:
    """Every graph of the two dump trees compared (see the module docstring)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise error("REPORT_ARGUMENT", argument="tolerance", problem=f"is {tolerance!r}",
                    hint="Give the tolerance as a non-negative number of codes.")
    root_a, root_b = dump_root(dir_a), dump_root(dir_b)
    graphs_a, graphs_b = _graph_dirs(root_a), _graph_dirs(root_b)
    for root, graphs in ((root_a, graphs_a), (root_b, graphs_b)):
        if not graphs:
            raise error("DEPLOY_DIFF_NOT_A_DUMP", path=str(root),
                        reason="it has no graph directory with a shape.txt or frame_<t> directories")
    if set(graphs_a) != set(graphs_b):
        only_a, only_b = sorted(set(graphs_a) - set(graphs_b)), sorted(set(graphs_b) - set(graphs_a))
        raise error("DEPLOY_DIFF_FOREIGN", reason=f"graphs only in the first tree: {only_a or 'none'}; only in "
                                                  f"the second: {only_b or 'none'}")
    return [compare_graph(name, graphs_a[name], graphs_b[name], root_a, root_b, int(tolerance))
            for name in graphs_a]


def format_diff(diffs: list[GraphDiff], tolerance: int = 0) -> str:
    """The report printed by the command: one paragraph per graph, then a summary line."""
    lines = []
    for d in diffs:
        frames = f"{d.frames} frame(s)" if d.framed else "no frames"
        if d.agree:
            extra = f", {d.within_tolerance} within tolerance {tolerance}" if d.within_tolerance else ""
            skipped = f", {d.not_compared} record(s) without codes" if d.not_compared else ""
            lines.append(f"{d.graph}: agree ({frames}, {d.records} records, {d.codes} codes{extra}{skipped})")
            continue
        f = d.first
        at = "" if f.frame is None else f"frame_{f.frame}, "
        lines.append(f"{d.graph}: DIFFER, first at {at}node '{f.node}': {f.differing} of {f.count} codes "
                     f"differ, by at most {f.max_abs}")
        nodes = len({x.node for x in d.diffs})
        frames_hit = len({x.frame for x in d.diffs})
        spread = f" of {frames_hit} of {d.frames} frame(s)" if d.framed else ""
        lines.append(f"  in all: {d.differing} of {d.codes} codes differ (at most by {d.max_abs}) in {nodes} "
                     f"node(s){spread}")
        for x in d.diffs[1:6]:
            at = "" if x.frame is None else f"frame_{x.frame}, "
            lines.append(f"  then {at}'{x.node}': {x.differing} of {x.count} (max {x.max_abs})")
        if len(d.diffs) > 6:
            lines.append(f"  ... {len(d.diffs) - 6} more differing record(s)")
    bad = sum(not d.agree for d in diffs)
    lines.append(f"summary: {bad} of {len(diffs)} graph(s) differ" + (f" (tolerance {tolerance} codes)"
                                                                       if tolerance else ""))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`diff DIR_A DIR_B [--tolerance CODES]`: exit 0 agree, 1 differ, 2 error."""
    parser = argparse.ArgumentParser(
        prog="python -m nndct_shared.deploy_check",
        description="Tools for deploy-check dump trees (deploy_check_data_int).")
    sub = parser.add_subparsers(dest="command", required=True)
    diff = sub.add_parser("diff", help="compare the integer codes of two dump trees",
                          description="Compare two dump trees (ours and a hardware or simulator run, or two "
                                      "of our runs) and print, per graph / cell, the first frame and node "
                                      "whose codes differ, how many codes differ and by how much. Exit "
                                      "status 0 when every code agrees, 1 when some differ, 2 on an error.")
    diff.add_argument("dir_a", help="first dump tree (deploy_check_data_int or the directory holding it)")
    diff.add_argument("dir_b", help="second dump tree")
    diff.add_argument("--tolerance", type=int, default=0, metavar="CODES",
                      help="codes that differ by at most this much count as agreeing (default 0)")
    args = parser.parse_args(argv)
    try:
        diffs = compare_trees(args.dir_a, args.dir_b, args.tolerance)
    except NndctError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    sys.stdout.write(format_diff(diffs, args.tolerance))
    return 0 if all(d.agree for d in diffs) else 1

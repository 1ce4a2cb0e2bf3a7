"""Pictures of an inspection: `inspect_<target>.gv` (Graphviz source) and `.svg` / `.png`.

Why the dot source is written by hand rather than with the python `graphviz` package that
`nndct_shared.xmodel.render` uses: the guide promises the `.gv` file whenever a picture is
asked for, also on machines without Graphviz, and the python package is only an optional
extra. The picture itself comes from the Graphviz `dot` program; when it is missing, the
`.gv` is still written and a catalogued warning (DOT_NOT_FOUND) is shown once.

Nodes are coloured by device (DPU blue, CPU red, as the reference drew them) and grouped in
one cluster per device subgraph.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..messages import error, warn_once
from ..output_dir import staged_export
from .partition import DPU, InspectResult

__all__ = ["IMAGE_FORMATS", "image_names", "render_images", "to_dot", "write_images"]

IMAGE_FORMATS = ("svg", "png")
_COLOUR = {DPU: "blue", "CPU": "red"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(result: InspectResult) -> str:
    """The Graphviz source of the inspection (deterministic: topological order)."""
    graph = result.graph
    ids = {name: f"n{i}" for i, name in enumerate(result.assignments)}
    lines = [f"digraph {_quote(graph.name)} {{",
             f"  graph [label={_quote(f'{graph.name} on {result.target.name}')}];",
             '  node [shape=box fontname="Helvetica" fontsize=10];']
    for sub in result.subgraphs:
        colour = _COLOUR[sub.device]
        lines.append(f"  subgraph {_quote('cluster_' + sub.name)} {{")
        lines.append(f"    label={_quote(sub.name)}; color={colour};")
        for name in sub.nodes:
            assignment = result.assignments[name]
            shapes = []
            for out in graph.node(name).outputs:
                meta = graph.tensor(out)
                shapes.append(None if meta is None or meta.shape is None else list(meta.shape))
            label = (f"type:{assignment.op_type}\nname:{name}\n"
                     f"assigned device:{assignment.device}\nout shape:{shapes}")
            lines.append(f"    {ids[name]} [label={_quote(label)} color={colour}];")
        lines.append("  }")
    for name in result.assignments:
        for successor in graph.successors(name):
            lines.append(f"  {ids[name]} -> {ids[successor.name]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def image_names(result: InspectResult) -> list[str]:
    """Every picture file an inspection for `result`'s target may write (`.gv`, `.svg`,
    `.png`): what one inspection owns in its output_dir."""
    stem = f"inspect_{result.target.name}"
    return [f"{stem}.gv", *(f"{stem}.{fmt}" for fmt in IMAGE_FORMATS)]


def render_images(result: InspectResult, image_format: str | None,
                  output_dir: str | os.PathLike[str]) -> dict[str, bytes]:
    """{file name: content} of `inspect_<target>.gv` and, with `image_format` "svg" or "png",
    the picture drawn by `dot`; nothing is written (`output_dir` only names the `.gv` in the
    DOT_NOT_FOUND warning). `image_format=None`: no pictures."""
    if image_format is None:
        return {}
    fmt = str(image_format).lower()
    if fmt not in IMAGE_FORMATS:
        raise error("INSPECTOR_OUTPUT_FORMAT", value=image_format)
    stem = f"inspect_{result.target.name}"
    source = to_dot(result).encode("utf-8")
    files = {f"{stem}.gv": source}
    dot = shutil.which("dot")
    if dot is None:
        warn_once("DOT_NOT_FOUND", what=f"the inspection picture ({fmt})", path=str(Path(output_dir) / f"{stem}.gv"))
        return files
    files[f"{stem}.{fmt}"] = subprocess.run([dot, f"-T{fmt}"], input=source, capture_output=True, check=True,
                                            timeout=120).stdout
    return files


def write_images(result: InspectResult, output_dir: str | os.PathLike[str],
                 image_format: str | None = "svg") -> list[Path]:
    """Write `inspect_<target>.gv` and, with `image_format` "svg" or "png", the picture drawn
    by `dot`, as one export unit (`render_images`). `image_format=None` writes nothing (the
    guide's way to skip pictures). Returns the paths written."""
    files = render_images(result, image_format, output_dir)
    if not files:
        return []
    with staged_export(output_dir) as unit:
        return [unit.write_bytes(unit.root / name, data) for name, data in files.items()]

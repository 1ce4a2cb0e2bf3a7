"""One call for a front end's `Inspector.inspect`: partition, report, pictures, screen notes.

The report and the pictures of one call are one export unit (`nndct_shared.output_dir.
staged_export`): built in memory first (`dot` included), then committed together, so a reader
of output_dir never sees a report beside the picture of another inspection, a kill leaves the
previous inspection whole, and the unit owns the target's `.gv` / `.svg` / `.png`, so an
inspection without pictures (or with the other format) removes the older ones.

Why a separate entry: the PyTorch (and later Keras) `Inspector` only has to capture its model
as a neutral graph; everything after that is the same for both front ends.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..graph import Graph
from ..messages import NndctError, error, note
from .partition import InspectResult, inspect_graph
from ..output_dir import staged_export
from .render import IMAGE_FORMATS, image_names, render_images
from .report import render_report, report_file_name, show_on_screen
from .targets import DpuTarget, get_target

__all__ = ["inspector_target", "run_inspection"]


def _is_fingerprint(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip().lower().startswith("0x"))


def inspector_target(name_or_fingerprint: str | int) -> DpuTarget:
    """The target of a front end's `Inspector(name_or_fingerprint)`: by name
    (`DPUCZDX8G_ISA1_B4096`) or fingerprint (`"0x603000b16013831"` or an int). An unknown name
    is UNKNOWN_TARGET listing the known targets; a fingerprint that is neither registered nor
    decodable is the guide's INSPECTOR_INPUT_FORMAT (pass the name instead)."""
    try:
        return get_target(name_or_fingerprint)
    except NndctError as exc:
        if (exc.msg_id or "").endswith("UNKNOWN_TARGET") and _is_fingerprint(name_or_fingerprint):
            raise error("INSPECTOR_INPUT_FORMAT", value=name_or_fingerprint) from exc
        raise


def run_inspection(graph: Graph, target: str | int | DpuTarget,
                   output_dir: str | os.PathLike[str] = "quantize_result",
                   verbose_level: int = 1,
                   image_format: str | None = None) -> tuple[InspectResult, list[Path]]:
    """Inspect `graph` for `target`; write `inspect_<target>.txt` (always) and, with
    `image_format` "svg"/"png", `inspect_<target>.gv` plus the picture, under `output_dir`.
    Shows the guide's start/finish notes and the `verbose_level` summary (0, 1, 2).
    Returns the result and the written paths (report first)."""
    if image_format is not None and str(image_format).lower() not in IMAGE_FORMATS:
        raise error("INSPECTOR_OUTPUT_FORMAT", value=image_format)
    note("INSPECT_START")
    result = inspect_graph(graph, target)
    files = {report_file_name(result): render_report(result).encode("utf-8"),
             **render_images(result, image_format, output_dir)}
    # one unit: the report and the pictures of one inspection appear together; it owns the
    # target's other pictures, which an earlier inspection drew of another result
    with staged_export(output_dir, owns=image_names(result)) as unit:
        written = [unit.write_bytes(unit.root / name, data) for name, data in files.items()]
    show_on_screen(result, verbose_level, str(written[0]))
    note("INSPECT_END")
    return result, written

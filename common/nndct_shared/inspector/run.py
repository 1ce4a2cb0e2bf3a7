"""One call for a front end's `Inspector.inspect`: partition, report, pictures, screen notes.

Why a separate entry: the PyTorch (and later Keras) `Inspector` only has to capture its model
as a neutral graph; everything after that is the same for both front ends.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..graph import Graph
from ..messages import error, note
from .partition import InspectResult, inspect_graph
from .render import IMAGE_FORMATS, write_images
from .report import show_on_screen, write_report
from .targets import DpuTarget

__all__ = ["run_inspection"]


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
    report = write_report(result, output_dir)
    show_on_screen(result, verbose_level, str(report))
    pictures = write_images(result, output_dir, image_format)
    note("INSPECT_END")
    return result, [report, *pictures]

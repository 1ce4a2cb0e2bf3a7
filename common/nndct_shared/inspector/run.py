"""One call for a front end's `Inspector.inspect`: partition, report, pictures, screen notes.

Why a separate entry: the PyTorch (and later Keras) `Inspector` only has to capture its model
as a neutral graph; everything after that is the same for both front ends.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..graph import Graph
from ..messages import NndctError, error, note
from .partition import InspectResult, inspect_graph
from .render import IMAGE_FORMATS, write_images
from .report import show_on_screen, write_report
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
    report = write_report(result, output_dir)
    show_on_screen(result, verbose_level, str(report))
    pictures = write_images(result, output_dir, image_format)
    note("INSPECT_END")
    return result, [report, *pictures]

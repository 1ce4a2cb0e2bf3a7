"""The Inspector's text outputs: the `inspect_<target>.txt` report and the screen summary.

Why this layout: the user guide describes `inspect_{target}.txt` as "Target information and all
the details of operations in float model", and the reference wrote, in this order, a field
description, the target info, an inspection summary (the table of CPU operators with their
hardware constraints), then one block per node (name, input/output nodes, op type, output
shape, attributes, assigned device, hardware constraints, node messages). We keep that
structure, add the device subgraphs and, for every DPU node, the engine that runs it (so every
operator carries the reason of its assignment), and write it as an export unit.

Screen output follows the guide's `verbose_level`: 0 nothing, 1 the operators assigned to the
CPU, 2 the device of every operator.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..messages import note
from ..output_dir import staged_export
from .partition import InspectResult

__all__ = ["report_file_name", "render_report", "write_report", "screen_summary",
           "show_on_screen", "table"]

_SEP = "=" * 100
_FIELDS = (
    "# The inspect_<target>.txt file shows how every operation of the model maps to the target.",
    "# Field description:",
    "# target info: the DPU configuration and the limits the inspection applied.",
    "# inspection summary: the operators assigned to the CPU and why.",
    "# subgraphs: connected sets of operators on one device (each DPU subgraph is one DPU run).",
    "# node name: the name of the node in the graph.",
    "# input nodes / output nodes: the producers / consumers of the node.",
    "# op type: the operation (the neutral graph's op vocabulary).",
    "# outputs shape: the shapes of the node's outputs (channels-first, as in PyTorch).",
    "# op attributes: the attributes of the operation.",
    "# assigned device: DPU or CPU.",
    "# dpu engine: why the DPU runs the operation: the engine that computes it (DPU nodes only).",
    "# hardware constraints: why the DPU cannot run the operation (CPU nodes only).",
    "# node messages: extra information, e.g. what hardware-aware quantization changes.",
)


def report_file_name(result: InspectResult) -> str:
    return f"inspect_{result.target.name}.txt"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned table: header, dashes, rows (columns two spaces apart)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def _value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {list(value.shape)} {value.dtype}>"
    return repr(value) if isinstance(value, str) else str(value)


def _cpu_rows(result: InspectResult) -> list[tuple[str, str, str]]:
    return [(a.name, a.op_type, a.reason) for a in result.cpu_nodes]


def render_report(result: InspectResult) -> str:
    """The full text of `inspect_<target>.txt`."""
    graph = result.graph
    lines = list(_FIELDS) + ["", _SEP, "target info:", _SEP, result.target.describe(), "",
                             _SEP, "inspection summary:", _SEP]
    rows = _cpu_rows(result)
    if rows:
        lines.append("The operators assigned to the CPU are as follows:")
        lines.append(table(rows, ("node name", "op type", "hardware constraints")))
    else:
        lines.append("All the operators are assigned to the DPU.")
    lines += [_SEP, "subgraphs:", _SEP]
    for sub in result.subgraphs:
        lines.append(f"{sub.name} ({sub.device}): {', '.join(sub.nodes)}")
    lines += [_SEP, f"graph name: {graph.name}"]
    for name, assignment in result.assignments.items():
        node = graph.node(name)
        shapes = []
        for out in node.outputs:
            meta = graph.tensor(out)
            shapes.append(None if meta is None or meta.shape is None else list(meta.shape))
        lines += [
            _SEP,
            f"node name: {name}",
            f"input nodes: {[p.name for p in graph.predecessors(name)]}",
            f"output nodes: {[s.name for s in graph.successors(name)]}",
            f"op type: {node.op_type}",
            f"outputs shape: {shapes}",
            "op attributes:",
        ]
        lines += [f"  {key}: {_value(value)}" for key, value in node.attrs.items()]
        lines.append(f"assigned device: {assignment.device}")
        if assignment.engine:
            lines.append(f"dpu engine: {assignment.engine}")
        if assignment.reason:
            lines.append(f"hardware constraints: {assignment.reason}")
        if assignment.notes:
            lines.append("node messages:")
            lines += [f"  {message}" for message in assignment.notes]
    return "\n".join(lines) + "\n"


def write_report(result: InspectResult, output_dir: str | os.PathLike[str]) -> Path:
    """Write `output_dir/inspect_<target>.txt` as an export unit of its own (the directory is
    created; `run_inspection` stages it with the pictures instead)."""
    with staged_export(output_dir) as unit:
        return unit.write_bytes(unit.root / report_file_name(result), render_report(result).encode("utf-8"))


def screen_summary(result: InspectResult, verbose_level: int, report_path: str) -> str | None:
    """The text shown on screen for `verbose_level` (None for 0)."""
    if verbose_level <= 0:
        return None
    if verbose_level == 1:
        rows = _cpu_rows(result)
        if not rows:
            return f"All the operators are assigned to the DPU(see more details in '{report_path}')"
        return (f"The operators assigned to the CPU are as follows(see more details in "
                f"'{report_path}'):\n" + table(rows, ("node name", "op type",
                                                      "hardware constraints")))
    rows2 = [(a.name, a.op_type, a.device) for a in result.assignments.values()]
    return (f"Operator device allocation table(see more details in '{report_path}'):\n"
            + table(rows2, ("node name", "op type", "assigned device")))


def show_on_screen(result: InspectResult, verbose_level: int, report_path: str) -> str | None:
    """Log `screen_summary` as a VAIQ note; return the text (None when nothing is shown)."""
    text = screen_summary(result, verbose_level, report_path)
    if text is not None:
        note(text)
    return text


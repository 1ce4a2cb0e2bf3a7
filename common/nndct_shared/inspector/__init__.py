"""The Inspector, framework-neutral part: DPU target database, DPU/CPU partition of a neutral
CNN graph, the `inspect_<target>.txt` report, Graphviz pictures and the hardware-aware
quantization adjustments.

A front end captures its model as a `nndct_shared.graph.Graph` (op vocabulary of
`graph.ops`) and calls `run_inspection`; the quantizer with `target=` calls
`hardware_aware_adjustments` / `hardware_aware_partition`.
"""
from __future__ import annotations

from .adjust import Adjustment, hardware_aware_adjustments, hardware_aware_partition
from .partition import CPU, DPU, InspectResult, NodeAssignment, Subgraph, inspect_graph
from .render import IMAGE_FORMATS, to_dot, write_images
from .report import render_report, report_file_name, screen_summary, write_report
from .run import inspector_target, run_inspection
from .targets import BIT_WIDTH, LEAKY_RELU_ALPHA, DpuTarget, get_target, known_targets

__all__ = [
    "Adjustment", "BIT_WIDTH", "CPU", "DPU", "DpuTarget", "IMAGE_FORMATS", "InspectResult",
    "LEAKY_RELU_ALPHA", "NodeAssignment", "Subgraph", "get_target", "hardware_aware_adjustments",
    "hardware_aware_partition",
    "inspect_graph", "inspector_target", "known_targets", "render_report", "report_file_name", "run_inspection",
    "screen_summary", "to_dot", "write_images", "write_report",
]

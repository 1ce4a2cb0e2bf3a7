"""Assemble the report's numbers (the content of quant_report.json) from a flow's runner.

Flow-neutral: the LSTM and CNN drivers collect the per-tensor statistics and (LSTM) the per-cell
analyses, and hand in a `PlanRunner`; this module adds the model-level error and metric, the
sensitivity ranking and the suggestion, and returns one JSON-ready dict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import __version__
from ..messages import error
from .metrics import TensorStats, json_number, output_error
from .quant import QuantTensor
from .sensitivity import Evaluations, PlanRunner, Target, measure_sensitivity, suggest

__all__ = ["FORMAT", "ReportOptions", "build_report"]

FORMAT = "nndct_quant_report"
VERSION = 1
DEFINITIONS = {
    "sqnr_db": "10 log10(sum float^2 / sum (quantized - float)^2) against the float model fed the same "
               "inputs; 'inf' means no error",
    "local_sqnr_db": "the tensor's own rounding and clipping: after against before its quantization",
    "clipped_share": "share of values whose code before the clamp lies outside the bit width's range",
    "flushed_share": "share of values that are not zero but quantize to zero",
    "output_error": "sum (y - y_float)^2 / sum y_float^2 over the model outputs",
    "only_error": "output error with only this tensor quantized (every other tensor float)",
    "all_but_error": "output error with every tensor quantized except this one",
    "node_sqnr_db": "per cell node and time step (processing order), the quantized cell against the float "
                    "cell fed the same inputs (the inputs the quantized cell received in the model)",
    "drift": "per time step, the RMS of (quantized - float) of each recurrent state, and its ratio to the "
             "float state's RMS",
}


@dataclass(frozen=True)
class ReportOptions:
    """The knobs of `report()` (see the front ends' docstrings)."""

    target_error: float = 0.01
    max_metric_drop: float | None = None
    high_bit_width: int = 16
    sensitivity: bool = True

    def check(self) -> None:
        if not (isinstance(self.target_error, (int, float)) and 0 < self.target_error < math.inf):
            raise error("REPORT_ARGUMENT", argument="target_error", problem=f"is {self.target_error!r}",
                        hint="Give the output error to reach as a positive number (0.01 = 20 dB output SQNR).")
        if self.max_metric_drop is not None and not (isinstance(self.max_metric_drop, (int, float))
                                                     and self.max_metric_drop >= 0):
            raise error("REPORT_ARGUMENT", argument="max_metric_drop", problem=f"is {self.max_metric_drop!r}",
                        hint="Give the allowed drop of eval_fn below float as a non-negative number.")
        if isinstance(self.high_bit_width, bool) or not isinstance(self.high_bit_width, int) or \
                not 2 <= self.high_bit_width <= 16:
            raise error("REPORT_ARGUMENT", argument="high_bit_width", problem=f"is {self.high_bit_width!r}",
                        hint="Give the bit width of the tensors the suggestion keeps precise, 2..16 (16).")


def tensor_rows(tensors: Sequence[QuantTensor], stats: Mapping[str, TensorStats]) -> list[dict[str, Any]]:
    """One row per quantized tensor: its grid and statistics."""
    return [{"name": t.name, "group": t.group, "kind": t.kind, "label": t.label, **t.quant.describe(),
             **stats[t.name].to_json()} for t in tensors if t.name in stats]


def build_report(*, flow: str, framework: str, mode: str, runner: PlanRunner, tensors: Sequence[QuantTensor],
                 stats: Mapping[str, TensorStats], reference: Sequence[np.ndarray],
                 quantized: Sequence[np.ndarray], options: ReportOptions, cells: Sequence[dict[str, Any]] = (),
                 suggestion_config: Callable[[list[str]], dict[str, Any]] | None = None,
                 notes: Sequence[str] = ()) -> dict[str, Any]:
    """The report as a JSON-ready dict (see `DEFINITIONS` for every number)."""
    evaluate = Evaluations(runner, reference)
    full = {t.name: t.quant for t in tensors}
    model: dict[str, Any] = {"outputs": int(sum(np.asarray(r).size for r in reference)),
                             "output_error": output_error(reference, quantized)}
    model["output_sqnr_db"] = json_number(-10 * math.log10(model["output_error"]) if model["output_error"] > 0
                                          else math.inf)
    metric_float = None
    if runner.has_metric:
        metric_float = runner.metric({})
        model["metric_float"], model["metric_quantized"] = metric_float, runner.metric(full)
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "producer": f"nndct-fixpoint {__version__}",
        "flow": flow, "framework": framework, "mode": mode,
        "bit_widths": sorted({t.quant.bit_width for t in tensors}),
        "definitions": DEFINITIONS, "model": model,
        "tensors": tensor_rows(tensors, stats), "cells": list(cells), "notes": list(notes),
    }
    if not options.sensitivity:
        doc["sensitivity"], doc["suggestion"] = None, None
        return doc
    rows = measure_sensitivity(evaluate, tensors)
    doc["sensitivity"] = {"measure": "output_error" + (" and metric" if runner.has_metric else ""),
                          "rows": [{k: json_number(v) if isinstance(v, float) else v for k, v in r.items()}
                                   for r in rows]}
    drop = options.max_metric_drop
    if runner.has_metric and drop is None:
        drop = 0.01 * abs(metric_float)
    target = Target(options.target_error, metric_float, drop)
    suggestion = suggest(evaluate, tensors, rows, target)
    doc["suggestion"] = {"high_bit_width": options.high_bit_width, "target": target.to_json(),
                         **suggestion.to_json()}
    if suggestion_config is not None:
        doc["suggestion"]["config"] = suggestion_config(suggestion.keep)
    doc["model"]["runs"] = evaluate.count
    return doc

"""Which tensors cost accuracy, and the fewest to keep at more bits: flow-neutral.

A flow supplies a `PlanRunner`: run the model on the report's inputs with the tensors of a plan
quantized (the rest float) and return its outputs, and, when the user gave an `eval_fn`, the
user's metric under a plan. From that:

- sensitivity of tensor t: the output error (and metric) with only t quantized, and with every
  tensor but t quantized; rows ranked by the first (largest error first);
- suggestion: starting from the calibrated model, tensors are moved to their `high` grid (16
  bits by default) in the order of their "all but" result (the tensor whose quantization costs
  most when everything else is quantized first) until the target is met: output error at most
  `target_error`, or with an `eval_fn`, a metric at most `max_metric_drop` below float. The set
  is then pruned: each chosen tensor whose removal still meets the target is dropped again. So
  no single tensor of the suggestion can be left out (a minimal set, not necessarily the
  smallest of all: that search is combinatorial).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from ..progress import progress
from .metrics import json_number, output_error
from .quant import QuantPlan, QuantTensor

__all__ = ["Evaluations", "PlanRunner", "Suggestion", "Target", "measure_sensitivity", "suggest"]


class PlanRunner(Protocol):
    """What a flow provides to the report (see the module docstring)."""

    has_metric: bool

    def outputs(self, plan: QuantPlan) -> list[np.ndarray]: ...

    def metric(self, plan: QuantPlan) -> float: ...


@dataclass(frozen=True)
class Target:
    """When the suggestion is good enough (see the module docstring)."""

    error: float
    metric_float: float | None = None
    max_metric_drop: float | None = None

    def met(self, error: float, metric: float | None) -> bool:
        if self.metric_float is not None and metric is not None:
            return metric >= self.metric_float - self.max_metric_drop
        return error <= self.error

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"output_error": self.error}
        if self.metric_float is not None:
            out.update(metric_min=self.metric_float - self.max_metric_drop, max_metric_drop=self.max_metric_drop)
        return out


def _sqnr(error: float) -> float:
    if error <= 0:
        return math.inf
    return -10.0 * math.log10(error) if math.isfinite(error) else -math.inf


class Evaluations:
    """Runs plans, remembering the results, counting the runs."""

    def __init__(self, runner: PlanRunner, reference: Sequence[np.ndarray]) -> None:
        self.runner, self.reference, self.count = runner, reference, 0
        self._cache: dict[frozenset, tuple[float, float | None]] = {}

    def __call__(self, plan: QuantPlan) -> tuple[float, float | None]:
        key = frozenset((name, q) for name, q in plan.items())
        if key not in self._cache:
            self.count += 1
            error = output_error(self.reference, self.runner.outputs(plan))
            metric = self.runner.metric(plan) if self.runner.has_metric else None
            self._cache[key] = (error, metric)
        return self._cache[key]


def measure_sensitivity(evaluate: Evaluations, tensors: Sequence[QuantTensor]) -> list[dict[str, Any]]:
    """One row per tensor (output error and metric with only it / all but it quantized), ranked."""
    full = {t.name: t.quant for t in tensors}
    rows = []
    for t in progress(tensors, "report: sensitivity", unit="tensor"):
        only_error, only_metric = evaluate({t.name: t.quant})
        rest = dict(full)
        del rest[t.name]
        but_error, but_metric = evaluate(rest)
        rows.append({"name": t.name, "group": t.group, "kind": t.kind, "label": t.label,
                     "only_error": only_error, "only_sqnr_db": _sqnr(only_error), "only_metric": only_metric,
                     "all_but_error": but_error, "all_but_sqnr_db": _sqnr(but_error), "all_but_metric": but_metric})
    rows.sort(key=lambda r: (-r["only_error"], r["name"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    for rank, row in enumerate(sorted(rows, key=_recovery_key), 1):
        row["rank_all_but"] = rank
    return rows


def _recovery_key(row: dict[str, Any]) -> tuple:
    """Most output recovered by keeping this tensor precise first (metric first when known)."""
    metric = row["all_but_metric"]
    return (-(metric if metric is not None else 0.0), row["all_but_error"], row["name"])


@dataclass
class Suggestion:
    keep: list[str] = field(default_factory=list)
    error: float = 0.0
    metric: float | None = None
    reached: bool = False
    evaluations: int = 0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"keep": self.keep, "output_error": self.error, "output_sqnr_db": json_number(_sqnr(self.error)),
                "metric": self.metric, "reached": self.reached, "evaluations": self.evaluations,
                "note": self.note}


def suggest(evaluate: Evaluations, tensors: Sequence[QuantTensor], rows: Sequence[dict[str, Any]],
            target: Target) -> Suggestion:
    """The fewest tensors (see the module docstring) to move to their `high` grid."""
    by_name = {t.name: t for t in tensors}
    order = [r["name"] for r in sorted(rows, key=_recovery_key)
             if by_name[r["name"]].high is not None and by_name[r["name"]].high.bit_width > by_name[r["name"]].quant.bit_width]
    start = evaluate.count

    def plan(keep: Sequence[str]) -> dict:
        chosen = set(keep)
        return {t.name: (t.high if t.name in chosen else t.quant) for t in tensors}

    error, metric = evaluate(plan([]))
    if target.met(error, metric):
        return Suggestion([], error, metric, True, evaluate.count - start, "the calibrated model already meets the target")
    if not order:
        return Suggestion([], error, metric, False, evaluate.count - start,
                          "no tensor can be widened (every tensor is already at the high bit width)")
    chosen: list[str] = []
    reached = False
    for name in progress(order, "report: suggestion", unit="tensor"):
        chosen.append(name)
        error, metric = evaluate(plan(chosen))
        if target.met(error, metric):
            reached = True
            break
    if reached:
        for name in list(reversed(chosen)):
            trial = [n for n in chosen if n != name]
            e, m = evaluate(plan(trial))
            if target.met(e, m):
                chosen, error, metric = trial, e, m
    note = "" if reached else "the target is not met even with every candidate tensor at the high bit width"
    return Suggestion(chosen, error, metric, reached, evaluate.count - start, note)


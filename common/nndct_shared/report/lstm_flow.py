"""The report of the recurrent flow (both front ends): drive the user's model through stand-ins
for its quantized LSTM and GRU stacks.

A front end only has to run its model on the report's inputs with each `QuantizedLstmStack` /
`QuantizedGruStack` of the session replaced by another object with the same `forward`
(`LstmModelHooks`): the stand-in (`StackProbe`, `GruStackProbe`) feeds the layers exactly as the stack does and, per cell, either runs the
fixed-point datapath and keeps the inputs the cell received (the capture run), or evaluates the
cell graph with the tensors of a plan quantized (every other run). Everything else is neutral:
the per-cell analysis (`recurrent.CellAnalysis`), the sensitivity and the suggestion.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from ..gru.stack import QuantizedGruStack
from ..lstm.session import LstmQuantSession
from ..lstm.stack import QuantizedLstmStack
from ..progress import progress
from .build import ReportOptions, build_report
from .metrics import TensorStats
from .quant import QuantPlan, QuantTensor
from .recurrent import CellAnalysis, CellCall, RecurrentCell, recurrent_cell
from .recurrent_config import recurrent_config
from .write import ReportFiles, write_report

__all__ = ["GruStackProbe", "LstmModelHooks", "StackProbe", "probe_for", "report_lstm_session"]

CellFn = Callable[[Any, CellCall], tuple[np.ndarray, dict[str, np.ndarray]]]


class LstmModelHooks(Protocol):
    """What a front end provides: its model run on the report's inputs with the session's stacks
    replaced by `stacks` (same order as `session.stacks`), outputs as float numpy arrays; and the
    user's eval_fn under the same replacement (only called when `has_metric`)."""

    has_metric: bool

    def outputs(self, stacks: Sequence[Any]) -> list[np.ndarray]: ...

    def metric(self, stacks: Sequence[Any]) -> float: ...


class StackProbe:
    """Stands in for a `QuantizedLstmStack`: same attributes, same `forward`, but each cell call
    goes to `cell_fn(cell, CellCall)`; nothing of the real stack (calibration counts, fix
    positions) is changed. `probe_for` picks this class or `GruStackProbe` by the stack's kind."""

    def __init__(self, stack: QuantizedLstmStack | QuantizedGruStack, cell_fn: CellFn) -> None:
        self._stack = stack
        self._cell_fn = cell_fn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack, name)

    def _probe(self, x, lengths, states, out_dtype):
        stack = self._stack
        names = stack.state_names

        def run_cell(cell, x_in, lens, cell_states):
            out, finals = self._cell_fn(cell, CellCall(np.asarray(x_in, np.float64), lens,
                                                       dict(zip(names, cell_states))))
            return out, tuple(finals[name] for name in names)

        out, finals = stack.run_layers(np.asarray(x, dtype=np.float64), lengths, states, run_cell)
        return (np.asarray(out).astype(out_dtype, copy=False), *finals)

    def forward(self, x, lengths=None, h0=None, c0=None, mode=None, out_dtype=np.float64):
        return self._probe(x, lengths, (h0, c0), out_dtype)


class GruStackProbe(StackProbe):
    """`StackProbe` of a `QuantizedGruStack`: its `forward(x, lengths, h0, mode, out_dtype)`
    returns (out, h_n); the cells' calls carry only the state h."""

    def forward(self, x, lengths=None, h0=None, mode=None, out_dtype=np.float64):
        return self._probe(x, lengths, (h0,), out_dtype)


def probe_for(stack: QuantizedLstmStack | QuantizedGruStack, cell_fn: CellFn) -> StackProbe:
    """The stand-in of a session's stack, of its kind."""
    return GruStackProbe(stack, cell_fn) if isinstance(stack, QuantizedGruStack) else StackProbe(stack, cell_fn)


class LstmPlanRunner:
    """`sensitivity.PlanRunner` of a session's cells, through the front end's hooks."""

    def __init__(self, session: LstmQuantSession, hooks: LstmModelHooks, cells: Mapping[str, RecurrentCell]) -> None:
        self.session, self.hooks, self.cells = session, hooks, cells
        self.has_metric = hooks.has_metric
        self._local = {t.name: (g, t.label) for g, c in cells.items() for t in c.tensors()}

    def probes(self, plan: QuantPlan) -> list[StackProbe]:
        per_cell: dict[str, dict] = {g: {} for g in self.cells}
        for name, q in plan.items():
            graph, local = self._local[name]
            per_cell[graph][local] = q
        evaluators = {g: self.cells[g].evaluator(p) for g, p in per_cell.items()}

        def cell_fn(cell, call: CellCall):
            rc = self.cells[cell.graph_name]
            return evaluators[cell.graph_name].run(call.x, call.lengths, call.init, rc.reverse)

        return [probe_for(s, cell_fn) for s in self.session.stacks]

    def outputs(self, plan: QuantPlan) -> list[np.ndarray]:
        return self.hooks.outputs(self.probes(plan))

    def metric(self, plan: QuantPlan) -> float:
        return self.hooks.metric(self.probes(plan))

    def capture(self) -> tuple[list[np.ndarray], dict[str, list[CellCall]]]:
        """The model run on the fixed-point datapath; returns its outputs and every cell's calls."""
        calls: dict[str, list[CellCall]] = {g: [] for g in self.cells}

        def cell_fn(cell, call: CellCall):
            calls[cell.graph_name].append(call)
            return self.cells[cell.graph_name].run_datapath(call)

        outputs = self.hooks.outputs([probe_for(s, cell_fn) for s in self.session.stacks])
        return outputs, calls


def report_lstm_session(session: LstmQuantSession, hooks: LstmModelHooks, output_dir, framework: str,
                        options: ReportOptions) -> ReportFiles:
    """Compute and write the report of an LSTM session (see the front ends' `report()`)."""
    options.check()
    cells = {c.graph_name: recurrent_cell(c, options.high_bit_width) for c in session.cells}
    runner = LstmPlanRunner(session, hooks, cells)
    quantized, calls = runner.capture()
    reference = runner.outputs({})
    analyses = []
    stats: dict[str, TensorStats] = {}
    for graph, rc in progress(list(cells.items()), "report: cells", unit="cell"):
        analysis = CellAnalysis(rc)
        for call in calls[graph]:
            analysis.add(call)
        analyses.append(analysis.to_json())
        stats.update({f"{graph}::{name}": s for name, s in analysis.stats.items() if s.count})
    tensors: list[QuantTensor] = [t for rc in cells.values() for t in rc.tensors()]
    notes = []
    unused = [g for g, c in calls.items() if not c]
    if unused:
        notes.append(f"cells that the inputs did not reach (no statistics): {', '.join(unused)}")
    widths = {t.quant.bit_width for t in tensors}
    if options.high_bit_width <= max(widths):
        notes.append(f"every tensor already has {max(widths)} bits; there is nothing to widen to "
                     f"{options.high_bit_width} bits")
    doc = build_report(
        flow="lstm", framework=framework, mode=session.mode.value, runner=runner, tensors=tensors, stats=stats,
        reference=reference, quantized=quantized, options=options, cells=analyses, notes=notes,
        suggestion_config=lambda keep: recurrent_config(tensors, keep, session.bit_width, options.high_bit_width,
                                                       session.widths))
    return write_report(doc, output_dir)

"""One recurrent cell as the report sees it, and the per-node, per-step analysis of a cell.

`RecurrentCell` is what the report needs from a quantized cell of any type: its graph name and
`CellGraph`, float parameters, the calibrated grid of every node and parameter, and the
fixed-point datapath itself (`run` for outputs, `record` for every node's codes, the path the
deploy-check dumps use). `recurrent_cell` builds one from a `QuantizedLstmCell` or a
`QuantizedGruCell` (either variant), with the cell graph of its kind (`cell_graph_of`).

`CellAnalysis` runs, on the inputs the quantized cell received in the model, the float cell
graph and the quantized one side by side, step by step, and accumulates per node and per step
the SQNR against the float cell fed the same inputs, the drift of the states, and the per-tensor
statistics. It also checks that the quantized graph evaluation reproduces the datapath (every
output, and every node code of batch element 0), so that the sensitivity numbers, which need the
graph evaluation, are those of the real datapath.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..gru.cell import QuantizedGruCell
from ..lstm.cell import QuantizedLstmCell
from ..lstm.cell_base import QuantizedCell
from ..lstm.fix_positions import CellFixPositions, table_fix_pos
from ..lstm.naming import scoped
from ..messages import error, warn
from .cell_graph import CellEvaluator, CellGraph
from .gru_graph import gru_cell_graph
from .lstm_graph import LSTM_CELL
from .metrics import TensorStats, db, json_number
from .quant import FLOOR, NEAREST, QuantTensor, TensorQuant

__all__ = ["CellAnalysis", "CellCall", "RecurrentCell", "cell_graph_of", "recurrent_cell"]


@dataclass
class CellCall:
    """The inputs one quantized cell received in one call of the model."""

    x: np.ndarray
    lengths: np.ndarray | None
    init: dict[str, np.ndarray | None]


@dataclass
class RecurrentCell:
    """A quantized recurrent cell (one layer, one direction) for the report."""

    graph_name: str
    graph: CellGraph
    params: dict[str, np.ndarray]
    quant: dict[str, TensorQuant]
    high: dict[str, TensorQuant]
    reverse: bool
    run_datapath: Callable[[CellCall], tuple[np.ndarray, dict[str, np.ndarray]]]
    record_datapath: Callable[[CellCall], dict[str, np.ndarray]]

    def tensors(self) -> list[QuantTensor]:
        """Its nodes, then its parameters, keyed by the quant_info.json names."""
        names = [*self.graph.node_names, *self.graph.params]
        return [QuantTensor(scoped(self.graph_name, n), self.graph_name, self.graph.tensor_kind(n), self.quant[n],
                            self.high.get(n), n) for n in names]

    def evaluator(self, plan: Mapping[str, TensorQuant]) -> CellEvaluator:
        """The cell graph with `plan` (keyed by node / parameter name) quantized."""
        return CellEvaluator(self.graph, self.params, plan)


def _aligned_fix(cell: QuantizedCell) -> CellFixPositions:
    if cell.fix is not None:
        return cell.fix
    if not cell.calibration.param:
        raise error("REPORT_NOT_CALIBRATED", what=f"cell {cell.graph_name} never ran in calibration mode")
    return cell.calibration.aligned()


def cell_graph_of(cell: QuantizedCell) -> CellGraph:
    """The report's graph of a quantized cell: the LSTM's, or the GRU variant of its weights."""
    if isinstance(cell, QuantizedLstmCell):
        return LSTM_CELL
    if isinstance(cell, QuantizedGruCell):
        return gru_cell_graph(cell.reset_after)
    raise TypeError(f"the report has no cell graph for {type(cell).__name__}")


def _datapath_calls(datapath: QuantizedCell, graph: CellGraph):
    """(run, record) of the report on a cell's test-mode datapath: `run(call)` gives (out, final
    states by name), `record(call)` batch element 0's codes per node, as the dumps record them.
    The initial states are passed by name (h, and c for an LSTM), in the graph's state order."""
    names = [name for name, _ in graph.states]

    def run(call: CellCall):
        out, *finals = datapath.run(call.x, call.lengths, *(call.init.get(n) for n in names))
        return out, dict(zip(names, finals))

    def record(call: CellCall):
        first = [None if call.init.get(n) is None else call.init[n][:1] for n in names]
        _, rec = datapath.record(call.x[:1], None if call.lengths is None else call.lengths[:1], *first)
        return {name: codes[:rec.steps] for name, codes in rec.codes.items()}

    return run, record


def recurrent_cell(cell: QuantizedCell, high_bit_width: int = 16) -> RecurrentCell:
    """The report's view of a quantized LSTM or GRU cell: in test mode its loaded fix positions,
    in calib mode the positions export_quant_config() would write (the aligned calibration)."""
    graph = cell_graph_of(cell)
    fix = _aligned_fix(cell)
    datapath = cell
    if cell.fix is None:  # calib mode: a twin with the aligned positions runs the test-mode datapath
        datapath = type(cell)(cell.graph_name, cell.weights, cell.reverse, cell.bit_width,
                              cell.calibration.max_fix_pos, cell.num_threads)
        datapath.widths = cell.widths
        datapath.load_fix_positions(fix)
    cap = cell.calibration.max_fix_pos
    quant, high = {}, {}
    for i, (name, fp) in enumerate(zip(graph.node_names, fix.node)):
        quant[name] = TensorQuant(fix.node_width(i), fp, rounding=FLOOR, method="floor")
        if name in graph.table_nodes:
            high[name] = TensorQuant(high_bit_width, table_fix_pos(high_bit_width), rounding=FLOOR, method="floor")
        else:
            high[name] = quant[name].widened(high_bit_width, max(cap, fp))
    for name, fp in fix.param.items():
        quant[name] = TensorQuant(fix.param_width(name), fp, rounding=NEAREST, method="std_round")
        high[name] = quant[name].widened(high_bit_width, max(cap, fp))
    run, record = _datapath_calls(datapath, graph)
    return RecurrentCell(cell.graph_name, graph, dict(cell.weights.blocks()), quant, high, cell.reverse,
                         run, record)


@dataclass
class CellAnalysis:
    """Per-node, per-step comparison of one cell's quantized and float evaluations."""

    cell: RecurrentCell
    steps: int = 0
    node_signal: np.ndarray = field(default=None)  # [nodes, steps]
    node_noise: np.ndarray = field(default=None)
    state_noise: dict[str, list[float]] = field(default_factory=dict)
    state_signal: dict[str, list[float]] = field(default_factory=dict)
    state_count: dict[str, list[int]] = field(default_factory=dict)
    stats: dict[str, TensorStats] = field(default_factory=dict)
    mismatch: str | None = None
    calls: int = 0

    def __post_init__(self) -> None:
        names = self.cell.graph.node_names
        self.node_signal = np.zeros((len(names), 0))
        self.node_noise = np.zeros((len(names), 0))
        for name in (*names, *self.cell.graph.params):
            self.stats[name] = TensorStats()
        for state, _ in self.cell.graph.states:
            self.state_noise[state], self.state_signal[state], self.state_count[state] = [], [], []

    def _grow(self, steps: int) -> None:
        if steps > self.steps:
            pad = steps - self.steps
            self.node_signal = np.pad(self.node_signal, ((0, 0), (0, pad)))
            self.node_noise = np.pad(self.node_noise, ((0, 0), (0, pad)))
            for state in self.state_noise:
                self.state_noise[state] += [0.0] * pad
                self.state_signal[state] += [0.0] * pad
                self.state_count[state] += [0] * pad
            self.steps = steps

    def add(self, call: CellCall) -> None:
        """Analyse one call: float and quantized graph side by side, checked against the datapath."""
        cell, graph = self.cell, self.cell.graph
        self.calls += 1
        self._grow(call.x.shape[1])
        float_ev, quant_ev = cell.evaluator({}), cell.evaluator(cell.quant)
        recorded = cell.record_datapath(call)
        for f, q in zip(float_ev.steps(call.x, call.lengths, call.init, cell.reverse),
                        quant_ev.steps(call.x, call.lengths, call.init, cell.reverse)):
            for i, name in enumerate(graph.node_names):
                ref, pre, post = f.post[name], q.pre[name], q.post[name]
                self.node_signal[i, f.t] += float(np.sum(ref * ref))
                self.node_noise[i, f.t] += float(np.sum((post - ref) ** 2))
                self.stats[name].add(ref, pre, post, cell.quant[name])
                if q.rows[0] == 0 and self.mismatch is None and f.t < len(recorded[name]):
                    codes = np.ldexp(post[0], int(cell.quant[name].fix_pos))
                    if not np.array_equal(codes, recorded[name][f.t]):
                        self.mismatch = f"node '{name}', step {f.t} of batch element 0"
            for state, node in graph.states:
                err = q.post[node] - f.post[node]
                self.state_noise[state][f.t] += float(np.sum(err * err))
                self.state_signal[state][f.t] += float(np.sum(f.post[node] ** 2))
                self.state_count[state][f.t] += int(err.size)
        for name in graph.params:
            self.stats[name].add(cell.params[name], cell.params[name], quant_ev.params[name], cell.quant[name])
        out, _ = quant_ev.run(call.x, call.lengths, call.init, cell.reverse)
        out_datapath, _ = cell.run_datapath(call)
        if self.mismatch is None and not np.array_equal(out, out_datapath):
            bad = np.argwhere(out != out_datapath)[0]
            self.mismatch = f"the output of batch element {bad[0]}, position {bad[1]}"
        if self.mismatch is not None:
            warn("REPORT_EVALUATOR_MISMATCH", cell=cell.graph_name, where=self.mismatch)

    def to_json(self) -> dict[str, Any]:
        graph = self.cell.graph
        per_step = [[json_number(db(s, n)) for s, n in zip(srow, nrow)]
                    for srow, nrow in zip(self.node_signal, self.node_noise)]
        overall = [json_number(db(float(s.sum()), float(n.sum()))) for s, n in zip(self.node_signal, self.node_noise)]
        drift = {}
        for state, node in graph.states:
            counts = np.maximum(np.asarray(self.state_count[state]), 1)
            rms = np.sqrt(np.asarray(self.state_noise[state]) / counts)
            ref = np.sqrt(np.asarray(self.state_signal[state]) / counts)
            drift[state] = {"node": node, "rms_error": [float(v) for v in rms],
                            "rms_float": [float(v) for v in ref],
                            "relative": [float(e / r) if r > 0 else (0.0 if e == 0 else math.inf) for e, r in zip(rms, ref)]}
        return {
            "graph": self.cell.graph_name,
            "cell": graph.kind,
            "variant": graph.variant or None,
            "reverse": self.cell.reverse,
            "steps": self.steps,
            "calls": self.calls,
            "nodes": list(graph.node_names),
            "node_sqnr_db": per_step,
            "node_sqnr_db_overall": overall,
            "states": [state for state, _ in graph.states],
            "drift": drift,
            "note": graph.note or None,
            "evaluation_matches_datapath": self.mismatch is None,
            "mismatch": self.mismatch,
        }

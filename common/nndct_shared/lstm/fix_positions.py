"""Fix positions of one RNN cell, their calibration statistics and the export alignment.

The classes work on any `CellDefinition` (default: the StandardLstmCell); the GRU cells use them
with their own definitions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cell_definition import CellDefinition
from .naming import C_NEXT, GATES, LSTM_CELL, scoped
from .widths import CellWidths

FP_OFFSET = 128
"""Histogram slot of fix position p is p + FP_OFFSET (the C++ loop uses the same layout)."""
FP_SLOTS = 256
TABLE_FIX_POS = 15
"""The sigmoid/tanh tables produce values on the 2^-15 grid."""


def table_fix_pos(bit_width: int) -> int:
    """Output fix position of the sigmoid/tanh nodes after alignment.

    The reference sets 15 (the table grid). For 16 bits that is exact. For narrower widths the
    reference's 15 cannot hold a value near 1 (an int8 code at 2^-15 overflows), so we define it as
    bit_width - 1: the table output is floored onto the widest grid that holds [-1, 1).
    """
    return min(TABLE_FIX_POS, bit_width - 1)


@dataclass
class CellFixPositions:
    """The `[bit_width, fix_pos]` entries of one cell: every node output and every parameter
    (a StandardLstmCell: 24 nodes and 12 parameters). `widths` gives each tensor its own bit
    width (mixed widths); None: every tensor at `bit_width`, the reference's case."""

    bit_width: int
    node: list[int]
    param: dict[str, int]
    definition: CellDefinition = LSTM_CELL
    widths: CellWidths | None = None

    def __post_init__(self) -> None:
        d = self.definition
        if len(self.node) != len(d.node_names):
            raise ValueError(f"a {d.kind} has {len(d.node_names)} nodes, got {len(self.node)}")
        if set(self.param) != set(d.param_names):
            raise ValueError(f"parameters must be {d.param_names}, got {sorted(self.param)}")
        if self.widths is not None and self.widths.is_uniform and self.widths.node[0] == self.bit_width:
            self.widths = None
        for i in d.table_nodes:
            width = self.node_width(i)
            limit = table_fix_pos(width)
            if self.node[i] > limit:
                raise ValueError(
                    f"sigmoid/tanh output {d.node_names[i]} has a fix position above {limit}; the lookup "
                    f"tables produce values in [-1, 1], which a {width}-bit code holds at fix position "
                    f"{limit} at most"
                )

    def node_width(self, index: int) -> int:
        return self.bit_width if self.widths is None else self.widths.node[index]

    def param_width(self, name: str) -> int:
        return self.bit_width if self.widths is None else self.widths.param[name]

    def node_bits(self) -> np.ndarray | None:
        """The per-node widths as int32 for the C++ loops; None when every tensor is at bit_width."""
        return None if self.widths is None else np.asarray(self.widths.node, dtype=np.int32)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(node[24], w_ih[4], w_hh[4], bias[4]) as int32 arrays for the C++ LSTM loop."""
        p = self.param
        return (
            np.asarray(self.node, dtype=np.int32),
            np.asarray([p[f"weight_i{g}"] for g in GATES], dtype=np.int32),
            np.asarray([p[f"weight_h{g}"] for g in GATES], dtype=np.int32),
            np.asarray([p[f"bias_{g}"] for g in GATES], dtype=np.int32),
        )

    def quant_info_entries(self, graph_name: str) -> tuple[dict, dict]:
        """(param, output) dicts keyed `<graph>::<name>`, in the reference's order."""
        d = self.definition
        params = {scoped(graph_name, n): [self.param_width(n), self.param[n]] for n in d.param_names}
        outputs = {scoped(graph_name, n): [self.node_width(i), fp] for i, (n, fp) in enumerate(zip(d.node_names, self.node))}
        return params, outputs

    @classmethod
    def from_quant_info_entries(cls, graph_name: str, param: dict, output: dict,
                                definition: CellDefinition = LSTM_CELL) -> "CellFixPositions":
        """Inverse of `quant_info_entries`; every name must be present (checked by the caller).
        Each record carries its own width (mixed widths)."""
        d = definition
        widths = CellWidths(tuple(output[scoped(graph_name, n)][0] for n in d.node_names),
                            {n: param[scoped(graph_name, n)][0] for n in d.param_names})
        node = [output[scoped(graph_name, n)][1] for n in d.node_names]
        prm = {n: param[scoped(graph_name, n)][1] for n in d.param_names}
        missing = [n for n, fp in [*zip(d.node_names, node), *prm.items()] if fp is None]
        if missing:
            raise ValueError(f"cell {graph_name} has no fix position for {missing}")
        return cls(widths.node[d.output_node], node, prm, d, widths)


@dataclass
class CellCalibration:
    """Calibration statistics of one cell, mergeable and of constant size.

    `counts[node, p + FP_OFFSET]` counts the calls whose diffs search chose fix position p for that
    node (one call = one time step of one batch, as in the reference); the node's fix position is
    the mode (most frequent, smallest on ties, like scipy.stats.mode). Parameters are calibrated
    once, on first use.
    """

    bit_width: int
    max_fix_pos: int = 12
    counts: np.ndarray | None = None
    """[nodes, FP_SLOTS] int64; None: a new, empty histogram for the definition's nodes."""
    param: dict[str, int] = field(default_factory=dict)
    definition: CellDefinition = LSTM_CELL
    widths: CellWidths | None = None
    """Each tensor's own width (mixed widths); None: every tensor at `bit_width`."""

    def __post_init__(self) -> None:
        if self.counts is None:
            self.counts = np.zeros((len(self.definition.node_names), FP_SLOTS), np.int64)
        if self.widths is None:
            self.widths = CellWidths.uniform(self.definition, self.bit_width)

    def node_bits(self) -> np.ndarray | None:
        """The per-node widths as int32 for the C++ loops; None when every tensor is at bit_width."""
        uniform = self.widths.is_uniform and self.widths.node[0] == self.bit_width
        return None if uniform else np.asarray(self.widths.node, dtype=np.int32)

    @property
    def calls(self) -> int:
        """Number of time steps observed (every step votes for input_0 unless x was all zero)."""
        return int(self.counts.sum(axis=1).max())

    def node_fix_pos(self, index: int) -> int | None:
        row = self.counts[index]
        if not row.any():
            return None
        return int(np.argmax(row)) - FP_OFFSET  # argmax takes the first (smallest) maximum

    def merge(self, other: "CellCalibration") -> None:
        """Adds another run's statistics (e.g. calibration split over processes)."""
        if other.bit_width != self.bit_width or other.widths != self.widths:
            raise ValueError("cannot merge calibrations of different bit widths")
        if other.definition != self.definition:
            raise ValueError("cannot merge calibrations of different cell kinds")
        self.counts += other.counts
        for name, fp in other.param.items():
            self.param.setdefault(name, fp)

    def state(self) -> dict:
        """Plain data (ints, an int64 array, a dict of ints) to send to another process."""
        return {"bit_width": self.bit_width, "max_fix_pos": self.max_fix_pos,
                "counts": self.counts.copy(), "param": dict(self.param), "widths": self.widths.to_state()}

    @classmethod
    def merge_states(cls, states: list[dict], definition: CellDefinition = LSTM_CELL) -> "CellCalibration":
        """One calibration of a cell of kind `definition` (the cell the states were taken from)
        holding the calls of every state: vote counts add up exactly (any order), parameters
        (calibrated once from the same weights) must agree where present."""
        if not states:
            raise ValueError("merge_states needs at least one calibration state")
        first = states[0]
        merged = cls(int(first["bit_width"]), int(first["max_fix_pos"]), definition=definition)
        if "widths" in first:
            merged.widths = CellWidths.from_state(first["widths"])
        for state in states:
            widths = CellWidths.from_state(state["widths"]) if "widths" in state else merged.widths
            if (state["bit_width"], state["max_fix_pos"], widths) != (merged.bit_width, merged.max_fix_pos,
                                                                       merged.widths):
                raise ValueError("cannot merge calibrations of different bit widths or fix position caps")
            counts = np.asarray(state["counts"], dtype=np.int64)
            if counts.shape != merged.counts.shape:
                raise ValueError(f"cannot merge vote counts of shape {counts.shape} into a {definition.kind} "
                                 f"calibration of shape {merged.counts.shape}")
            merged.counts += counts
            for name, fp in state["param"].items():
                if merged.param.setdefault(name, int(fp)) != int(fp):
                    raise ValueError(f"parameter {name} was calibrated to fix positions "
                                     f"{merged.param[name]} and {fp}: the weights differ")
        return merged

    def aligned(self) -> CellFixPositions:
        """The reference's export-time alignment (`organize_quant_pos` with rnn_front_end).

        Walking back from h_next: sigmoid/tanh outputs get the table position of their own
        width (`table_fix_pos(width)`), every other node but input_0 gets h_next's position, and
        each bias gets its dense output's position. Mixed widths: "h_next's position" is the one
        that gives the node h_next's range at its own width (`_same_range`). A node
        that never saw a non-zero value (e.g. h_next of an all-zero sequence) carries no range
        information; it gets `max_fix_pos`, the most precise position allowed.
        """
        d = self.definition
        if len(self.param) != len(d.param_names):
            raise ValueError("the cell was never run in calibration mode")
        h_fp = self._fp_or_cap(d.output_node)
        x_fp = self._fp_or_cap(0)
        w = self.widths
        h_width = w.node[d.output_node]
        node = [self._same_range(h_fp, h_width, width) for width in w.node]
        node[0] = x_fp
        for i in d.table_nodes:
            node[i] = table_fix_pos(w.node[i])
        param = dict(self.param)
        for bias, dense in d.bias_nodes:
            param[bias] = self._same_range(node[dense], w.node[dense], w.param[bias])
        return CellFixPositions(self.bit_width, node, param, d, self.widths)

    def _same_range(self, fp: int, width: int, to_width: int) -> int:
        """Mixed widths: the position at which a `to_width`-bit code covers the range a
        `width`-bit code covers at `fp` (a wider tensor gets the extra bits as fraction bits,
        capped at max_fix_pos, as `report.quant.TensorQuant.widened`); `fp` itself at one width,
        the reference's alignment."""
        out = fp + to_width - width
        return min(out, max(self.max_fix_pos, fp)) if to_width > width else out

    def _fp_or_cap(self, index: int) -> int:
        fp = self.node_fix_pos(index)
        return self.max_fix_pos if fp is None else fp


__all__ = ["CellCalibration", "CellFixPositions", "FP_OFFSET", "FP_SLOTS", "table_fix_pos", "C_NEXT"]

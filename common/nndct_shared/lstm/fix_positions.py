"""Fix positions of one StandardLstmCell, their calibration statistics and the export alignment."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .naming import (
    C_NEXT,
    DENSE_X_NODES,
    GATES,
    H_NEXT,
    NODE_NAMES,
    PARAM_NAMES,
    TABLE_NODES,
    scoped,
)

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
    """The `[bit_width, fix_pos]` entries of one cell: 24 node outputs and 12 parameters."""

    bit_width: int
    node: list[int]
    param: dict[str, int]

    def __post_init__(self) -> None:
        if len(self.node) != len(NODE_NAMES):
            raise ValueError(f"a StandardLstmCell has {len(NODE_NAMES)} nodes, got {len(self.node)}")
        if set(self.param) != set(PARAM_NAMES):
            raise ValueError(f"parameters must be {PARAM_NAMES}, got {sorted(self.param)}")
        limit = table_fix_pos(self.bit_width)
        bad = [NODE_NAMES[i] for i in TABLE_NODES if self.node[i] > limit]
        if bad:
            raise ValueError(
                f"sigmoid/tanh outputs {bad} have a fix position above {limit}; the lookup tables "
                f"produce values in [-1, 1], which a {self.bit_width}-bit code holds at fix position "
                f"{limit} at most"
            )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(node[24], w_ih[4], w_hh[4], bias[4]) as int32 arrays for the C++ loop."""
        p = self.param
        return (
            np.asarray(self.node, dtype=np.int32),
            np.asarray([p[f"weight_i{g}"] for g in GATES], dtype=np.int32),
            np.asarray([p[f"weight_h{g}"] for g in GATES], dtype=np.int32),
            np.asarray([p[f"bias_{g}"] for g in GATES], dtype=np.int32),
        )

    def quant_info_entries(self, graph_name: str) -> tuple[dict, dict]:
        """(param, output) dicts keyed `<graph>::<name>`, in the reference's order."""
        bw = self.bit_width
        params = {scoped(graph_name, n): [bw, self.param[n]] for n in PARAM_NAMES}
        outputs = {scoped(graph_name, n): [bw, fp] for n, fp in zip(NODE_NAMES, self.node)}
        return params, outputs

    @classmethod
    def from_quant_info_entries(cls, graph_name: str, param: dict, output: dict) -> "CellFixPositions":
        """Inverse of `quant_info_entries`; every name must be present (checked by the caller)."""
        widths = {param[scoped(graph_name, n)][0] for n in PARAM_NAMES}
        widths |= {output[scoped(graph_name, n)][0] for n in NODE_NAMES}
        if len(widths) != 1:
            raise ValueError(f"cell {graph_name} mixes bit widths {sorted(widths)}; one width per cell is supported")
        node = [output[scoped(graph_name, n)][1] for n in NODE_NAMES]
        prm = {n: param[scoped(graph_name, n)][1] for n in PARAM_NAMES}
        missing = [n for n, fp in [*zip(NODE_NAMES, node), *prm.items()] if fp is None]
        if missing:
            raise ValueError(f"cell {graph_name} has no fix position for {missing}")
        return cls(widths.pop(), node, prm)


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
    counts: np.ndarray = field(default_factory=lambda: np.zeros((len(NODE_NAMES), FP_SLOTS), np.int64))
    param: dict[str, int] = field(default_factory=dict)

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
        if other.bit_width != self.bit_width:
            raise ValueError("cannot merge calibrations of different bit widths")
        self.counts += other.counts
        for name, fp in other.param.items():
            self.param.setdefault(name, fp)

    def state(self) -> dict:
        """Plain data (ints, an int64 array, a dict of ints) to send to another process."""
        return {"bit_width": self.bit_width, "max_fix_pos": self.max_fix_pos,
                "counts": self.counts.copy(), "param": dict(self.param)}

    @classmethod
    def merge_states(cls, states: list[dict]) -> "CellCalibration":
        """One calibration holding the calls of every state: vote counts add up exactly (any
        order), parameters (calibrated once from the same weights) must agree where present."""
        if not states:
            raise ValueError("merge_states needs at least one calibration state")
        first = states[0]
        merged = cls(int(first["bit_width"]), int(first["max_fix_pos"]))
        for state in states:
            if (state["bit_width"], state["max_fix_pos"]) != (merged.bit_width, merged.max_fix_pos):
                raise ValueError("cannot merge calibrations of different bit widths or fix position caps")
            merged.counts += np.asarray(state["counts"], dtype=np.int64)
            for name, fp in state["param"].items():
                if merged.param.setdefault(name, int(fp)) != int(fp):
                    raise ValueError(f"parameter {name} was calibrated to fix positions "
                                     f"{merged.param[name]} and {fp}: the weights differ")
        return merged

    def aligned(self) -> CellFixPositions:
        """The reference's export-time alignment (`organize_quant_pos` with rnn_front_end).

        Walking back from h_next: sigmoid/tanh outputs get the table position, every other node
        but input_0 gets h_next's position, and each bias gets its dense output's position. A node
        that never saw a non-zero value (e.g. h_next of an all-zero sequence) carries no range
        information; it gets `max_fix_pos`, the most precise position allowed.
        """
        if len(self.param) != len(PARAM_NAMES):
            raise ValueError("the cell was never run in calibration mode")
        h_fp = self._fp_or_cap(H_NEXT)
        x_fp = self._fp_or_cap(0)
        node = [h_fp] * len(NODE_NAMES)
        node[0] = x_fp
        for i in TABLE_NODES:
            node[i] = table_fix_pos(self.bit_width)
        param = dict(self.param)
        for g, dense in zip(GATES, DENSE_X_NODES):
            param[f"bias_{g}"] = node[dense]
        return CellFixPositions(self.bit_width, node, param)

    def _fp_or_cap(self, index: int) -> int:
        fp = self.node_fix_pos(index)
        return self.max_fix_pos if fp is None else fp


__all__ = ["CellCalibration", "CellFixPositions", "FP_OFFSET", "FP_SLOTS", "table_fix_pos", "C_NEXT"]

"""LSTM and GRU calibration on several processes: one history per batch, and the merge of the
cells' vote counts (each cell kind's own nodes) across the ranks of a ``Collective``.

Why per-batch histories: the reference fake-quantizes every node during calibration at the mode
of ALL the votes so far, so what a batch votes depends on the batches before it, and two
processes that each saw half the batches cannot reproduce one process that saw them all. With
``own_history`` each forward call votes with a history of its own calls only and then adds its
votes to the cell's counts, so a cell's counts are the sum of independent per-batch counts:
the same however the batches are ordered or split over processes (the flows call this
``calib_feedback="batch"``; it is the default under torch.distributed). The merge then only adds
integer counts, so the result is exactly one process's.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np

from ..collective import Collective, digest, gather_checked
from ..messages import error, note
from .cell_base import QuantizedCell
from .fix_positions import CellCalibration

__all__ = ["CellShards", "cell_fingerprint", "own_history"]


@contextmanager
def own_history(cells: Sequence[QuantizedCell]) -> Iterator[None]:
    """Run the calibration forward inside the block with a fresh vote history per cell, then add
    its votes to the cells' counts (see the module docstring)."""
    saved = [cell.calibration.counts for cell in cells]
    for cell in cells:
        cell.calibration.counts = np.zeros_like(cell.calibration.counts)
    try:
        yield
    finally:
        for cell, counts in zip(cells, saved):
            counts += cell.calibration.counts
            cell.calibration.counts = counts


def cell_fingerprint(cells: Sequence[QuantizedCell]) -> dict[str, str]:
    """What must be equal on every rank: the cell graphs, their settings and their weights."""
    graphs = [(c.graph_name, c.input_size, c.hidden_size, c.reverse, c.bit_width,
               c.calibration.max_fix_pos, *([] if c.widths.is_uniform else [c.widths.to_state()])) for c in cells]
    weights = [sorted(c.weights.blocks().items()) for c in cells]
    return {"the RNN cells (names, sizes, directions, bit width)": digest(graphs),
            "the RNN weights": digest(weights)}


class CellShards:
    """Merges the calibration of every cell across the ranks of ``collective`` (in place, so
    every rank ends with the merged counts and the same fix positions)."""

    def __init__(self, collective: Collective) -> None:
        self.collective = collective
        self._merged_votes: int | None = None  # the cells' vote count right after a merge

    def merge(self, cells: Sequence[QuantizedCell], action: str) -> None:
        """A collective: every rank calls it once per export. No-op in a one-process group."""
        if not self.collective.spans_processes:
            return
        votes = sum(int(c.calibration.counts.sum()) for c in cells)
        if self._merged_votes is None:
            payload = (0, [c.calibration.state() for c in cells])
        else:  # merged by an earlier export: only check that no rank calibrated since
            payload = (votes - self._merged_votes, None)
        gathered = gather_checked(self.collective, cell_fingerprint(cells), payload, action)
        if self._merged_votes is not None:
            for rank, (added, _) in enumerate(gathered):
                if added:
                    raise error("DIST_CALIB_AFTER_EXPORT", rank=rank,
                                more=f"more batches ({added} more node votes)")
            return
        for k, cell in enumerate(cells):
            merged = CellCalibration.merge_states([states[k] for _, states in gathered], cell.definition)
            cell.calibration.counts = merged.counts
            cell.calibration.param = merged.param
        self._merged_votes = sum(int(c.calibration.counts.sum()) for c in cells)
        if not votes and self._merged_votes:
            note(f"=>{action}: rank {self.collective.rank} calibrated no batch; it holds the "
                 "statistics of the other ranks now.")

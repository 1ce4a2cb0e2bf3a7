"""A multi-layer, optionally bidirectional LSTM made of quantized StandardLstmCells.

This is the framework-neutral equivalent of the reference's `StackedLstm` (see
`stack_base.QuantizedRnnStack` for the layering); its states are h and c.
"""
from __future__ import annotations

import numpy as np

from ..quant_mode import RunMode
from .cell import CellRecord, QuantizedLstmCell
from .naming import cell_graph_name
from .stack_base import QuantizedRnnStack

__all__ = ["QuantizedLstmStack"]


class QuantizedLstmStack(QuantizedRnnStack):
    """An nn.LSTM / Keras LSTM (or Bidirectional of them) as quantized cells; `cells[l * D + d]`
    is layer l, direction d, as in nn.LSTM's h_n."""

    cell_class = QuantizedLstmCell
    state_names = ("h", "c")
    graph_name = staticmethod(cell_graph_name)

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
                c0: np.ndarray | None = None, mode: RunMode = RunMode.TEST, out_dtype=np.float64):
        """Runs every layer; returns (out [B, T, D*H], h_n [L*D, B, H], c_n [L*D, B, H]) (see
        `forward_states` for the dtypes)."""
        out, (h_n, c_n) = self.forward_states(x, lengths, (h0, c0), mode, out_dtype)
        return out, h_n, c_n

    def record(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
               c0: np.ndarray | None = None) -> dict[str, CellRecord]:
        """Test-mode run of batch element 0 recording every node of every cell (deploy check)."""
        return self.record_states(x, lengths, (h0, c0))

"""A multi-layer, optionally bidirectional GRU made of quantized StandardGruCells.

The GRU counterpart of `nndct_shared.lstm.stack.QuantizedLstmStack` (see
`nndct_shared.lstm.stack_base.QuantizedRnnStack` for the layering); the only state is h.
"""
from __future__ import annotations

import numpy as np

from ..lstm.cell_base import CellRecord
from ..lstm.stack_base import QuantizedRnnStack
from ..quant_mode import RunMode
from .cell import QuantizedGruCell
from .naming import gru_graph_name

__all__ = ["QuantizedGruStack", "RunMode"]


class QuantizedGruStack(QuantizedRnnStack):
    """An nn.GRU / Keras GRU (or Bidirectional of them) as quantized cells; `cells[l * D + d]`
    is layer l, direction d, as in nn.GRU's h_n."""

    cell_class = QuantizedGruCell
    state_names = ("h",)
    graph_name = staticmethod(gru_graph_name)

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
                mode: RunMode = RunMode.TEST, out_dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Runs every layer; returns (out [B, T, D*H], h_n [L*D, B, H]) (see `forward_states`
        for the dtypes)."""
        out, (h_n,) = self.forward_states(x, lengths, (h0,), mode, out_dtype)
        return out, h_n

    def record(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
               c0: None = None) -> dict[str, CellRecord]:
        """Test-mode run of batch element 0 recording every node of every cell (deploy check).
        `c0` is accepted for the session's stack interface and must be None."""
        if c0 is not None:
            raise ValueError("a GRU has no cell state")
        return self.record_states(x, lengths, (h0,))

"""A multi-layer, optionally bidirectional GRU made of quantized StandardGruCells.

The GRU counterpart of `nndct_shared.lstm.stack.QuantizedLstmStack`: each (layer, direction) is
its own cell graph; layer l > 0 reads the concatenation of the previous layer's forward and
backward outputs; the only state is h. Front ends only convert their tensors to NumPy and back.
"""
from __future__ import annotations

import numpy as np

from ..quant_mode import RunMode
from ..lstm.cell_base import CellRecord
from .cell import QuantizedGruCell
from .cell_params import GruCellWeights
from .naming import gru_graph_name

__all__ = ["QuantizedGruStack", "RunMode"]


class QuantizedGruStack:
    """`cells[l * D + d]` is layer l, direction d (0 forward, 1 backward), as in nn.GRU's h_n.

    `backward_only=True` makes a one-direction stack whose cells run backward (Keras'
    `GRU(go_backwards=True)`): their graphs are the `..._backward` cells, outputs stay aligned
    with the input positions, as a bidirectional stack's backward half is."""

    def __init__(self, prefix: str, weights: list[list[GruCellWeights]], bit_width: int,
                 max_fix_pos: int = 12, backward_only: bool = False) -> None:
        if not weights or any(len(w) != len(weights[0]) for w in weights) or len(weights[0]) not in (1, 2):
            raise ValueError("weights must be [num_layers][1 or 2 directions]")
        if backward_only and len(weights[0]) != 1:
            raise ValueError("backward_only needs exactly one direction per layer")
        self.prefix = prefix
        self.num_layers = len(weights)
        self.num_directions = len(weights[0])
        self.cells = [
            QuantizedGruCell(gru_graph_name(prefix, layer, bool(d) or backward_only), w,
                             reverse=bool(d) or backward_only, bit_width=bit_width, max_fix_pos=max_fix_pos)
            for layer, per_dir in enumerate(weights) for d, w in enumerate(per_dir)
        ]

    @property
    def hidden_size(self) -> int:
        return self.cells[0].hidden_size

    @property
    def input_size(self) -> int:
        return self.cells[0].input_size

    def check_initial_state(self, h0: np.ndarray | None, batch: int) -> None:
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if h0 is not None and tuple(h0.shape) != expected:
            raise ValueError(f"initial state has shape {tuple(h0.shape)}, expected {expected}: "
                             "the initial state does not match the number of layers and directions")

    def _run_layers(self, x, lengths, h0, run_cell):
        """Feeds every layer's cells; `run_cell(cell, x, lengths, h0)` returns the cell's output
        [B, T, H]."""
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                outs.append(run_cell(self.cells[k], layer_in, lengths, None if h0 is None else h0[k]))
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        return layer_in

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
                mode: RunMode = RunMode.TEST, out_dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Runs every layer; returns (out [B, T, D*H], h_n [L*D, B, H]).

        x may be float32 or float64 (both are read exactly); `out` (and every layer's output,
        the next layer's input) is `out_dtype`, float64 or float32: the values are codes times
        powers of two of at most 16 bits, exact in both. h_n is float64."""
        self.check_initial_state(h0, x.shape[0])
        h_n = []

        def run_cell(cell, *args):
            run = cell.calibrate if mode == RunMode.CALIB else cell.run
            out, h = run(*args, out_dtype=out_dtype)
            h_n.append(h)
            return out

        out = self._run_layers(x, lengths, h0, run_cell)
        return out, np.stack(h_n)

    def record(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
               c0: None = None) -> dict[str, CellRecord]:
        """Test-mode run of batch element 0 recording every node of every cell (deploy check).
        `c0` is accepted for the session's stack interface and must be None."""
        if c0 is not None:
            raise ValueError("a GRU has no cell state")
        records: dict[str, CellRecord] = {}

        def run_cell(cell, *args):
            out, records[cell.graph_name] = cell.record(*args)
            return out

        self._run_layers(x[:1], None if lengths is None else lengths[:1], None if h0 is None else h0[:, :1], run_cell)
        return records

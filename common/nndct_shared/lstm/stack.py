"""A multi-layer, optionally bidirectional LSTM made of quantized StandardLstmCells.

This is the framework-neutral equivalent of the reference's `StackedLstm`: each (layer,
direction) is its own cell graph; layer l > 0 reads the concatenation of the previous layer's
forward and backward outputs. Front ends only convert their tensors to NumPy and back.
"""
from __future__ import annotations

import numpy as np

from ..quant_mode import RunMode
from .cell import CellRecord, QuantizedLstmCell
from .cell_params import CellWeights
from .naming import cell_graph_name

__all__ = ["QuantizedLstmStack"]


class QuantizedLstmStack:
    """`cells[l * D + d]` is layer l, direction d (0 forward, 1 backward), as in nn.LSTM's h_n.

    `backward_only=True` makes a one-direction stack whose cells run backward (Keras'
    `LSTM(go_backwards=True)`): their graphs are the `..._backward` cells, outputs stay aligned
    with the input positions, as a bidirectional stack's backward half is."""

    def __init__(self, prefix: str, weights: list[list[CellWeights]], bit_width: int,
                 max_fix_pos: int = 12, backward_only: bool = False) -> None:
        if not weights or any(len(w) != len(weights[0]) for w in weights) or len(weights[0]) not in (1, 2):
            raise ValueError("weights must be [num_layers][1 or 2 directions]")
        if backward_only and len(weights[0]) != 1:
            raise ValueError("backward_only needs exactly one direction per layer")
        self.prefix = prefix
        self.num_layers = len(weights)
        self.num_directions = len(weights[0])
        self.cells = [
            QuantizedLstmCell(cell_graph_name(prefix, layer, bool(d) or backward_only), w,
                              reverse=bool(d) or backward_only, bit_width=bit_width, max_fix_pos=max_fix_pos)
            for layer, per_dir in enumerate(weights) for d, w in enumerate(per_dir)
        ]

    @property
    def hidden_size(self) -> int:
        return self.cells[0].hidden_size

    @property
    def input_size(self) -> int:
        return self.cells[0].input_size

    def check_initial_states(self, h0: np.ndarray | None, batch: int) -> None:
        if h0 is None:
            return
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if tuple(h0.shape) != expected:
            raise ValueError(f"initial states have shape {tuple(h0.shape)}, expected {expected}: "
                             "initial states do not match the number of layers and directions")

    def _run_layers(self, x, lengths, h0, c0, run_cell):
        """Feeds every layer's cells; layer l > 0 reads the concatenated outputs of layer l - 1.
        `run_cell(k, cell, x, lengths, h0, c0)` returns the cell's output [B, T, H]."""
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                outs.append(run_cell(k, self.cells[k], layer_in, lengths,
                                     None if h0 is None else h0[k], None if c0 is None else c0[k]))
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        return layer_in

    def forward(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
                c0: np.ndarray | None = None, mode: RunMode = RunMode.TEST, out_dtype=np.float64):
        """Runs every layer; returns (out [B, T, D*H], h_n [L*D, B, H], c_n [L*D, B, H]).

        x may be float32 or float64 (both are read exactly); `out` (and every layer's output,
        the next layer's input) is `out_dtype`, float64 or float32: the values are codes times
        powers of two of at most 16 bits, exact in both. h_n and c_n are float64."""
        batch = x.shape[0]
        self.check_initial_states(h0, batch)
        self.check_initial_states(c0, batch)
        h_n, c_n = [], []

        def run_cell(k, cell, *args):
            run = cell.calibrate if mode == RunMode.CALIB else cell.run
            out, h, c = run(*args, out_dtype=out_dtype)
            h_n.append(h)
            c_n.append(c)
            return out

        out = self._run_layers(x, lengths, h0, c0, run_cell)
        return out, np.stack(h_n), np.stack(c_n)

    def record(self, x: np.ndarray, lengths: np.ndarray | None = None, h0: np.ndarray | None = None,
               c0: np.ndarray | None = None) -> dict[str, CellRecord]:
        """Test-mode run of batch element 0 recording every node of every cell (deploy check)."""
        records: dict[str, CellRecord] = {}

        def run_cell(k, cell, *args):
            out, records[cell.graph_name] = cell.record(*args)
            return out

        self._run_layers(x[:1], None if lengths is None else lengths[:1],
                         None if h0 is None else h0[:, :1], None if c0 is None else c0[:, :1], run_cell)
        return records

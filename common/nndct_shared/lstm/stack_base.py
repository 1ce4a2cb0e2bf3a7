"""What a multi-layer, optionally bidirectional stack of quantized recurrent cells does, whatever
the cell: the LSTM and GRU stacks differ only in their cell class, their graph names and their
states (h and c, or h alone).

Each (layer, direction) is its own cell graph; layer l > 0 reads the concatenation of the
previous layer's forward and backward outputs, as the reference's `StackedLstm` does. Front ends
only convert their tensors to NumPy and back.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..quant_mode import RunMode

StateArrays = Sequence[np.ndarray | None]
RunCell = Callable[..., tuple[np.ndarray, tuple[np.ndarray, ...]]]
"""`run_cell(cell, x [B, T, I], lengths, cell_states) -> (out [B, T, H], final states)`."""


class QuantizedRnnStack:
    """`cells[l * D + d]` is layer l, direction d (0 forward, 1 backward), as in torch's h_n.

    `backward_only=True` makes a one-direction stack whose cells run backward (Keras'
    `go_backwards=True`): their graphs are the `..._backward` cells, outputs stay aligned with
    the input positions, as a bidirectional stack's backward half is.

    Subclasses set `cell_class`, `state_names` and `graph_name(prefix, layer, backward)`."""

    cell_class: type
    state_names: tuple[str, ...]

    @staticmethod
    def graph_name(prefix: str, layer: int, backward: bool) -> str:
        raise NotImplementedError("a recurrent stack names its cell graphs")

    def __init__(self, prefix: str, weights: list[list[Any]], bit_width: int, max_fix_pos: int = 12,
                 backward_only: bool = False) -> None:
        if not weights or any(len(w) != len(weights[0]) for w in weights) or len(weights[0]) not in (1, 2):
            raise ValueError("weights must be [num_layers][1 or 2 directions]")
        if backward_only and len(weights[0]) != 1:
            raise ValueError("backward_only needs exactly one direction per layer")
        self.prefix = prefix
        self.num_layers = len(weights)
        self.num_directions = len(weights[0])
        self.cells = [
            self.cell_class(self.graph_name(prefix, layer, bool(d) or backward_only), w,
                            reverse=bool(d) or backward_only, bit_width=bit_width, max_fix_pos=max_fix_pos)
            for layer, per_dir in enumerate(weights) for d, w in enumerate(per_dir)
        ]

    @property
    def hidden_size(self) -> int:
        return self.cells[0].hidden_size

    @property
    def input_size(self) -> int:
        return self.cells[0].input_size

    def check_states(self, states: StateArrays, batch: int) -> None:
        """Each given initial state must be [L*D, batch, H]."""
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        for state in states:
            if state is not None and tuple(state.shape) != expected:
                raise ValueError(f"initial states have shape {tuple(state.shape)}, expected {expected}: "
                                 "initial states do not match the number of layers and directions")

    def run_layers(self, x: np.ndarray, lengths: np.ndarray | None, states: StateArrays,
                   run_cell: RunCell) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Feeds every layer's cells through `run_cell`; returns the last layer's output and the
        final states stacked as [L*D, B, H] each, in `state_names` order."""
        self.check_states(states, x.shape[0])
        finals: list[list[np.ndarray]] = [[] for _ in self.state_names]
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                k = layer * self.num_directions + d
                out, cell_finals = run_cell(self.cells[k], layer_in, lengths,
                                            tuple(None if s is None else s[k] for s in states))
                outs.append(out)
                for acc, final in zip(finals, cell_finals):
                    acc.append(final)
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
        return layer_in, tuple(np.stack(acc) if acc and acc[0] is not None else None for acc in finals)

    def forward_states(self, x: np.ndarray, lengths: np.ndarray | None, states: StateArrays,
                       mode: RunMode, out_dtype) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Runs every layer in `mode`: (out [B, T, D*H], final states).

        x may be float32 or float64 (both are read exactly); `out` (and every layer's output,
        the next layer's input) is `out_dtype`, float64 or float32: the values are codes times
        powers of two of at most 16 bits, exact in both. Final states are float64."""

        def run_cell(cell, x_in, lens, cell_states):
            run = cell.calibrate if mode == RunMode.CALIB else cell.run
            out, *cell_finals = run(x_in, lens, *cell_states, out_dtype=out_dtype)
            return out, cell_finals

        return self.run_layers(x, lengths, states, run_cell)

    def record_states(self, x: np.ndarray, lengths: np.ndarray | None, states: StateArrays) -> dict[str, Any]:
        """Test-mode run of batch element 0 recording every node of every cell (deploy check)."""
        records: dict[str, Any] = {}

        def run_cell(cell, x_in, lens, cell_states):
            out, records[cell.graph_name] = cell.record(x_in, lens, *cell_states)
            return out, ()

        self.run_layers(x[:1], None if lengths is None else lengths[:1],
                        [None if s is None else s[:, :1] for s in states], run_cell)
        return records

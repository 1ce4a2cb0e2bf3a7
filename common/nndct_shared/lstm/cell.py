"""One quantized StandardLstmCell (one layer, one direction) running whole sequences in C++."""
from __future__ import annotations

import numpy as np

from .. import _kernels, kernels
from .cell_base import (
    PARAM_SEARCH_RANGE,
    WEIGHT_METHOD,
    CellRecord,
    QuantizedCell,
    as_sequence,
    optional_array,
    record_from_codes,
)
from .cell_params import CellWeights
from .naming import GATES, LSTM_CELL, PARAM_NAMES

__all__ = ["CellRecord", "PARAM_SEARCH_RANGE", "QuantizedLstmCell", "WEIGHT_METHOD"]

_as_sequence = as_sequence
_optional = optional_array


class QuantizedLstmCell(QuantizedCell):
    """The reference's cell graph `graph_name`, with calibration statistics or fix positions.

    Arrays in and out are NumPy: x [batch, steps, input], lengths [batch] (None: all steps),
    h0/c0 [batch, hidden] (None: zeros). Both front ends call exactly this code, which is why a
    PyTorch and a Keras LSTM with the same weights give the same bits.
    """

    def __init__(self, graph_name: str, weights: CellWeights, reverse: bool, bit_width: int,
                 max_fix_pos: int = 12, num_threads: int | None = None) -> None:
        super().__init__(LSTM_CELL, graph_name, weights, reverse, bit_width, max_fix_pos, num_threads)

    # ----------------------------------------------------------------------------- calibration
    def _fake_quantized_params(self, param_fp: dict[str, int]) -> tuple[np.ndarray, ...]:
        blocks = self.weights.blocks()
        q = {n: kernels.fix_neuron(blocks[n], self.bit_width, param_fp[n], WEIGHT_METHOD) for n in PARAM_NAMES}
        return (np.concatenate([q[f"weight_i{g}"] for g in GATES]),
                np.concatenate([q[f"weight_h{g}"] for g in GATES]),
                np.concatenate([q[f"bias_{g}"] for g in GATES]))

    def calibrate(self, x, lengths=None, h0=None, c0=None):
        """Calibration-mode forward: the reference's fake-quantized float cell, recording the
        diffs fix position of every node at every step. Returns (out, h_n, c_n)."""
        if not self.calibration.param:
            self._calibrate_params()
        w_ih, w_hh, bias = self._fake_quantized_params(self.calibration.param)
        cal = self.calibration
        return _kernels.lstm_calibrate_forward(
            _as_sequence(x), w_ih, w_hh, bias, self.bit_width, cal.counts,
            search_range=PARAM_SEARCH_RANGE, max_fix_pos=cal.max_fix_pos,
            lengths=_optional(lengths, np.int64), h0=_optional(h0, np.float64),
            c0=_optional(c0, np.float64), reverse=self.reverse)

    # ----------------------------------------------------------------------------- test mode
    def load_fix_positions(self, fix) -> None:
        self.fix = fix
        self._codes = self.param_codes()

    def _run_fixed(self, x, lengths, h0, c0, record: bool):
        fix = self._require_fix()
        codes = self._codes
        node, w_ih_fp, w_hh_fp, bias_fp = fix.arrays()
        w_ih = np.concatenate([codes[f"weight_i{g}"] for g in GATES])
        w_hh = np.concatenate([codes[f"weight_h{g}"] for g in GATES])
        bias = np.concatenate([codes[f"bias_{g}"] for g in GATES])
        return _kernels.lstm_fixed_forward(
            _as_sequence(x), w_ih, w_hh, bias, fix.bit_width, node, w_ih_fp, w_hh_fp, bias_fp,
            lengths=_optional(lengths, np.int64), h0=_optional(h0, np.float64),
            c0=_optional(c0, np.float64), reverse=self.reverse, record=record,
            num_threads=self.num_threads)

    def run(self, x, lengths=None, h0=None, c0=None):
        """Test-mode forward on integer codes. Returns (out, h_n, c_n) as float64 arrays."""
        out, h_n, c_n, _ = self._run_fixed(x, lengths, h0, c0, record=False)
        return out, h_n, c_n

    def record(self, x, lengths=None, h0=None, c0=None) -> tuple[np.ndarray, CellRecord]:
        """Test-mode forward that also returns every node's codes for batch element 0.

        Returns (out, record): the same `out` as `run`, and the per-step codes."""
        out, _, _, (input0, nodes) = self._run_fixed(x, lengths, h0, c0, record=True)
        return out, record_from_codes(self.definition, input0, nodes, self._require_fix())

    # ----------------------------------------------------------------------------- files
    def module_source(self) -> str:
        from .codegen import cell_source

        return cell_source(self.graph_name, self.input_size, self.hidden_size, self.reverse)

    def xgraph(self):
        from .xmodel_export import cell_xgraph

        return cell_xgraph(self)

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
from .fix_positions import CellFixPositions
from .naming import GATES, LSTM_CELL

__all__ = ["CellRecord", "PARAM_SEARCH_RANGE", "QuantizedLstmCell", "WEIGHT_METHOD"]

_as_sequence = as_sequence
_optional = optional_array


class QuantizedLstmCell(QuantizedCell):
    """The reference's cell graph `graph_name`, with calibration statistics or fix positions.

    Arrays in and out are NumPy: x [batch, steps, input], lengths [batch] (None: all steps),
    h0/c0 [batch, hidden] (None: zeros). Both front ends call exactly this code, which is why a
    PyTorch and a Keras LSTM with the same weights give the same bits. `out_dtype` (float64 by
    default, or float32) is the dtype of the output sequence; its values are exact in both.

    The C++ cells are `_kernels.FixedLstmCell` (test mode) and `_kernels.CalibLstmCell`
    (calibration), prepared once as `QuantizedCell` describes.
    """

    def __init__(self, graph_name: str, weights: CellWeights, reverse: bool, bit_width: int,
                 max_fix_pos: int = 12, num_threads: int | None = None) -> None:
        super().__init__(LSTM_CELL, graph_name, weights, reverse, bit_width, max_fix_pos, num_threads)

    # ----------------------------------------------------------------------------- calibration
    def _make_calib_cell(self, param_fp: dict[str, int]):
        """Weight codes (the fake-quantized weights are code * 2^-fp exactly), their fix
        positions and the fake-quantized bias."""
        codes = self._codes_at(param_fp, [f"weight_{s}{g}" for s in "ih" for g in GATES])
        blocks = self.weights.blocks()
        bias = np.concatenate([kernels.fix_neuron(blocks[f"bias_{g}"], self.param_width(f"bias_{g}"),
                                                  param_fp[f"bias_{g}"], WEIGHT_METHOD) for g in GATES])
        return _kernels.CalibLstmCell(
            np.concatenate([codes[f"weight_i{g}"] for g in GATES]),
            np.concatenate([codes[f"weight_h{g}"] for g in GATES]),
            np.asarray([param_fp[f"weight_i{g}"] for g in GATES], np.int32),
            np.asarray([param_fp[f"weight_h{g}"] for g in GATES], np.int32),
            bias, self.bit_width, search_range=PARAM_SEARCH_RANGE, max_fix_pos=self.calibration.max_fix_pos,
            node_bits=self.calibration.node_bits())

    def calibrate(self, x, lengths=None, h0=None, c0=None, out_dtype=np.float64):
        """Calibration-mode forward: the reference's fake-quantized float cell, recording the
        diffs fix position of every node at every step. Returns (out, h_n, c_n)."""
        cell = self._prepared_calib_cell()
        return cell.forward(
            _as_sequence(x), self.calibration.counts, lengths=_optional(lengths, np.int64),
            h0=_optional(h0, np.float64), c0=_optional(c0, np.float64), reverse=self.reverse,
            num_threads=self.threads(), out_dtype=out_dtype)

    # ----------------------------------------------------------------------------- test mode
    def _make_fixed_cell(self, fix: CellFixPositions):
        codes = self.param_codes()
        node, w_ih_fp, w_hh_fp, bias_fp = fix.arrays()
        return _kernels.FixedLstmCell(
            np.concatenate([codes[f"weight_i{g}"] for g in GATES]),
            np.concatenate([codes[f"weight_h{g}"] for g in GATES]),
            np.concatenate([codes[f"bias_{g}"] for g in GATES]),
            fix.bit_width, node, w_ih_fp, w_hh_fp, bias_fp, node_bits=fix.node_bits())

    def _run_fixed(self, x, lengths, h0, c0, record: bool, out_dtype=np.float64):
        self._require_fix()
        return self._fixed_cell.forward(
            _as_sequence(x), lengths=_optional(lengths, np.int64), h0=_optional(h0, np.float64),
            c0=_optional(c0, np.float64), reverse=self.reverse, record=record, num_threads=self.threads(),
            out_dtype=out_dtype)

    def run(self, x, lengths=None, h0=None, c0=None, out_dtype=np.float64):
        """Test-mode forward on integer codes. Returns (out, h_n, c_n); h_n and c_n are float64."""
        out, h_n, c_n, _ = self._run_fixed(x, lengths, h0, c0, record=False, out_dtype=out_dtype)
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

"""One quantized StandardGruCell (one layer, one direction) running whole sequences in C++."""
from __future__ import annotations

import numpy as np

from .. import _kernels, kernels
from ..lstm.cell_base import (
    PARAM_SEARCH_RANGE,
    WEIGHT_METHOD,
    CellRecord,
    QuantizedCell,
    as_sequence,
    optional_array,
    record_from_codes,
)
from ..lstm.fix_positions import CellFixPositions
from .cell_params import GruCellWeights
from .naming import GATES, gru_definition


class QuantizedGruCell(QuantizedCell):
    """The cell graph `graph_name` of the weights' variant (reset after or before), with
    calibration statistics (calib mode) or fix positions (test mode).

    Arrays in and out are NumPy: x [batch, steps, input], lengths [batch] (None: all steps),
    h0 [batch, hidden] (None: zeros). Both front ends call exactly this code, which is why a
    PyTorch and a Keras GRU with the same weights give the same bits.
    """

    def __init__(self, graph_name: str, weights: GruCellWeights, reverse: bool, bit_width: int,
                 max_fix_pos: int = 12, num_threads: int | None = None) -> None:
        super().__init__(gru_definition(weights.reset_after), graph_name, weights, reverse, bit_width,
                         max_fix_pos, num_threads)

    @property
    def reset_after(self) -> bool:
        return self.weights.reset_after

    def _bias_names(self) -> tuple[list[str], list[str] | None]:
        if self.reset_after:
            return [f"bias_i{g}" for g in GATES], [f"bias_h{g}" for g in GATES]
        return [f"bias_{g}" for g in GATES], None

    def _kernel_layout(self, blocks: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """(w_ih [3H, I], w_hh [3H, H], b_ih [3H], b_hh [3H] or None) from the named blocks."""
        b_ih, b_hh = self._bias_names()
        return (np.concatenate([blocks[f"weight_i{g}"] for g in GATES]),
                np.concatenate([blocks[f"weight_h{g}"] for g in GATES]),
                np.concatenate([blocks[n] for n in b_ih]),
                None if b_hh is None else np.concatenate([blocks[n] for n in b_hh]))

    # ----------------------------------------------------------------------------- calibration
    def _make_calib_cell(self, param_fp: dict[str, int]):
        """Weight codes (the fake-quantized weights are code * 2^-fp exactly), their fix
        positions and the fake-quantized biases."""
        codes = self._codes_at(param_fp, [f"weight_{s}{g}" for s in "ih" for g in GATES])
        blocks = self.weights.blocks()
        b_ih, b_hh = self._bias_names()
        bias = lambda names: np.concatenate([  # noqa: E731
            kernels.fix_neuron(blocks[n], self.param_width(n), param_fp[n], WEIGHT_METHOD) for n in names])
        return _kernels.CalibGruCell(
            np.concatenate([codes[f"weight_i{g}"] for g in GATES]),
            np.concatenate([codes[f"weight_h{g}"] for g in GATES]),
            np.asarray([param_fp[f"weight_i{g}"] for g in GATES], np.int32),
            np.asarray([param_fp[f"weight_h{g}"] for g in GATES], np.int32),
            bias(b_ih), None if b_hh is None else bias(b_hh), self.reset_after, self.bit_width,
            search_range=PARAM_SEARCH_RANGE, max_fix_pos=self.calibration.max_fix_pos,
            node_bits=self.calibration.node_bits())

    def calibrate(self, x, lengths=None, h0=None, out_dtype=np.float64):
        """Calibration-mode forward: the reference's fake-quantized float cell, recording the
        diffs fix position of every node at every step. Returns (out, h_n)."""
        return self._prepared_calib_cell().forward(
            as_sequence(x), self.calibration.counts, lengths=optional_array(lengths, np.int64),
            h0=optional_array(h0, np.float64), reverse=self.reverse, num_threads=self.threads(),
            out_dtype=out_dtype)

    # ----------------------------------------------------------------------------- test mode
    def _make_fixed_cell(self, fix: CellFixPositions):
        w_ih, w_hh, b_ih, b_hh = self._kernel_layout(self.param_codes())
        return _kernels.FixedGruCell(w_ih, w_hh, b_ih, b_hh, self.reset_after, fix.bit_width, *self._fix_arrays(fix),
                                     node_bits=fix.node_bits())

    def _fix_arrays(self, fix: CellFixPositions) -> tuple[np.ndarray, ...]:
        """(node[19], w_ih[3], w_hh[3], b_ih[3], b_hh[3]) fix positions for the C++ loop."""
        p = fix.param
        b_ih, b_hh = self._bias_names()
        as_int = lambda names: np.asarray([p[n] for n in names], dtype=np.int32)  # noqa: E731
        return (np.asarray(fix.node, dtype=np.int32), as_int([f"weight_i{g}" for g in GATES]),
                as_int([f"weight_h{g}" for g in GATES]), as_int(b_ih),
                np.zeros(3, np.int32) if b_hh is None else as_int(b_hh))

    def _run_fixed(self, x, lengths, h0, record: bool, out_dtype=np.float64):
        self._require_fix()
        return self._fixed_cell.forward(
            as_sequence(x), lengths=optional_array(lengths, np.int64), h0=optional_array(h0, np.float64),
            reverse=self.reverse, record=record, num_threads=self.threads(), out_dtype=out_dtype)

    def run(self, x, lengths=None, h0=None, out_dtype=np.float64):
        """Test-mode forward on integer codes. Returns (out, h_n); h_n is float64."""
        out, h_n, _ = self._run_fixed(x, lengths, h0, record=False, out_dtype=out_dtype)
        return out, h_n

    def record(self, x, lengths=None, h0=None) -> tuple[np.ndarray, CellRecord]:
        """Test-mode forward that also returns every node's codes for batch element 0.

        Returns (out, record): the same `out` as `run`, and the per-step codes."""
        out, _, (input0, nodes) = self._run_fixed(x, lengths, h0, record=True)
        return out, record_from_codes(self.definition, input0, nodes, self._require_fix())

    # ----------------------------------------------------------------------------- files
    def module_source(self) -> str:
        from .codegen import gru_cell_source

        return gru_cell_source(self.graph_name, self.input_size, self.hidden_size, self.reverse, self.reset_after)

    def xgraph(self):
        from .xmodel_export import gru_cell_xgraph

        return gru_cell_xgraph(self)

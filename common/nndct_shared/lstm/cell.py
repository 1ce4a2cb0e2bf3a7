"""One quantized StandardLstmCell (one layer, one direction) running whole sequences in C++."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _kernels, kernels
from ..kernels.threads import loop_threads
from .cell_params import CellWeights
from .fix_positions import CellCalibration, CellFixPositions
from .naming import GATES, NODE_NAMES, PARAM_NAMES

WEIGHT_METHOD = "std_round"
"""Weights and biases are rounded half away from zero (the reference's method 3)."""
PARAM_SEARCH_RANGE = 5


@dataclass(frozen=True)
class CellRecord:
    """Integer codes of every node of batch element 0, one row per processed time step.

    `codes[name]` has shape [steps, width] (width = input size for input_0, hidden size else);
    row t is the t-th step in processing order (a backward cell's row 0 is the last position).
    """

    codes: dict[str, np.ndarray]
    fix: CellFixPositions

    @property
    def steps(self) -> int:
        return self.codes["input_0"].shape[0]


def _as_sequence(x: np.ndarray) -> np.ndarray:
    """float32 stays float32 (the loops read either exactly); anything else becomes float64."""
    x = np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)


def _optional(a: np.ndarray | None, dtype) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


class QuantizedLstmCell:
    """The reference's cell graph `graph_name`, with calibration statistics or fix positions.

    Arrays in and out are NumPy: x [batch, steps, input], lengths [batch] (None: all steps),
    h0/c0 [batch, hidden] (None: zeros). Both front ends call exactly this code, which is why a
    PyTorch and a Keras LSTM with the same weights give the same bits. `out_dtype` (float64 by
    default, or float32) is the dtype of the output sequence; its values are exact in both.

    The C++ cells (weights packed as int16 codes) are prepared once: the test-mode one when the
    fix positions are loaded, the calibration one at the first calibration call.
    `num_threads=None` follows `kernels.threads.loop_threads()` at every call.
    """

    def __init__(self, graph_name: str, weights: CellWeights, reverse: bool, bit_width: int,
                 max_fix_pos: int = 12, num_threads: int | None = None) -> None:
        self.graph_name = graph_name
        self.weights = weights
        self.reverse = reverse
        self.bit_width = bit_width
        self.calibration = CellCalibration(bit_width, max_fix_pos)
        self.fix: CellFixPositions | None = None
        self.num_threads = num_threads
        self._fixed_cell = None
        self._calib_cell = None
        self._calib_cell_params: dict[str, int] | None = None

    def threads(self) -> int:
        return self.num_threads or loop_threads()

    @property
    def hidden_size(self) -> int:
        return self.weights.hidden_size

    @property
    def input_size(self) -> int:
        return self.weights.input_size

    # ----------------------------------------------------------------------------- calibration
    def _calibrate_params(self) -> None:
        """Parameters are calibrated once, on first use (diffs, std round, capped)."""
        cal = self.calibration
        for name, block in self.weights.blocks().items():
            cal.param[name] = kernels.diffs_fix_pos(
                block, self.bit_width, search_range=PARAM_SEARCH_RANGE, method=WEIGHT_METHOD,
                max_fix_pos=cal.max_fix_pos)

    def _prepared_calib_cell(self):
        """The C++ calibration cell for the current parameter fix positions: weight codes (the
        fake-quantized weights are code * 2^-fp exactly) and the fake-quantized bias."""
        param_fp = self.calibration.param
        if self._calib_cell is None or self._calib_cell_params != param_fp:
            blocks = self.weights.blocks()
            codes = {n: kernels.fix_codes(blocks[n], self.bit_width, param_fp[n], WEIGHT_METHOD).astype(np.int32)
                     for n in PARAM_NAMES if n.startswith("weight")}
            bias = np.concatenate([kernels.fix_neuron(blocks[f"bias_{g}"], self.bit_width, param_fp[f"bias_{g}"],
                                                      WEIGHT_METHOD) for g in GATES])
            self._calib_cell = _kernels.CalibLstmCell(
                np.concatenate([codes[f"weight_i{g}"] for g in GATES]),
                np.concatenate([codes[f"weight_h{g}"] for g in GATES]),
                np.asarray([param_fp[f"weight_i{g}"] for g in GATES], np.int32),
                np.asarray([param_fp[f"weight_h{g}"] for g in GATES], np.int32),
                bias, self.bit_width, search_range=PARAM_SEARCH_RANGE, max_fix_pos=self.calibration.max_fix_pos)
            self._calib_cell_params = dict(param_fp)
        return self._calib_cell

    def calibrate(self, x, lengths=None, h0=None, c0=None, out_dtype=np.float64):
        """Calibration-mode forward: the reference's fake-quantized float cell, recording the
        diffs fix position of every node at every step. Returns (out, h_n, c_n)."""
        if not self.calibration.param:
            self._calibrate_params()
        return self._prepared_calib_cell().forward(
            _as_sequence(x), self.calibration.counts, lengths=_optional(lengths, np.int64),
            h0=_optional(h0, np.float64), c0=_optional(c0, np.float64), reverse=self.reverse,
            num_threads=self.threads(), out_dtype=out_dtype)

    # ----------------------------------------------------------------------------- test mode
    def load_fix_positions(self, fix: CellFixPositions) -> None:
        self.fix = fix
        codes = self.param_codes()
        node, w_ih_fp, w_hh_fp, bias_fp = fix.arrays()
        self._fixed_cell = _kernels.FixedLstmCell(
            np.concatenate([codes[f"weight_i{g}"] for g in GATES]),
            np.concatenate([codes[f"weight_h{g}"] for g in GATES]),
            np.concatenate([codes[f"bias_{g}"] for g in GATES]),
            fix.bit_width, node, w_ih_fp, w_hh_fp, bias_fp)

    def param_codes(self) -> dict[str, np.ndarray]:
        """The integer codes of the 12 parameters at their fix positions."""
        fix = self._require_fix()
        blocks = self.weights.blocks()
        return {n: kernels.fix_codes(blocks[n], fix.bit_width, fix.param[n], WEIGHT_METHOD).astype(np.int32)
                for n in PARAM_NAMES}

    def quantized_params(self) -> dict[str, np.ndarray]:
        """The 12 parameters fake-quantized at their fix positions (float32, as the xmodel holds them)."""
        fix = self._require_fix()
        return {n: np.ldexp(c.astype(np.float64), -fix.param[n]).astype(np.float32)
                for n, c in self.param_codes().items()}

    def _require_fix(self) -> CellFixPositions:
        if self.fix is None:
            raise RuntimeError(f"cell {self.graph_name} has no fix positions: load quant_info.json first")
        return self.fix

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
        codes = {"input_0": input0}
        for k, name in enumerate(NODE_NAMES[1:]):
            codes[name] = nodes[:, k, :]
        return out, CellRecord(codes, self._require_fix())

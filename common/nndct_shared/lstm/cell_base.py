"""What every quantized RNN cell (one layer, one direction) has in common, and the interface the
session iterates.

A cell kind (StandardLstmCell, the StandardGruCell variants) supplies its `CellDefinition`, its
float weights as named parameter blocks and its C++ time loops; the parameter calibration, the
integer parameter codes, the fix positions read from quant_info.json and the files written per
cell (`module_source()` for `<graph>.py`, `xgraph()` for `<graph>_int.xmodel`) are reached
through this class, so the session needs no per-kind code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .. import kernels
from ..kernels.threads import loop_threads
from .cell_definition import CellDefinition
from .fix_positions import CellCalibration, CellFixPositions
from .widths import CellWidths

WEIGHT_METHOD = "std_round"
"""Weights and biases are rounded half away from zero (the reference's method 3)."""
PARAM_SEARCH_RANGE = 5


class CellWeightBlocks(Protocol):
    """Float weights of a cell, split into the graph's named parameters."""

    @property
    def hidden_size(self) -> int: ...

    @property
    def input_size(self) -> int: ...

    def blocks(self) -> dict[str, np.ndarray]: ...


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


def as_sequence(x: np.ndarray) -> np.ndarray:
    """float32 stays float32 (the loops read either exactly); anything else becomes float64."""
    x = np.asarray(x)
    return np.ascontiguousarray(x, dtype=np.float32 if x.dtype == np.float32 else np.float64)


def optional_array(a: np.ndarray | None, dtype) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def record_from_codes(definition: CellDefinition, input0: np.ndarray, nodes: np.ndarray,
                      fix: CellFixPositions) -> CellRecord:
    """The record of a C++ loop's (input_0 codes [T, I], codes of nodes 1.. [T, nodes - 1, H])."""
    codes = {"input_0": input0}
    for k, name in enumerate(definition.node_names[1:]):
        codes[name] = nodes[:, k, :]
    return CellRecord(codes, fix)


class QuantizedCell:
    """The reference's cell graph `graph_name` of kind `definition`, with its calibration
    statistics (calib mode) or fix positions (test mode).

    The C++ cells of a kind (weights packed as int16 codes) are prepared once: the test-mode one
    when the fix positions are loaded (`_make_fixed_cell`), the calibration one at the first
    calibration call and again only when the parameter fix positions change (`_make_calib_cell`).
    `num_threads=None` follows `kernels.threads.loop_threads()` at every call.
    """

    def __init__(self, definition: CellDefinition, graph_name: str, weights: CellWeightBlocks, reverse: bool,
                 bit_width: int, max_fix_pos: int = 12, num_threads: int | None = None) -> None:
        self.definition = definition
        self.graph_name = graph_name
        self.weights = weights
        self.reverse = reverse
        self.bit_width = bit_width
        self.widths = CellWidths.uniform(definition, bit_width)
        self.calibration = CellCalibration(bit_width, max_fix_pos, definition=definition)
        self.fix: CellFixPositions | None = None
        self.num_threads = num_threads
        self._fixed_cell = None
        self._calib_cell = None
        self._calib_cell_params: dict[str, int] | None = None

    def set_widths(self, widths: CellWidths) -> None:
        """Give every node and parameter its own bit width (mixed widths), before any
        calibration or loading of fix positions."""
        self.widths = widths
        self.calibration = CellCalibration(self.bit_width, self.calibration.max_fix_pos, definition=self.definition,
                                           widths=widths)
        self._calib_cell = None
        self._calib_cell_params = None

    def param_width(self, name: str) -> int:
        return self.widths.param[name]

    def threads(self) -> int:
        """Threads of the next forward: `num_threads`, else `loop_threads()` (read at every call)."""
        return self.num_threads or loop_threads()

    @property
    def hidden_size(self) -> int:
        return self.weights.hidden_size

    @property
    def input_size(self) -> int:
        return self.weights.input_size

    # ----------------------------------------------------------------------------- parameters
    def _calibrate_params(self) -> None:
        """Parameters are calibrated once, on first use (diffs, std round, capped)."""
        cal = self.calibration
        for name, block in self.weights.blocks().items():
            cal.param[name] = kernels.diffs_fix_pos(
                block, self.param_width(name), search_range=PARAM_SEARCH_RANGE, method=WEIGHT_METHOD,
                max_fix_pos=cal.max_fix_pos)

    def _codes_at(self, param_fp: dict[str, int], names) -> dict[str, np.ndarray]:
        """The int32 codes of the parameters `names` at the fix positions `param_fp`."""
        blocks = self.weights.blocks()
        return {n: kernels.fix_codes(blocks[n], self.param_width(n), param_fp[n], WEIGHT_METHOD).astype(np.int32)
                for n in names}

    def _prepared_calib_cell(self):
        """The C++ calibration cell for the current parameter fix positions (calibrated on first
        use; prepared again only when they change, e.g. after a distributed merge)."""
        if not self.calibration.param:
            self._calibrate_params()
        param_fp = self.calibration.param
        if self._calib_cell is None or self._calib_cell_params != param_fp:
            self._calib_cell = self._make_calib_cell(param_fp)
            self._calib_cell_params = dict(param_fp)
        return self._calib_cell

    def _make_calib_cell(self, param_fp: dict[str, int]):
        raise NotImplementedError(f"{type(self).__name__} has no calibration loop")

    def _make_fixed_cell(self, fix: CellFixPositions):
        raise NotImplementedError(f"{type(self).__name__} has no test-mode loop")

    def _fake_quantized_blocks(self) -> dict[str, np.ndarray]:
        """Every parameter fake-quantized at its calibrated fix position (calibrating on first use)."""
        if not self.calibration.param:
            self._calibrate_params()
        fp = self.calibration.param
        return {n: kernels.fix_neuron(b, self.param_width(n), fp[n], WEIGHT_METHOD)
                for n, b in self.weights.blocks().items()}

    def param_codes(self) -> dict[str, np.ndarray]:
        """The integer codes of the parameters at their fix positions."""
        fix = self._require_fix()
        blocks = self.weights.blocks()
        return {n: kernels.fix_codes(blocks[n], fix.param_width(n), fix.param[n], WEIGHT_METHOD).astype(np.int32)
                for n in self.definition.param_names}

    def quantized_params(self) -> dict[str, np.ndarray]:
        """The parameters fake-quantized at their fix positions (float32, as the xmodel holds them)."""
        fix = self._require_fix()
        return {n: np.ldexp(c.astype(np.float64), -fix.param[n]).astype(np.float32)
                for n, c in self.param_codes().items()}

    def _require_fix(self) -> CellFixPositions:
        if self.fix is None:
            raise RuntimeError(f"cell {self.graph_name} has no fix positions: load quant_info.json first")
        return self.fix

    # ----------------------------------------------------------------------------- the session's interface
    def load_fix_positions(self, fix: CellFixPositions) -> None:
        self.fix = fix
        self._fixed_cell = self._make_fixed_cell(fix)

    def fix_positions_from_quant_info(self, param: dict, output: dict) -> CellFixPositions:
        """This cell's entries of a quant_info.json (every key present; checked by the caller)."""
        return CellFixPositions.from_quant_info_entries(self.graph_name, param, output, self.definition)

    def module_source(self) -> str:
        """The text of `<graph>.py`, the runnable float description of the cell."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its graph as Python")

    def xgraph(self):
        """The XIR graph of the cell with its fix positions (test mode)."""
        raise NotImplementedError(f"{type(self).__name__} has no xmodel export")

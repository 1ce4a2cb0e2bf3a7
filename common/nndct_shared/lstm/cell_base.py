"""What every quantized RNN cell (one layer, one direction) has in common, and the interface the
session iterates.

A cell kind (StandardLstmCell, the StandardGruCell variants) supplies its `CellDefinition`, its
float weights as named parameter blocks and its C++ time loops; the parameter calibration, the
integer parameter codes, the fix positions read from quant_info.json and the files written per
cell (`module_source()` for `<graph>.py`, `xgraph()` for `<graph>_int.xmodel`) are reached
through this class, so the session needs no per-kind code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .. import kernels
from .cell_definition import CellDefinition
from .fix_positions import CellCalibration, CellFixPositions

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


def default_threads() -> int:
    """Threads for the batch-parallel test loop: NNDCT_NUM_THREADS, else every core."""
    env = os.environ.get("NNDCT_NUM_THREADS")
    return max(1, int(env)) if env else max(1, os.cpu_count() or 1)


def as_sequence(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


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
    statistics (calib mode) or fix positions (test mode)."""

    def __init__(self, definition: CellDefinition, graph_name: str, weights: CellWeightBlocks, reverse: bool,
                 bit_width: int, max_fix_pos: int = 12, num_threads: int | None = None) -> None:
        self.definition = definition
        self.graph_name = graph_name
        self.weights = weights
        self.reverse = reverse
        self.bit_width = bit_width
        self.calibration = CellCalibration(bit_width, max_fix_pos, definition=definition)
        self.fix: CellFixPositions | None = None
        self.num_threads = num_threads or default_threads()

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
                block, self.bit_width, search_range=PARAM_SEARCH_RANGE, method=WEIGHT_METHOD,
                max_fix_pos=cal.max_fix_pos)

    def _fake_quantized_blocks(self) -> dict[str, np.ndarray]:
        """Every parameter fake-quantized at its calibrated fix position (calibrating on first use)."""
        if not self.calibration.param:
            self._calibrate_params()
        fp = self.calibration.param
        return {n: kernels.fix_neuron(b, self.bit_width, fp[n], WEIGHT_METHOD) for n, b in self.weights.blocks().items()}

    def param_codes(self) -> dict[str, np.ndarray]:
        """The integer codes of the parameters at their fix positions."""
        fix = self._require_fix()
        blocks = self.weights.blocks()
        return {n: kernels.fix_codes(blocks[n], fix.bit_width, fix.param[n], WEIGHT_METHOD).astype(np.int32)
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

    def fix_positions_from_quant_info(self, param: dict, output: dict) -> CellFixPositions:
        """This cell's entries of a quant_info.json (every key present; checked by the caller)."""
        return CellFixPositions.from_quant_info_entries(self.graph_name, param, output, self.definition)

    def module_source(self) -> str:
        """The text of `<graph>.py`, the runnable float description of the cell."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its graph as Python")

    def xgraph(self):
        """The XIR graph of the cell with its fix positions (test mode)."""
        raise NotImplementedError(f"{type(self).__name__} has no xmodel export")

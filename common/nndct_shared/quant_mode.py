"""The `quant_mode` argument of `torch_quantizer` and `tf_quantizer`: one parser, so both front
ends accept the same values ('calib', 'test', and the reference's legacy ints 1 and 2 with a
deprecation warning) and refuse the rest with the same catalogued error.

`RunMode` is the one run mode of every flow (LSTM and CNN sessions, runtimes, post-training
steps); code compares against its members, never against the strings."""
from __future__ import annotations

from enum import Enum
from typing import Any

from .messages import error, warn


class RunMode(str, Enum):
    CALIB = "calib"
    TEST = "test"

    @property
    def nonfinite_data_code(self) -> str:
        """Catalogue code for NaN/inf in the data given to the model in this mode: a calibration
        error only while calibrating."""
        return "CALIB_DATA_NONFINITE" if self is RunMode.CALIB else "TEST_DATA_NONFINITE"


_LEGACY_MODES = {1: "calib", 2: "test"}


def parse_quant_mode(quant_mode: Any) -> RunMode:
    """'calib' / 'test' (or 1 / 2, with QUANT_MODE_INT) as a RunMode; QUANT_MODE otherwise."""
    if isinstance(quant_mode, int) and not isinstance(quant_mode, bool) and quant_mode in _LEGACY_MODES:
        warn("QUANT_MODE_INT", value=quant_mode, name=_LEGACY_MODES[quant_mode])
        quant_mode = _LEGACY_MODES[quant_mode]
    if isinstance(quant_mode, str):
        try:
            return RunMode(quant_mode)
        except ValueError:
            pass
    raise error("QUANT_MODE", value=quant_mode, expected=[m.value for m in RunMode])


def require_mode(mode: RunMode, required: RunMode, action: str) -> None:
    """EXPORT_MODE unless `action` (e.g. "export_xmodel()") runs in the `required` mode."""
    if mode != required:
        raise error("EXPORT_MODE", action=action, required=required.value, mode=RunMode(mode).value)

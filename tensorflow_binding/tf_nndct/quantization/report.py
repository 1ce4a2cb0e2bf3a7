"""`TFQuantizer.report(...)`: the Keras model run for the neutral report of the recurrent flow.

The quantized Keras model runs on the report's inputs with each `QuantLSTM`'s / `QuantGRU`'s
stack replaced by the report's stand-in (`nndct_shared.report.lstm_flow`); the layers' own state (capture flags,
calibration) is left as it was.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from nndct_shared.messages import NndctError, error, use_frontend
from nndct_shared.report import ReportFiles, ReportOptions

__all__ = ["keras_report"]


def _flatten(value: Any) -> list[np.ndarray]:
    if isinstance(value, dict):
        return [a for v in value.values() for a in _flatten(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _flatten(v)]
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    return [array.astype(np.float64)] if array.dtype.kind == "f" else []


class KerasLstmHooks:
    """`nndct_shared.report.lstm_flow.LstmModelHooks` of a `TFQuantizer`."""

    def __init__(self, quantizer: Any, inputs: Any, eval_fn: Callable[[Any], Any] | None) -> None:
        if inputs is None:
            raise error("REPORT_ARGUMENT", argument="inputs", problem="is None",
                        hint="Pass the model's input for a representative batch (an array or a list of arrays).")
        self.quantizer, self.inputs, self.eval_fn = quantizer, inputs, eval_fn
        self.has_metric = eval_fn is not None

    @contextlib.contextmanager
    def _swapped(self, stacks: Sequence[Any]) -> Iterator[None]:
        layers = self.quantizer.quant_layers
        saved = [(layer.stack, layer.capture_next, layer.captured) for layer in layers]
        try:
            for layer, stack in zip(layers, stacks):
                layer.stack, layer.capture_next = stack, False
            yield
        finally:
            for layer, (stack, capture, captured) in zip(layers, saved):
                layer.stack, layer.capture_next, layer.captured = stack, capture, captured

    def outputs(self, stacks: Sequence[Any]) -> list[np.ndarray]:
        with self._swapped(stacks):
            return _flatten(self.quantizer.quant_model(self.inputs, training=False))

    def metric(self, stacks: Sequence[Any]) -> float:
        with self._swapped(stacks):
            try:
                value = self.eval_fn(self.quantizer.quant_model)
            except NndctError:
                raise
            except Exception as exc:  # the user's code: name it instead of a deep traceback
                raise error("REPORT_EVAL_FN", problem=f"raised {type(exc).__name__}: {exc}") from exc
        value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if value.size != 1 or value.dtype.kind not in "fiu" or not math.isfinite(float(value)):
            raise error("REPORT_EVAL_FN", problem=f"returned {value!r}, not one finite number")
        return float(value)


def keras_report(quantizer: Any, inputs: Any, output_dir: str | Path | None, eval_fn, **options) -> ReportFiles:
    """`TFQuantizer.report`."""
    from nndct_shared.report.lstm_flow import report_lstm_session

    with use_frontend("tf"):
        opts = ReportOptions(**options)
        return report_lstm_session(quantizer.session, KerasLstmHooks(quantizer, inputs, eval_fn),
                                   output_dir if output_dir is not None else quantizer.output_dir, "keras", opts)

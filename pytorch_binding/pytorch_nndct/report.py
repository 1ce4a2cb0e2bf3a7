"""`quantizer.report(...)` of the PyTorch flows: thin adapters that run the user's model for the
neutral report (`nndct_shared.report`).

LSTM flow: the model runs with each `QuantLSTM`'s stack replaced by the report's stand-in. CNN
flow: the converted model runs with its node modules given a test-mode runtime holding only the
tensors of a plan (`optim.layer_data.run_with`), which also records each tensor's value before
and after its quantization. Neither changes the quantizer: calibration statistics, the first
batch kept for the dumps, the runtime's last inputs and the bias-correction samples are as they
were before `report()`.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence

from nndct_shared.messages import NndctError, error
from nndct_shared.report import ReportFiles, ReportOptions

__all__ = ["cnn_report", "lstm_report"]


def _as_args(inputs: Any) -> tuple[Any, ...]:
    if inputs is None:
        raise error("REPORT_ARGUMENT", argument="inputs", problem="is None",
                    hint="Pass the model's input (a tensor, or a tuple of the forward's arguments) for a "
                         "representative batch.")
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def flatten_outputs(value: Any) -> list[np.ndarray]:
    """Every floating-point tensor of a model's output structure, as float64 numpy arrays."""
    if isinstance(value, PackedSequence):
        return flatten_outputs(value.data)
    if isinstance(value, torch.Tensor):
        return [value.detach().to("cpu", torch.float64).numpy()] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [a for v in value.values() for a in flatten_outputs(v)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in flatten_outputs(v)]
    return []


def call_metric(eval_fn: Callable[[Any], Any], model: Any) -> float:
    """eval_fn(model) as a float, with REPORT_EVAL_FN when it fails or returns something else."""
    try:
        value = eval_fn(model)
    except NndctError:
        raise
    except Exception as exc:  # the user's code: name it instead of a deep traceback
        raise error("REPORT_EVAL_FN", problem=f"raised {type(exc).__name__}: {exc}") from exc
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not math.isfinite(float(value)):
        raise error("REPORT_EVAL_FN", problem=f"returned {value!r} ({type(value).__name__}), not a finite number")
    return float(value)


def _options(**kwargs) -> ReportOptions:
    options = ReportOptions(**kwargs)
    options.check()
    return options


# ----------------------------------------------------------------------------------- LSTM flow
class TorchLstmHooks:
    """`nndct_shared.report.lstm_flow.LstmModelHooks` of an `LstmTorchQuantizer`."""

    def __init__(self, quantizer: Any, inputs: Any, eval_fn: Callable[[Any], Any] | None) -> None:
        self.quantizer, self.args, self.eval_fn = quantizer, _as_args(inputs), eval_fn
        self.has_metric = eval_fn is not None

    @contextlib.contextmanager
    def _swapped(self, stacks: Sequence[Any]) -> Iterator[None]:
        layers = self.quantizer.quant_lstms
        saved = [(m.stack, m.first_batch) for m in layers]
        try:
            for m, s in zip(layers, stacks):
                m.stack = s
            yield
        finally:
            for m, (s, first) in zip(layers, saved):
                m.stack, m.first_batch = s, first

    def outputs(self, stacks: Sequence[Any]) -> list[np.ndarray]:
        with self._swapped(stacks), torch.no_grad():
            return flatten_outputs(self.quantizer.quant_model(*self.args))

    def metric(self, stacks: Sequence[Any]) -> float:
        with self._swapped(stacks), torch.no_grad():
            return call_metric(self.eval_fn, self.quantizer.quant_model)


def lstm_report(quantizer: Any, inputs: Any, output_dir: str | Path | None, eval_fn, **options) -> ReportFiles:
    """`LstmTorchQuantizer.report`."""
    from nndct_shared.report.lstm_flow import report_lstm_session

    return report_lstm_session(quantizer.session, TorchLstmHooks(quantizer, inputs, eval_fn),
                               output_dir if output_dir is not None else quantizer.output_dir, "pytorch",
                               _options(**options))

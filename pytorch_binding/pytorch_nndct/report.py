"""`quantizer.report(...)` of the PyTorch flows: thin adapters that run the user's model for the
neutral report (`nndct_shared.report`).

Recurrent flow: the model runs with each `QuantLSTM`'s / `QuantGRU`'s stack replaced by the
report's stand-in. CNN flow: the converted model runs with its node modules given a test-mode
runtime holding only the tensors of a plan (`optim.layer_data.run_with`), which also records
each tensor's value before and after its quantization. Neither changes the quantizer: calibration statistics, the first
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
from nndct_shared.quant_mode import RunMode
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
        layers = self.quantizer.quant_rnns
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


# ----------------------------------------------------------------------------------- CNN flow
class CnnPlanRunner:
    """`nndct_shared.report.sensitivity.PlanRunner` of a CNN-flow `TorchQuantizer`."""

    def __init__(self, quantizer: Any, inputs: Any, eval_fn: Callable[[Any], Any] | None, high_bit_width: int) -> None:
        from nndct_shared.calibration import FloatQParams
        from nndct_shared.report.quant import FLOOR, NEAREST, QuantTensor, TensorQuant

        from nndct_shared.cnn.settings import max_fix_pos_for

        self.quantizer, self.args, self.eval_fn = quantizer, _as_args(inputs), eval_fn
        self.has_metric = eval_fn is not None
        runtime = quantizer.runtime
        if quantizer.quant_mode == RunMode.CALIB:
            if runtime.forwards == 0:
                raise error("REPORT_NOT_CALIBRATED", what="quant_model has not run on calibration data yet")
            fix_pos = runtime.calibrated()
        else:
            fix_pos = runtime.fix_pos
        planned = {**quantizer.plan.params, **quantizer.plan.outputs}
        self.settings = {}
        self.tensors: list[QuantTensor] = []
        for name, p in planned.items():
            s, fp = quantizer.settings.get(name), fix_pos.get(name)
            if s is None or fp is None:
                continue
            rounding = FLOOR if s.round_method == "floor" else NEAREST
            if isinstance(fp, FloatQParams):
                spec = s.float_spec
                q = TensorQuant(s.bit_width, scale=float(fp.scale), zero_point=int(fp.zero_point), qmin=spec.qmin,
                                qmax=spec.qmax, rounding=rounding, method=s.round_method)
            else:
                q = TensorQuant(s.bit_width, tuple(int(f) for f in fp) if isinstance(fp, tuple) else int(fp),
                                rounding=rounding, axis=s.axis, method=s.round_method)
            self.settings[name] = s
            self.tensors.append(QuantTensor(name, p.node, p.kind, q, q.widened(high_bit_width,
                                                                               max_fix_pos_for(high_bit_width)), name))
        self._float_qparams = FloatQParams

    def _runtime(self, plan: Any, sink: Callable[[str, torch.Tensor, torch.Tensor], None] | None = None):
        from dataclasses import replace

        from .quantization.runtime import QuantRuntime

        settings, fix_pos = {}, {}
        for name, q in plan.items():
            settings[name] = replace(self.settings[name], bit_width=q.bit_width)
            fix_pos[name] = self._float_qparams(q.scale, q.zero_point) if q.scale is not None else q.fix_pos

        class ProbeRuntime(QuantRuntime):
            quantize_outputs_in_place = False  # the sink compares y with its quantized value

            def output(self, name, y):
                out = super().output(name, y)
                if sink is not None:
                    sink(name, y, out)
                return out

            def param(self, name, value):
                out = super().param(name, value)
                if sink is not None:
                    sink(name, value, out)
                return out

        runtime = ProbeRuntime(settings, RunMode.TEST)
        runtime.load(fix_pos)
        return runtime

    @contextlib.contextmanager
    def _running(self, plan: Any, sink=None) -> Iterator[Any]:
        """The converted model with `plan`'s runtime; the quantizer's own state is put back."""
        from .optim.layer_data import run_with

        q = self.quantizer
        runtime = q.runtime
        saved = (runtime.forwards, runtime.last_inputs, runtime.last_batch_size)
        recorder = getattr(q.post_training, "_recorder", None)
        kept = (len(recorder.batches), recorder.count) if recorder is not None else None
        try:
            with run_with(q.quant_model, self._runtime(plan, sink)), torch.no_grad():
                yield q.quant_model
        finally:
            runtime.forwards, runtime.last_inputs, runtime.last_batch_size = saved
            if kept is not None:
                del recorder.batches[kept[0]:]
                recorder.count = kept[1]

    def outputs(self, plan: Any) -> list[np.ndarray]:
        with self._running(plan) as model:
            return flatten_outputs(model(*self.args))

    def metric(self, plan: Any) -> float:
        with self._running(plan) as model:
            return call_metric(self.eval_fn, model)

    def record(self, plan: Any) -> tuple[list[np.ndarray], dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
        """Outputs, and every report tensor's (before, after quantization) values of each call."""
        names = {t.name for t in self.tensors}
        seen: dict[str, list] = {}

        def sink(name, before, after):
            if name in names:
                seen.setdefault(name, []).append((before.detach().to("cpu", torch.float64).numpy(),
                                                  after.detach().to("cpu", torch.float64).numpy()))

        with self._running(plan, sink) as model:
            return flatten_outputs(model(*self.args)), seen


def cnn_report(quantizer: Any, inputs: Any, output_dir: str | Path | None, eval_fn, **options) -> ReportFiles:
    """`TorchQuantizer.report` (the CNN flow)."""
    from nndct_shared.report.build import build_report
    from nndct_shared.report.cnn_config import cnn_config
    from nndct_shared.report.metrics import TensorStats
    from nndct_shared.report.write import write_report

    opts = _options(**options)
    runner = CnnPlanRunner(quantizer, inputs, eval_fn, opts.high_bit_width)
    full = {t.name: t.quant for t in runner.tensors}
    quantized, q_values = runner.record(full)
    reference, f_values = runner.record({})
    stats = {}
    for t in runner.tensors:
        stats[t.name] = TensorStats()
        for (ref, _), (pre, post) in zip(f_values.get(t.name, []), q_values.get(t.name, [])):
            stats[t.name].add(ref, pre, post, t.quant)
    notes = []
    if quantizer.target is not None:
        notes.append(f"target={quantizer.target} forces 8-bit DPU tensors: the suggested config describes a model "
                     "for the CPU, not for that DPU")
    layer_types = dict(quantizer.captured.layer_types)
    doc = build_report(flow="cnn", framework="pytorch", mode=quantizer.quant_mode, runner=runner,
                       tensors=runner.tensors, stats=stats, reference=reference, quantized=quantized, options=opts,
                       notes=notes, suggestion_config=lambda keep: cnn_config(quantizer.config, runner.tensors, keep,
                                                                              layer_types, opts.high_bit_width))
    return write_report(doc, output_dir if output_dir is not None else quantizer.output_dir)

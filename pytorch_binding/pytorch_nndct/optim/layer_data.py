"""Layer-wise data of a converted CNN model, shared by fast finetune and bias correction.

Both algorithms need, for one weighted node at a time, its output in the float model and its
input in the quantized model (with the fix positions of a finished calibration). Keeping every
layer's activations for a whole calibration set would need memory proportional to depth;
instead the model inputs of a bounded number of calibration samples are recorded once
(`InputRecorder`), and the layers' data are computed from them: in one pass over all layers
(`layer_walk.LayerWalk`), or, where that would not fit in memory, by recomputing the model up to
each layer (`layer_io`, `float_model`).

The converted model's modules (`pytorch_nndct.nn.cnn_modules.NodeModule`) ask their
`quant_runtime` for quantized params and outputs; running with `quant_runtime = None` is the float
model, and running with a test-mode runtime loaded with fixed fix positions is the quantized model
without touching the calibration observers.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from nndct_shared.quant_mode import RunMode

from ..nn.cnn_modules import Conv1d, Conv2d, ConvTranspose2d, Linear, NodeModule
from ..quantization.fake_quant import fake_quantize
from ..quantization.runtime import QuantRuntime
from nndct_shared.cnn.settings import TensorSettings, make_observer

__all__ = ["InputRecorder", "WEIGHTED_MODULES", "fixed_runtime", "float_model", "layer_io", "module_with", "node_modules",
           "record_inputs", "refresh_fix_pos", "reset_runtime", "run_with", "snapshot_params", "ste_fix",
           "weighted_modules"]

#: Module classes whose weight (and bias) the algorithms adjust.
WEIGHTED_MODULES = (Conv1d, Conv2d, ConvTranspose2d, Linear)

Batch = tuple[torch.Tensor, ...]


class _Stop(Exception):
    """Raised by a forward hook once the wanted layer ran: the rest of the model is not needed."""


def node_modules(model: nn.Module) -> list[NodeModule]:
    """The converted model's node modules in module order (module_<i>: topological order)."""
    return [m for m in model.children() if isinstance(m, NodeModule)]


def weighted_modules(model: nn.Module) -> list[NodeModule]:
    """The weighted node modules (conv/linear) in topological order."""
    return [m for m in node_modules(model) if isinstance(m, WEIGHTED_MODULES)]


class InputRecorder:
    """Keeps the tensors passed to a model (detached), up to `max_samples` samples (batch dim
    0), while attached as a forward pre-hook; later batches still run but are not kept, and
    neither are batches with NaN/inf values (calibration leaves them out too).

    Why bounded: the algorithms recompute every layer's data from these inputs, so memory stays
    proportional to `max_samples`, not to the calibration set or the model's depth.
    """

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.batches: list[Batch] = []
        self.count = 0
        self._handle: Any = None

    def __call__(self, _module: nn.Module, args: tuple[Any, ...]) -> None:
        tensors = tuple(a.detach() for a in args if isinstance(a, torch.Tensor))
        if not tensors or self.count >= self.max_samples:
            return
        if any(t.is_floating_point() and not bool(torch.isfinite(t).all()) for t in tensors):
            return  # NaN/inf would poison every mean computed from the kept inputs
        room = self.max_samples - self.count
        tensors = tuple(t[:room] if t.dim() else t for t in tensors)
        self.batches.append(tensors)
        self.count += int(tensors[0].shape[0]) if tensors[0].dim() else 1

    def attach(self, model: nn.Module) -> "InputRecorder":
        self._handle = model.register_forward_pre_hook(self)
        return self

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def record_inputs(model: nn.Module, run_fn: Callable[..., Any], run_args: Sequence[Any],
                  max_samples: int) -> list[Batch]:
    """Call `run_fn(*run_args)` and return the model inputs of its first `max_samples` samples."""
    recorder = InputRecorder(max_samples).attach(model)
    try:
        run_fn(*run_args)
    finally:
        recorder.detach()
    return recorder.batches


@contextlib.contextmanager
def module_with(module: NodeModule, runtime: Any) -> Iterator[NodeModule]:
    """Temporarily give one node module `runtime` (None: float), e.g. to run it alone."""
    saved = module.quant_runtime
    module.quant_runtime = runtime
    try:
        yield module
    finally:
        module.quant_runtime = saved


@contextlib.contextmanager
def run_with(model: nn.Module, runtime: Any) -> Iterator[None]:
    """Temporarily give every node module `runtime` (None: the float model)."""
    modules = node_modules(model)
    saved = [m.quant_runtime for m in modules]
    try:
        for m in modules:
            m.quant_runtime = runtime
        yield
    finally:
        for m, r in zip(modules, saved):
            m.quant_runtime = r


def snapshot_params(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """{node name: {role: copy}} of every weighted module's weight and bias (the float model)."""
    return {m.node_name: {r: getattr(m, r).detach().clone() for r in ("weight", "bias")
                          if getattr(m, r, None) is not None} for m in weighted_modules(model)}


@contextlib.contextmanager
def float_model(model: nn.Module, originals: Mapping[str, Mapping[str, torch.Tensor]]) -> Iterator[None]:
    """Run `model` as the original float model: no runtime, and the weights/biases of
    `originals` swapped in (the algorithms change the params in place as they go)."""
    current = snapshot_params(model)
    try:
        with torch.no_grad():
            for m in weighted_modules(model):
                for role, value in originals.get(m.node_name, {}).items():
                    getattr(m, role).copy_(value)
        with run_with(model, None):
            yield
    finally:
        with torch.no_grad():
            for m in weighted_modules(model):
                for role, value in current.get(m.node_name, {}).items():
                    getattr(m, role).copy_(value)


def fixed_runtime(settings: Mapping[str, TensorSettings], fix_pos: Mapping[str, Any]) -> QuantRuntime:
    """A test-mode runtime with these fix positions; tensors without one stay float."""
    known = {name: s for name, s in settings.items() if fix_pos.get(name) is not None}
    runtime = QuantRuntime(known, RunMode.TEST)
    runtime.load({name: fix_pos[name] for name in known})
    return runtime


def reset_runtime(runtime: QuantRuntime) -> None:
    """Forget all calibration state in place (the model's hooks keep pointing at `runtime`)."""
    QuantRuntime.__init__(runtime, runtime.settings, runtime.mode, runtime.feedback)


def layer_io(model: nn.Module, module: NodeModule, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, output) of `module` when `model` runs `batch`; the forward stops at `module`."""
    seen: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        seen["x"], seen["y"] = args[0].detach(), output.detach()
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(*batch)
    except _Stop:
        pass
    finally:
        handle.remove()
    if "x" not in seen:
        raise RuntimeError(f"node '{module.node_name}' did not run in the model's forward")
    return seen["x"], seen["y"]


def ste_fix(s: TensorSettings, value: torch.Tensor, fix_pos: Any) -> torch.Tensor:
    """Fake-quantize `value` with a straight-through gradient (identity backward)."""
    if fix_pos is None:
        return value
    return value + (fake_quantize(s, value.detach(), fix_pos) - value).detach()


def refresh_fix_pos(s: TensorSettings, value: torch.Tensor) -> Any:
    """The fix position calibration would give this param now (the flow's param observer)."""
    observer = make_observer(s)
    observer.observe(value.detach().to("cpu", torch.float32).numpy())
    return observer.fix_pos

"""Fast finetune (AdaQuant, Hubara et al. 2020): layer-wise finetuning of weights on unlabeled data.

Why: plain calibration rounds every weight to its nearest grid point independently; for layers
with few weights per output (depthwise convs) or at low bit widths the rounding errors do not
average out. AdaQuant instead chooses the weights (and bias) of each layer so that the layer,
fed with the *quantized* model's input and using the *quantized* weights, reproduces the *float*
model's output of that layer, minimising the mean squared error with Adam through a
straight-through fake quantization of the weights. Layers are done in topological order, so
each one also compensates the errors of the layers before it.

Flow of `fast_finetune(quantizer, run_fn, run_args)` (quant_mode 'calib', as the guide says):

1. calibrate: `run_fn(*run_args)` forwards quant_model; the model inputs of at most
   `max_samples` samples are recorded;
2. one pass over the model, node by node, float and quantized side by side
   (`layer_walk.LayerWalk`): at each weighted node (conv/linear) the layer's quantized inputs
   (with every layer before it already finetuned) and float outputs give the layer's loss as a
   quadratic form (`layer_gram.LayerGram`), and Adam minimises it with the exact gradient over
   all samples; the weight/bias fix positions are re-derived (the flow's param calibration)
   every `refresh_every` steps and at the end; the best state seen is kept (the start
   included), so a layer never ends worse than plain calibration left it;
3. re-calibrate: the calibration state is reset and `run_fn(*run_args)` runs again, so the
   activation fix positions match the new weights (export_quant_config() can follow directly);
4. the finetuned params are written to `output_dir/param.pth` (atomically), which
   `load_ft_param()` reads in quant_mode 'test'.

Why the quadratic form (an algorithmic change from minibatch Adam, which drew 64 random samples
per step and ran the layer forward and backward on them: 300 steps of that cost ~200 float
forwards per image at 256 images): the layer's output is linear in its parameters, so the
mean squared error over all samples is exactly tr(D G D^T) - 2 tr(D E) + r (see
`layer_gram`); gathering G costs about K/C_out forwards of the layer once, and every step
then costs O(C_out K^2) whatever the number of samples. Each step takes the exact gradient of
the very objective AdaQuant minimises (the full-data MSE the best state is judged by) instead
of a 64-sample estimate of it, and is deterministic; the tests check the loss against running
the layer and that finetuning still recovers the accuracy plain 4-bit calibration loses.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from nndct_shared.calibration import FloatQParams
from nndct_shared.messages import error, note, warn
from nndct_shared.quant_mode import RunMode

from ..distributed import refuse_fast_finetune
from ..nn.cnn_modules import NodeModule
from nndct_shared.cnn.settings import TensorSettings
from .layer_data import (
    WEIGHTED_MODULES,
    fixed_runtime,
    record_inputs,
    refresh_fix_pos,
    reset_runtime,
    ste_fix,
    weighted_modules,
)
from .layer_gram import LayerGram, layer_parameters
from .layer_walk import LayerWalk
from .param_file import collect_params, load_params, save_params, sync_graph

__all__ = ["FT_PARAM_FILE", "FinetuneOptions", "LayerResult", "fast_finetune", "load_ft_param"]

#: The finetuned-parameter file in output_dir (the reference's name).
FT_PARAM_FILE = "param.pth"


@dataclass(frozen=True)
class FinetuneOptions:
    """Knobs of the layer-wise optimisation (defaults sized for small calibration sets).

    `lr_lsb` is Adam's learning rate in units of each param's quantization step (2**-fix_pos at
    the start): Adam moves a param by about lr per step, so this bounds how many grid points a
    weight can travel, whatever the layer's range or bit width.
    """

    max_samples: int = 1024
    iterations: int = 300
    lr_lsb: float = 0.1
    refresh_every: int = 25


@dataclass(frozen=True)
class LayerResult:
    """Mean squared error of one layer against the float output, before and after."""

    node: str
    mse_before: float
    mse_after: float
    kept: bool


class _SteRuntime:
    """Runtime of the module being optimised: STE-quantized params, float output."""

    def __init__(self, settings: Mapping[str, TensorSettings], fix_pos: dict[str, Any]) -> None:
        self.settings, self.fix_pos = settings, fix_pos

    def param(self, name: str, value: torch.Tensor) -> torch.Tensor:
        s = self.settings.get(name)
        return value if s is None else ste_fix(s, value, self.fix_pos.get(name))

    def output(self, name: str, y: torch.Tensor) -> torch.Tensor:
        return y


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the optimisation steps on one thread: each works on tensors of a few thousand values
    (the layer's params and its Gram matrix), where synchronising threads costs more than it
    saves (tens of times more on a busy machine); gathering the Gram matrices keeps all threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _loss(module: NodeModule, gram: LayerGram, roles: list[str]) -> torch.Tensor:
    """The layer's mean squared error with its params as the module quantizes them now."""
    values = {r: module.param(r) for r in roles}
    return gram.loss(layer_parameters(module, values["weight"], values.get("bias")))


def _refresh(module: NodeModule, settings: Mapping[str, TensorSettings], fix_pos: dict[str, Any]) -> None:
    for role, name in module.param_names.items():
        value = getattr(module, role, None)
        if name in settings and value is not None and fix_pos.get(name) is not None:
            fix_pos[name] = refresh_fix_pos(settings[name], value)


def _step_size(fix_pos: Any) -> float:
    """The quantization step of a param (the coarsest channel's for per-channel results)."""
    if isinstance(fix_pos, tuple):
        return max(_step_size(v) for v in fix_pos)
    if isinstance(fix_pos, FloatQParams):
        return float(fix_pos.scale)
    if fix_pos is None:
        return 2.0 ** -8
    return 2.0 ** -int(fix_pos)


def _snapshot(params: list[torch.Tensor], module: NodeModule, fix_pos: dict[str, Any]) -> tuple[list, dict]:
    return [p.detach().clone() for p in params], {n: fix_pos.get(n) for n in module.param_names.values()}


def _restore(params: list[torch.Tensor], fix_pos: dict[str, Any], snapshot: tuple[list, dict]) -> None:
    with torch.no_grad():
        for p, old in zip(params, snapshot[0]):
            p.copy_(old)
    fix_pos.update(snapshot[1])


def adaquant_layer(module: NodeModule, gram: LayerGram, settings: Mapping[str, TensorSettings],
                   fix_pos: dict[str, Any], options: FinetuneOptions) -> LayerResult:
    """Optimise `module`'s weight and bias in place; updates `fix_pos` of its params.

    The error (`gram`, all samples) is measured at every fix-position refresh and the best state
    seen (the start included) is kept, so a layer never ends worse than plain calibration left it.
    """
    roles = [r for r in ("weight", "bias") if getattr(module, r, None) is not None]
    params = [getattr(module, r) for r in roles]
    original_runtime = module.quant_runtime
    module.quant_runtime = _SteRuntime(settings, fix_pos)
    try:
        with _one_thread():
            before, best = _optimise(module, gram, roles, params, settings, fix_pos, options)
    finally:
        for p in params:
            p.requires_grad_(False)
        module.quant_runtime = original_runtime
    return LayerResult(module.node_name, before, best, best < before)


def _optimise(module: NodeModule, gram: LayerGram, roles: list[str], params: list[torch.Tensor],
              settings: Mapping[str, TensorSettings], fix_pos: dict[str, Any],
              options: FinetuneOptions) -> tuple[float, float]:
    """Adam on the layer's loss; leaves the best state in place; (loss before, best loss)."""
    with torch.no_grad():
        before = best = float(_loss(module, gram, roles))
    best_state = _snapshot(params, module, fix_pos)
    groups = [{"params": [p], "lr": options.lr_lsb * _step_size(fix_pos.get(module.param_names.get(r)))}
              for r, p in zip(roles, params)]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(groups)
    with torch.enable_grad():
        for step in range(options.iterations):
            optimizer.zero_grad(set_to_none=True)
            _loss(module, gram, roles).backward()
            optimizer.step()
            if (step + 1) % options.refresh_every == 0 or step + 1 == options.iterations:
                _refresh(module, settings, fix_pos)
                with torch.no_grad():
                    current = float(_loss(module, gram, roles))
                if current < best:
                    best, best_state = current, _snapshot(params, module, fix_pos)
    _restore(params, fix_pos, best_state)
    return before, best


def fast_finetune(quantizer: Any, run_fn: Callable[..., Any], run_args: Sequence[Any],
                  options: FinetuneOptions = FinetuneOptions()) -> list[LayerResult]:
    """AdaQuant on `quantizer.quant_model` (see the module docstring); returns per-layer errors.

    `run_fn(*run_args)` must forward `quantizer.quant_model` on the (unlabeled) finetuning data,
    as in the guide: `quantizer.fast_finetune(evaluate, (quant_model, ft_loader, loss_fn))`.
    In quant_mode 'test' it does nothing but warn (FINETUNE_IGNORED).
    """
    if quantizer.quant_mode != RunMode.CALIB:
        warn("FINETUNE_IGNORED", mode=quantizer.quant_mode.value)
        return []
    refuse_fast_finetune()  # one process only (DIST_FAST_FINETUNE under torch.distributed)
    model, runtime = quantizer.quant_model, quantizer.runtime
    reset_runtime(runtime)
    batches = record_inputs(model, run_fn, tuple(run_args), options.max_samples)
    if not batches or runtime.forwards == 0:
        raise error("NO_CALIBRATION", action="fast_finetune()")
    fix_pos = dict(runtime.calibrated())
    results: list[LayerResult] = []
    modules = weighted_modules(model)
    quant_runtime = fixed_runtime(runtime.settings, fix_pos)

    def visit(node: Any, module: Any, y_float: list, x_quant: list, quantize: Any) -> list | None:
        if not isinstance(module, WEIGHTED_MODULES):
            return None
        gram = LayerGram.gather(module, [x[0] for x in x_quant], y_float)
        results.append(adaquant_layer(module, gram, runtime.settings, fix_pos, options))
        del gram
        for name in module.param_names.values():
            if name in quant_runtime.fix_pos:
                quant_runtime.fix_pos[name] = fix_pos[name]
        return quantize()

    try:
        LayerWalk(model, quantizer.graph, batches).walk(quant_runtime, visit, desc="Fast finetuning")
    except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
        warn("MEMORY_SHORTAGE", detail=str(exc))
        return results
    sync_graph(quantizer.graph, modules)
    quantizer.post_training.mark_finetuned()  # bias correction would undo part of the fit
    reset_runtime(runtime)
    run_fn(*run_args)  # re-calibration with the finetuned weights
    path = save_params(collect_params(modules), Path(quantizer.output_dir) / FT_PARAM_FILE)
    improved = sum(r.kept for r in results)
    note(f"=>Fast finetune: {improved} of {len(results)} layers improved; parameters saved to '{path}'")
    return results


def load_ft_param(quantizer: Any) -> list[str]:
    """Load `output_dir/param.pth` into quant_model and the graph (FAST_FINETUNE if missing)."""
    names = load_params(quantizer.quant_model, quantizer.graph, Path(quantizer.output_dir) / FT_PARAM_FILE)
    note(f"=>Loaded fast-finetuned parameters from '{Path(quantizer.output_dir) / FT_PARAM_FILE}'")
    return names

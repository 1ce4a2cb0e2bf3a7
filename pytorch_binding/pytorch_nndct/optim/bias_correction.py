"""Empirical bias correction of a calibrated CNN model (config key `include_bias_corr`).

Why: quantization shifts the mean of each layer's outputs (see
`nndct_shared.algorithms.bias_correction`); the shift acts like a wrong bias and accumulates
through the network. After calibration, for each weighted node with a bias in topological
order, the per-channel mean of (quantized output - float output) is measured on the calibration
samples, with the quantized model using the final fix positions and the corrections already
made upstream, and subtracted from the bias. All layers are done in one pass over the model
(`layer_walk.LayerWalk`, about three forwards of the recorded samples). The bias fix position is then re-derived, and the
runtime's bias observer replaced, so quant_info.json records the fix position of the corrected
bias. The corrected biases go to `output_dir/bias_corr.pth` for test mode (the flow stages that
file together with quant_info.json, `ptq_steps.py`).
Nodes without a bias are left alone (adding a bias would change the exported graph).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nndct_shared.algorithms import ChannelMeanError, corrected_bias
from nndct_shared.messages import error
from nndct_shared.progress import progress

from ..quantization.settings import make_observer
from .layer_data import (WEIGHTED_MODULES, Batch, fixed_runtime, float_model, layer_io, run_with,
                         snapshot_params, weighted_modules)
from .layer_walk import LayerWalk, walk_fits
from .param_file import load_params, params_bytes, save_params, sync_graph

__all__ = ["BIAS_CORR_FILE", "BiasCorrection", "bias_corr_bytes", "correct_bias", "load_bias_corr",
           "mean_output_error", "save_bias_corr"]

#: The corrected-bias file in output_dir (the reference's name).
BIAS_CORR_FILE = "bias_corr.pth"


@dataclass(frozen=True)
class BiasCorrection:
    """Per-channel mean output error of one node, before and after its correction (None when
    `correct_bias(..., measure_after=False)`: the flow does not need it)."""

    node: str
    error_before: np.ndarray
    error_after: np.ndarray | None


def mean_output_error(model: torch.nn.Module, module: Any, batches: Sequence[Batch],
                      quant_runtime: Any, originals: Any) -> np.ndarray:
    """Per-channel mean of (quantized - float) output of `module` over `batches` (channel axis 1);
    the float side runs with the `originals` params (`layer_data.snapshot_params`)."""
    acc = ChannelMeanError(channel_axis=1)
    for batch in batches:
        with float_model(model, originals):
            _, y_float = layer_io(model, module, batch)
        with run_with(model, quant_runtime):
            _, y_quant = layer_io(model, module, batch)
        acc.update(y_quant.to("cpu", torch.float64).numpy(), y_float.to("cpu", torch.float64).numpy())
    return acc.mean()


def _corrects(module: Any, settings: Any) -> bool:
    """Whether bias correction changes `module`: a weighted node with a bias whose weight is
    quantized (a layer that stays float has no quantization error of its own to correct)."""
    return (isinstance(module, WEIGHTED_MODULES) and module.bias is not None
            and "bias" in module.param_names and module.param_names.get("weight") in settings)


def _channel_rows(y: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Each batch's outputs one row per channel, in their float32 (a multi-threaded torch copy)."""
    return [t.detach().to("cpu").transpose(0, 1).reshape(t.shape[1], -1).contiguous().numpy() for t in y]


def _channel_error(y_quant: Sequence[torch.Tensor], float_rows: Sequence[np.ndarray]) -> np.ndarray:
    """Per-channel mean of (quantized - float) over the batches, bit for bit as
    `mean_output_error`: the differences are taken in float64 (exact) from the row layout, and
    `ChannelMeanError` sums the rows exactly as its `update` does."""
    acc = ChannelMeanError(channel_axis=1)
    for q, f in zip(_channel_rows(y_quant), float_rows):
        acc.update_rows(np.subtract(q, f, dtype=np.float64))
    return acc.mean()


def _new_bias(module: Any, error_before: np.ndarray, runtime: Any, fix_pos: dict[str, Any]) -> None:
    """Subtract the error from the bias and re-derive the bias's fix position (in `fix_pos` and
    in the calibration runtime's observer, which export_quant_config reads)."""
    with torch.no_grad():
        new_bias = corrected_bias(module.bias.detach().cpu().numpy(), error_before)
        module.bias.copy_(torch.from_numpy(new_bias).to(module.bias.device))
    name = module.param_names["bias"]
    settings = runtime.settings.get(name)
    if settings is not None and fix_pos.get(name) is not None:
        observer = make_observer(settings)
        observer.observe(new_bias)
        runtime.observers[name] = observer
        fix_pos[name] = observer.fix_pos


def correct_bias(quantizer: Any, batches: Sequence[Batch], measure_after: bool = True) -> list[BiasCorrection]:
    """Correct the biases of `quantizer.quant_model` after calibration (see the module docstring).

    `batches` are model inputs of calibration samples (e.g. from `layer_data.record_inputs`).
    The layers are visited in one `LayerWalk` (float and quantized side by side); a walk that
    would not fit in memory (`walk_fits`) recomputes the model up to each layer instead, which
    gives the same results. `measure_after=False` skips measuring the error left after each
    correction (a report only). Nothing is written: `bias_corr_bytes` gives the file's content,
    `save_bias_corr` writes it.
    """
    runtime = quantizer.runtime
    fix_pos = dict(runtime.calibrated())  # first: it names NaN/inf calibration data
    if runtime.forwards == 0 or not batches:
        raise error("NO_CALIBRATION", action="bias correction")
    model = quantizer.quant_model
    samples = sum(int(b[0].shape[0]) if b[0].dim() else 1 for b in batches)
    if not walk_fits(quantizer.graph, samples):
        return _correct_bias_by_recomputing(quantizer, batches, fix_pos, measure_after)
    results: list[BiasCorrection] = []
    corrected = []
    quant_runtime = fixed_runtime(runtime.settings, fix_pos)

    def visit(node: Any, module: Any, y_float: list, x_quant: list, quantize: Any) -> list | None:
        if not _corrects(module, runtime.settings):
            return None
        float_rows = _channel_rows(y_float)
        before = _channel_error(quantize(), float_rows)
        _new_bias(module, before, runtime, fix_pos)
        bias = module.param_names["bias"]
        if bias in quant_runtime.fix_pos:
            quant_runtime.fix_pos[bias] = fix_pos[bias]
        y_quant = quantize()
        after = _channel_error(y_quant, float_rows) if measure_after else None
        results.append(BiasCorrection(module.node_name, before, after))
        corrected.append(module)
        return y_quant

    LayerWalk(model, quantizer.graph, batches).walk(quant_runtime, visit, desc="Bias correction")
    sync_graph(quantizer.graph, corrected)
    return results


def _correct_bias_by_recomputing(quantizer: Any, batches: Sequence[Batch], fix_pos: dict[str, Any],
                                 measure_after: bool = True) -> list[BiasCorrection]:
    """The same correction, recomputing the model from its inputs up to each layer (memory: one
    batch at a time; time: about one forward per layer)."""
    runtime, model = quantizer.runtime, quantizer.quant_model
    results: list[BiasCorrection] = []
    corrected = []
    originals = snapshot_params(model)
    for module in progress(weighted_modules(model), desc="Bias correction", unit="layer"):
        if not _corrects(module, runtime.settings):
            continue
        before = mean_output_error(model, module, batches, fixed_runtime(runtime.settings, fix_pos), originals)
        _new_bias(module, before, runtime, fix_pos)
        after = (mean_output_error(model, module, batches, fixed_runtime(runtime.settings, fix_pos), originals)
                 if measure_after else None)
        results.append(BiasCorrection(module.node_name, before, after))
        corrected.append(module)
    sync_graph(quantizer.graph, corrected)
    return results


def _corrected_biases(quantizer: Any, results: Sequence[BiasCorrection]) -> dict[str, torch.Tensor]:
    nodes = {r.node for r in results}
    modules = [m for m in weighted_modules(quantizer.quant_model) if m.node_name in nodes]
    return {m.param_names["bias"]: m.bias.detach().to("cpu").clone() for m in modules}


def bias_corr_bytes(quantizer: Any, results: Sequence[BiasCorrection]) -> bytes:
    """Content of `bias_corr.pth`: {bias tensor name: corrected bias} of the corrected nodes."""
    return params_bytes(_corrected_biases(quantizer, results))


def save_bias_corr(quantizer: Any, results: Sequence[BiasCorrection]) -> Path:
    """Write `output_dir/bias_corr.pth` atomically (on its own; the flow stages it with
    quant_info.json instead)."""
    return save_params(_corrected_biases(quantizer, results), Path(quantizer.output_dir) / BIAS_CORR_FILE)


def load_bias_corr(quantizer: Any) -> list[str]:
    """Test mode: load `output_dir/bias_corr.pth` into quant_model and the graph (a missing file is
    a missing calibration result: NO_CALIB_RESULT)."""
    path = Path(quantizer.output_dir) / BIAS_CORR_FILE
    return load_params(quantizer.quant_model, quantizer.graph, path, missing="NO_CALIB_RESULT")

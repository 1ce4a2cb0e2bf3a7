"""Empirical bias correction of a calibrated CNN model (config key `include_bias_corr`).

Why: quantization shifts the mean of each layer's outputs (see
`nndct_shared.algorithms.bias_correction`); the shift acts like a wrong bias and accumulates
through the network. After calibration, for each weighted node with a bias in topological
order, the per-channel mean of (quantized output - float output) is measured on the calibration
samples, with the quantized model using the final fix positions and the corrections already
made upstream, and subtracted from the bias. The bias fix position is then re-derived, and the
runtime's bias observer replaced, so quant_info.json records the fix position of the corrected
bias. The corrected biases go to `output_dir/bias_corr.pth` for test mode (the flow stages that
file together with quant_info.json, `ptq_steps.py`).
Nodes without a bias are left alone (adding a bias would change the exported graph).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nndct_shared.algorithms import BiasCorrection, ChannelMeanError, corrected_bias
from nndct_shared.messages import error
from nndct_shared.progress import progress

from nndct_shared.cnn.settings import make_observer
from .layer_data import Batch, fixed_runtime, float_model, layer_io, run_with, snapshot_params, weighted_modules
from .param_file import load_params, params_bytes, save_params, sync_graph

__all__ = ["BIAS_CORR_FILE", "BiasCorrection", "bias_corr_bytes", "correct_bias", "load_bias_corr",
           "mean_output_error", "save_bias_corr"]

#: The corrected-bias file in output_dir (the reference's name).
BIAS_CORR_FILE = "bias_corr.pth"


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


def correct_bias(quantizer: Any, batches: Sequence[Batch]) -> list[BiasCorrection]:
    """Correct the biases of `quantizer.quant_model` after calibration (see the module docstring).

    `batches` are model inputs of calibration samples (e.g. from `layer_data.record_inputs`).
    Nothing is written: `bias_corr_bytes` gives the file's content, `save_bias_corr` writes it.
    """
    runtime = quantizer.runtime
    if runtime.forwards == 0 or not batches:
        raise error("NO_CALIBRATION", action="bias correction")
    model = quantizer.quant_model
    fix_pos = dict(runtime.calibrated())
    results: list[BiasCorrection] = []
    corrected = []
    originals = snapshot_params(model)
    planned = set(quantizer.session.bias_correction_nodes())
    for module in progress(weighted_modules(model), desc="Bias correction", unit="layer"):
        if module.node_name not in planned or module.bias is None:
            continue
        before = mean_output_error(model, module, batches, fixed_runtime(runtime.settings, fix_pos), originals)
        with torch.no_grad():
            new_bias = corrected_bias(module.bias.detach().cpu().numpy(), before)
            module.bias.copy_(torch.from_numpy(new_bias).to(module.bias.device))
        name = module.param_names["bias"]
        settings = runtime.settings.get(name)
        if settings is not None and fix_pos.get(name) is not None:
            observer = make_observer(settings)
            observer.observe(new_bias)
            runtime.observers[name] = observer
            fix_pos[name] = observer.fix_pos
        after = mean_output_error(model, module, batches, fixed_runtime(runtime.settings, fix_pos), originals)
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

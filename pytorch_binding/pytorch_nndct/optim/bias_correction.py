"""Empirical bias correction of a calibrated CNN model (config key `include_bias_corr`).

Why: quantization shifts the mean of each layer's outputs (see
`nndct_shared.algorithms.bias_correction`); the shift acts like a wrong bias and accumulates
through the network. After calibration, for each weighted node with a bias in topological
order, the per-channel mean of (quantized output - float output) is measured on the calibration
samples, with the quantized model using the final fix positions and the corrections already
made upstream, and subtracted from the bias. All layers are done in one pass over the model
(`layer_walk.LayerWalk`: a float and a quantized forward of the recorded samples, plus one more
quantized product per corrected layer, unless its quantized sums are provably exact: then the
outputs with the old and with the new bias both come from one bias-free product, bit for bit,
`exact_bias`). The bias fix position is then re-derived, and the runtime's bias observer
replaced, so quant_info.json records the fix position of the corrected bias. The corrections go to `output_dir/bias_corr.pth` for test mode (the flow stages that file
together with quant_info.json, `ptq_steps.py`) in vai_q_pytorch 3.x's layout: {node name: list of
per-output-channel corrections}; the deployed bias is the float bias minus the correction, then
quantized, so a file the reference wrote for the same model loads here and one written here
loads there. (Files of this project's earlier releases, {bias tensor name: corrected bias},
still load.)
Nodes without a bias are left alone (adding a bias would change the exported graph).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from nndct_shared.algorithms import BiasCorrection, ChannelMeanError, corrected_bias
from nndct_shared.export_commit import snapshot
from nndct_shared.messages import error
from nndct_shared.progress import progress

from nndct_shared.cnn.settings import make_observer

from .layer_data import (
    Batch,
    fixed_runtime,
    float_model,
    layer_io,
    node_modules,
    run_with,
    snapshot_params,
    weighted_modules,
)
from .exact_bias import ExactProducts
from .layer_walk import LayerWalk, walk_fits
from .param_file import load_params, params_bytes, parse_param_file, save_params, sync_graph

__all__ = ["BIAS_CORR_FILE", "BiasCorrection", "bias_corr_bytes", "bias_corr_data", "bias_corrections", "correct_bias",
           "load_bias_corr", "mean_output_error", "save_bias_corr"]

#: The corrected-bias file in output_dir (the reference's name).
BIAS_CORR_FILE = "bias_corr.pth"


MergeErrors = Callable[[Sequence[ChannelMeanError]], ChannelMeanError]


def _channel_axis(module: Any) -> int:
    """The output's channel axis: 1, the last axis for a linear layer (input [N, L, features]);
    the registry op's `bias_axis`."""
    return module.bias_axis


def _mean_of_parts(parts: Sequence[ChannelMeanError], axis: int, merge: MergeErrors | None) -> np.ndarray:
    """The mean over per-batch error sums, added in batch order (the bits of one running sum);
    `merge` (under torch.distributed) adds every rank's per-batch sums instead, in rank order,
    so the mean is the one of one process that saw every rank's batches."""
    if merge is not None:
        return merge(parts).mean()
    acc = ChannelMeanError(channel_axis=axis)
    for part in parts:
        acc.merge(part)
    return acc.mean()


def _error_part(y_quant: torch.Tensor, y_float: torch.Tensor, axis: int) -> ChannelMeanError:
    """One batch's per-channel error sums, read from the outputs' own layout (no copy of a
    contiguous CPU output; `ChannelMeanError.update`)."""
    part = ChannelMeanError(channel_axis=axis)
    part.update(_array(y_quant), _array(y_float))
    return part


def _array(y: torch.Tensor) -> np.ndarray:
    y = y.detach().to("cpu")
    return (y if y.dtype in (torch.float32, torch.float64) else y.to(torch.float32)).contiguous().numpy()


def mean_output_error(model: torch.nn.Module, module: Any, batches: Sequence[Batch],
                      quant_runtime: Any, originals: Any, merge: MergeErrors | None = None) -> np.ndarray:
    """Per-channel mean of (quantized - float) output of `module` over `batches` (channel axis 1,
    the last axis for a linear layer, whose input may be [N, L, features]); the float side runs
    with the `originals` params (`layer_data.snapshot_params`). `merge`: see `_mean_of_parts`."""
    axis = _channel_axis(module)
    parts = []
    for batch in batches:
        with float_model(model, originals):
            _, y_float = layer_io(model, module, batch)
        with run_with(model, quant_runtime):
            _, y_quant = layer_io(model, module, batch)
        parts.append(_error_part(y_quant, y_float, axis))
    return _mean_of_parts(parts, axis, merge)


def _channel_error(y_quant: Sequence[torch.Tensor], y_float: Sequence[torch.Tensor], axis: int,
                   merge: MergeErrors | None) -> np.ndarray:
    """`mean_output_error` of outputs already computed (one per batch)."""
    return _mean_of_parts([_error_part(q, f, axis) for q, f in zip(y_quant, y_float)], axis, merge)


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
        runtime.replace_observer(name, observer)
        fix_pos[name] = observer.fix_pos


def correct_bias(quantizer: Any, batches: Sequence[Batch], merge: MergeErrors | None = None,
                 measure_after: bool = True) -> list[BiasCorrection]:
    """Correct the biases of `quantizer.quant_model` after calibration (see the module docstring).

    `batches` are model inputs of calibration samples (e.g. from `layer_data.record_inputs`).
    The layers the session plans (`CnnQuantSession.bias_correction_nodes`) are visited in one
    `LayerWalk` (float and quantized side by side); a walk that would not fit in memory
    (`walk_fits`) recomputes the model up to each layer instead, which gives the same results.
    `merge`: see `_mean_of_parts` (this rank's `batches` may then be empty; both ways call it
    once per measured error, layer by layer in topological order, so ranks may take either).
    `measure_after=False` skips measuring the error left after each correction (a report only).
    Nothing is written: `bias_corr_bytes` gives the file's content, `save_bias_corr` writes it.
    """
    runtime = quantizer.runtime
    fix_pos = dict(runtime.calibrated())  # first: it names NaN/inf calibration data
    if runtime.forwards == 0 or not (batches or merge):
        raise error("NO_CALIBRATION", action="bias correction")
    model = quantizer.quant_model
    planned = set(quantizer.session.bias_correction_nodes())
    samples = sum(int(b[0].shape[0]) if b[0].dim() else 1 for b in batches)
    if not walk_fits(quantizer.graph, samples):
        return _correct_bias_by_recomputing(quantizer, batches, fix_pos, measure_after, merge)
    results: list[BiasCorrection] = []
    corrected = []
    quant_runtime = fixed_runtime(runtime.settings, fix_pos)

    def visit(node: Any, module: Any, y_float: list, x_quant: list, quantize: Any) -> list | None:
        if node.name not in planned or getattr(module, "bias", None) is None:
            return None
        axis = _channel_axis(module)
        exact = ExactProducts.of(module, quant_runtime, x_quant)  # one product for both biases
        y_before = (exact.outputs() if exact is not None else None) or quantize()
        before = _channel_error(y_before, y_float, axis, merge)
        del y_before
        _new_bias(module, before, runtime, fix_pos)
        bias = module.param_names["bias"]
        if bias in quant_runtime.fix_pos:
            quant_runtime.fix_pos[bias] = fix_pos[bias]
        y_quant = (exact.outputs(reuse=True) if exact is not None else None) or quantize()
        after = _channel_error(y_quant, y_float, axis, merge) if measure_after else None
        results.append(BiasCorrection(module.node_name, before, after))
        corrected.append(module)
        return y_quant

    LayerWalk(model, quantizer.graph, batches).walk(quant_runtime, visit, desc="Bias correction")
    sync_graph(quantizer.graph, corrected)
    return results


def _correct_bias_by_recomputing(quantizer: Any, batches: Sequence[Batch], fix_pos: dict[str, Any],
                                 measure_after: bool = True, merge: MergeErrors | None = None,
                                 ) -> list[BiasCorrection]:
    """The same correction, recomputing the model from its inputs up to each layer (memory: one
    batch at a time; time: about one forward per layer)."""
    runtime, model = quantizer.runtime, quantizer.quant_model
    results: list[BiasCorrection] = []
    corrected = []
    originals = snapshot_params(model)
    planned = set(quantizer.session.bias_correction_nodes())
    for module in progress(weighted_modules(model), desc="Bias correction", unit="layer"):
        if module.node_name not in planned or module.bias is None:
            continue
        before = mean_output_error(model, module, batches, fixed_runtime(runtime.settings, fix_pos), originals, merge)
        _new_bias(module, before, runtime, fix_pos)
        after = (mean_output_error(model, module, batches, fixed_runtime(runtime.settings, fix_pos), originals, merge)
                 if measure_after else None)
        results.append(BiasCorrection(module.node_name, before, after))
        corrected.append(module)
    sync_graph(quantizer.graph, corrected)
    return results


def bias_corrections(results: Sequence[BiasCorrection]) -> dict[str, list[float]]:
    """`bias_corr.pth`'s content (the reference's layout): {node name: per-channel corrections}."""
    return {r.node: [float(v) for v in np.asarray(r.error_before, dtype=np.float64)] for r in results}


def bias_corr_bytes(quantizer: Any, results: Sequence[BiasCorrection]) -> bytes:
    """The bytes of `bias_corr.pth` (torch.save of `bias_corrections`)."""
    return params_bytes(bias_corrections(results))


def save_bias_corr(quantizer: Any, results: Sequence[BiasCorrection]) -> Path:
    """Write `output_dir/bias_corr.pth` atomically (on its own; the flow stages it with
    quant_info.json instead)."""
    return save_params(bias_corrections(results), Path(quantizer.output_dir) / BIAS_CORR_FILE)


def _corrections(path: Path, saved: Any, modules: dict[str, Any]) -> dict[str, np.ndarray]:
    """{node name: corrections} of a reference-layout file, checked against the model."""
    out = {}
    for name, values in saved.items():
        module = modules.get(name)
        if module is None or getattr(module, "bias", None) is None:
            raise error("FT_PARAM_MISMATCH", path=str(path),
                        problem=f"the model has no layer '{name}' with a bias to correct")
        try:
            corr = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values,
                              dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise error("FT_PARAM_MISMATCH", path=str(path),
                        problem=f"the corrections of '{name}' are not a list of numbers") from None
        if corr.shape != tuple(module.bias.shape) or not np.isfinite(corr).all():
            raise error("FT_PARAM_MISMATCH", path=str(path),
                        problem=f"'{name}' has {corr.size} correction(s), its bias {module.bias.numel()} "
                                "channel(s)" if corr.shape != tuple(module.bias.shape)
                        else f"the corrections of '{name}' are not finite")
        out[name] = corr
    return out


def bias_corr_data(quantizer: Any) -> bytes | None:
    """Test mode: the bytes of `bias_corr.pth` as read with quant_info.json, from one version of
    output_dir (`CnnQuantSession.calib_data`: a concurrent export cannot pair this
    quant_info.json with another calibration's corrections); None when that version has none.
    Before quant_info.json was read: the file of the version current now."""
    data = quantizer.session.calib_data
    if data is None:
        path = snapshot(quantizer.output_dir).path(BIAS_CORR_FILE)
        return path.read_bytes() if path.is_file() else None
    return data.get(BIAS_CORR_FILE)


def load_bias_corr(quantizer: Any) -> list[str]:
    """Test mode: apply `output_dir/bias_corr.pth` to quant_model and the graph (deployed bias =
    float bias - correction, from the graph's float bias: call it once, on a fresh quantizer);
    returns the corrected node names. A missing file is a missing calibration result
    (NO_CALIB_RESULT); a file that does not fit the model FT_PARAM_MISMATCH. The file is read
    from the version of output_dir test mode read quant_info.json from (`bias_corr_data`)."""
    path = Path(quantizer.output_dir) / BIAS_CORR_FILE
    data = bias_corr_data(quantizer)
    if data is None:
        raise error("NO_CALIB_RESULT", path=str(path))
    saved = parse_param_file(path, data)
    modules = {m.node_name: m for m in node_modules(quantizer.quant_model)}
    if saved and not any(name in modules for name in saved):  # this project's earlier layout
        return load_params(quantizer.quant_model, quantizer.graph, path, missing="NO_CALIB_RESULT", params=saved)
    corrections = _corrections(path, saved, modules)
    with torch.no_grad():
        for name, corr in corrections.items():
            module = modules[name]
            new_bias = corrected_bias(quantizer.graph.node(name).params["bias"].data, corr)
            module.bias.copy_(torch.from_numpy(new_bias).to(module.bias.device))
    sync_graph(quantizer.graph, [modules[name] for name in corrections])
    return list(corrections)

"""`export_quant_model()`: the converted model's quantized parameters, as the tutorial calls it.

The tutorial ("Quantizing the model") calls ``quantizer.export_quant_model()`` after
``export_quant_config()``: "after calibration the quantized model parameters can be exported".
What is written: ``<output_dir>/<Model>.pth``, the state dict of the generated ``<Model>.py``
(same keys) holding every parameter as the quantized model computes with it: weights and
biases after cross-layer equalization, bias correction or fast finetune, fake-quantized on
their calibrated grid (parameters the config leaves in float stay float). Loaded with
``torch.load(..., weights_only=True)`` into ``<Model>()``, it gives the model with quantized
parameters; quant_model (test mode) additionally quantizes the activations from
quant_info.json. Calib mode needs a finished calibration (bias correction runs first, as in
export_quant_config); test mode a forward, like the other exports. Under torch.distributed it
is called on every rank, as export_quant_config: in calib mode the ranks' statistics are merged
first (a collective), and only rank 0 writes.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from nndct_shared.messages import error, note
from nndct_shared.quant_mode import RunMode

from ..distributed import merge_calibration, skips_writing
from ..quantization.fake_quant import fake_quantize

__all__ = ["quantized_state_dict", "write_quant_params"]


def quantized_state_dict(model: torch.nn.Module, settings: dict[str, Any],
                         results: dict[str, Any]) -> dict[str, torch.Tensor]:
    """{module_<i>.<role>: tensor} of `model`, each param on its grid (see the module doc)."""
    state: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for child_name, module in model.named_children():
            names = getattr(module, "param_names", {})
            for role, tensor in module.state_dict().items():
                value = tensor.detach().cpu()
                name = names.get(role)
                if name in settings and results.get(name) is not None:
                    value = fake_quantize(settings[name], value, results[name])
                state[f"{child_name}.{role}"] = value.clone()
    return state


def write_quant_params(quantizer: Any, output_dir: str | None = None) -> Path | None:
    """Write `<output_dir>/<Model>.pth` (default: the quantizer's output_dir) as one export unit;
    None on a rank that does not write (torch.distributed)."""
    runtime = quantizer.runtime
    action = "export_quant_model()"
    if quantizer.quant_mode == RunMode.CALIB:
        merge_calibration(quantizer, action)
        if runtime.forwards == 0:
            raise error("NO_CALIBRATION", action="export_quant_model()")
        quantizer.post_training.before_export(quantizer)  # bias correction, once
        results = runtime.calibrated()
    else:
        if skips_writing(action):
            return None
        quantizer._require_test_forward(action)
        results = runtime.fix_pos
    state = quantized_state_dict(quantizer.quant_model, runtime.settings, results)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    if quantizer.quant_mode == RunMode.CALIB and skips_writing(action):
        return None
    out = output_dir if output_dir is not None else quantizer.output_dir
    path = quantizer.session.write_export(out, f"{type(quantizer.quant_model).__name__}.pth", buffer.getvalue())
    note(f"=>Exported the quantized parameters of the converted model to '{path}'")
    return path

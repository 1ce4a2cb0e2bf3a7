"""TorchScript export of the quantized model: a trace of `quant_model` in test mode.

The fix ops are pure torch (`fix_neuron_torch`), so the trace records them with the fix
positions as constants and the saved module reproduces `quant_model` exactly (a test checks
torch.equal). Tracing uses the last forward's inputs.
"""
from __future__ import annotations

import io
import warnings

import torch

from nndct_shared.messages import error

from ..quantization.runtime import QuantRuntime

__all__ = ["trace_quant_model"]


def trace_quant_model(model: torch.nn.Module, runtime: QuantRuntime) -> bytes:
    """Trace `model` on `runtime.last_inputs`; the saved TorchScript module as bytes (the caller
    writes them, so a failed trace leaves no file)."""
    inputs = runtime.last_inputs
    if inputs is None:
        raise error("NO_FORWARD", action="export_torch_script()")
    saved = (runtime.forwards, runtime.last_batch_size, runtime.last_inputs, dict(runtime.last_outputs))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what was asked for
            traced = torch.jit.trace(model, inputs, check_trace=False)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
    finally:
        runtime.forwards, runtime.last_batch_size, runtime.last_inputs, runtime.last_outputs = saved
    return buffer.getvalue()

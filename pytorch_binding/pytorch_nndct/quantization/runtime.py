"""The quantized model's runtime: calibration (calib) and fake quantization (test).

Every module of the converted model passes its params and its output through `param()` and
`output()`. In calib mode each quantized tensor feeds its observer, and is then fake-quantized
at the fix position known so far, as the reference does (calibration is not passive: later
layers see quantized data). In test mode the fix positions come from quant_info.json and every
quantized tensor goes through `fix_neuron_torch`. The last output of every node is kept (as a
reference, no copy) for the deploy-check dumps and the exports.

What quant_model accepts (`InputGuard`, a forward pre-hook that runs before the runtime's): as
many tensors as the captured model has inputs, each shaped like input_args except for the batch
dimension (QUANTIZER_TORCH_SHAPE_MISMATCH otherwise, before anything runs or is recorded).

NaN/inf during calibration (the guide: TENSOR_VALUE_INVALID, "The tensor has "inf" or "nan"
value. Quantization for this tensor is ignored."):

- in the data given to quant_model (calib mode): the warning TENSOR_VALUE_INVALID names the
  input (once per input), and the whole batch is left out of calibration: no input or
  activation observer sees it (the NaN would run through every layer after the input), and it
  is not kept for bias correction. The forward still runs and returns its output, fake-quantized
  at the fix positions known so far, so the user's loop goes on; the result equals a
  calibration that never saw the batch. If no batch was clean, `calibrated()` (so
  export_quant_config) raises CALIB_DATA_NONFINITE naming the input, instead of writing a
  quant_info.json without fix positions;
- inside the model (a float overflow) or in a parameter: the tensor's observer skips that call
  with the warning TENSOR_VALUE_INVALID naming the tensor (once), as every calibration observer
  of `nndct_shared.calibration` does, and the fix position comes from the finite calls; a tensor
  that never saw finite data has no fix position, and `calibrated()` (so export_quant_config)
  raises CALIB_DATA_NONFINITE naming it instead of writing `null` to quant_info.json.

Float-scale tensors (`scale_type: "float"`, see `nndct_shared.calibration.float_scale`) hold a
`FloatQParams` (scale, zero point) where the others hold a fix position: the observer's
`fix_pos`, the loaded result and `calibrated()` carry it, and `_quantize` branches on it.

In test mode nothing is skipped or checked: NaN passes through every fix op unchanged (so it
reaches the outputs of its sample, as in the float model) and +-inf saturates to the end codes
of the grid (so an inf input gives finite outputs); no statistic is computed there.

`feedback` says at which fix position a calib-mode call is fake-quantized: "running" (the
reference) at its observer's result over every call so far; "batch" at the result of a fresh
observer of that call alone, which is then merged into the tensor's observer, so that what a
batch contributes does not depend on the batches before it (the default under torch.distributed,
see `pytorch_nndct.distributed`). Params are calibrated once either way.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from nndct_shared.calibration import FloatQParams
from nndct_shared.cnn.calibration_state import CalibrationState
from nndct_shared.cnn.settings import TensorSettings
from nndct_shared.messages import error
from nndct_shared.quant_info_store import QUANT_INFO_FILE
from nndct_shared.quant_mode import RunMode

from ..distributed import default_feedback
from .fake_quant import fake_quantize, fix_position_tensor

__all__ = ["InputGuard", "QuantRuntime"]

FixPos = "int | tuple[int, ...] | None"


def _shape_pattern(shape: tuple[int, ...]) -> str:
    """`(N, 1, 8, 8)`: the captured shape with the batch dimension free."""
    if not shape:
        return "()"
    return "(" + ", ".join(["N", *(str(d) for d in shape[1:])]) + ")"


class InputGuard:
    """Forward pre-hook of the converted model: checks the data given to quant_model.

    `inputs` are (input node name, captured shape) in the order of the generated forward's
    arguments. Every call needs exactly these tensors, equal in shape except for dimension 0 (the
    batch). `on_nonfinite(name, count)` (calib mode: `QuantRuntime.skip_batch`) is told about
    float inputs with NaN/inf values; see the module docstring.
    """

    def __init__(self, inputs: list[tuple[str, tuple[int, ...]]],
                 on_nonfinite: Callable[[str, int], None] | None = None) -> None:
        self.inputs = [(name, tuple(int(d) for d in shape)) for name, shape in inputs]
        self.on_nonfinite = on_nonfinite

    def __call__(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if len(args) != len(self.inputs):
            names = ", ".join(f"'{name}'" for name, _ in self.inputs)
            raise error("SHAPE_MISMATCH", what="the arguments of quant_model",
                        expected=f"{len(self.inputs)} tensor(s) ({names})", got=f"{len(args)} argument(s)")
        for k, ((name, shape), arg) in enumerate(zip(self.inputs, args)):
            what = f"argument {k} of quant_model ('{name}')"
            if not isinstance(arg, torch.Tensor):
                raise error("SHAPE_MISMATCH", what=what, expected=f"a tensor of shape {_shape_pattern(shape)}",
                            got=f"a {type(arg).__name__}")
            got = tuple(arg.shape)
            if len(got) != len(shape) or got[1:] != shape[1:] or (not shape and got != shape):
                raise error("SHAPE_MISMATCH", what=what,
                            expected=f"{_shape_pattern(shape)} as in input_args (any batch size N)",
                            got=str(got))
            if self.on_nonfinite is not None and arg.is_floating_point():
                count = int((~torch.isfinite(arg)).sum())
                if count:
                    self.on_nonfinite(name, count)


class QuantRuntime(CalibrationState):
    """Observers (calib) or fix positions (test) of the quantized tensors of one model (the
    calibration state and its rules are the neutral `CalibrationState`, shared with Keras)."""

    #: Modules that own their output may hand it over to be fake-quantized in place (`output`).
    quantize_outputs_in_place = True

    def __init__(self, settings: Mapping[str, TensorSettings], mode: RunMode, feedback: str | None = None) -> None:
        super().__init__(settings, mode, feedback or default_feedback())
        self.merged_forwards: int | None = None  # set when the ranks' statistics were merged
        self.last_batch_size: int | None = None
        self.last_inputs: tuple[torch.Tensor, ...] | None = None
        self.last_outputs: dict[str, torch.Tensor] = {}
        self._axis_cache: dict[tuple[str, str], torch.Tensor] = {}

    # --- hooks called by the converted model -----------------------------------------------

    def on_forward(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook of the converted model: counts calls (skipping one after NaN/inf
        inputs, `CalibrationState.skip_batch`), keeps the last inputs."""
        self.begin_forward()
        tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
        self.last_inputs = tuple(t.detach() for t in tensors)
        self.last_batch_size = int(tensors[0].shape[0]) if tensors and tensors[0].dim() else None

    def output(self, name: str, y: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """The node's output `y` on its grid (and observed, in calib mode). `in_place`: `y` is the
        module's own new tensor (`NodeModule.owns_output`) and may be overwritten: a plain CPU
        float tensor then gets its fix without a copy (fewer fresh pages to fault in; a runtime
        that must see `y` and the result side by side sets `quantize_outputs_in_place` False)."""
        settings = self.settings.get(name)
        if settings is not None:
            y = self._quantize(settings, y, in_place)
        self.last_outputs[name] = y.detach()
        return y

    def param(self, name: str, value: torch.Tensor) -> torch.Tensor:
        settings = self.settings.get(name)
        return value if settings is None else self._quantize(settings, value)

    # --- quantization -----------------------------------------------------------------------

    def _quantize(self, s: TensorSettings, x: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        if self.mode == RunMode.CALIB:
            fix_pos = self._observe(s, x)
        else:
            fix_pos = self.fix_pos.get(s.name)
            if fix_pos is None:
                raise error("PARAM_NOT_QUANTIZED", name=s.name, path=QUANT_INFO_FILE)
        channel_fix = None
        if isinstance(fix_pos, tuple) and not isinstance(fix_pos[0], FloatQParams):
            channel_fix = self._per_channel(s, fix_pos, x)
        return fake_quantize(s, x, fix_pos, channel_fix, in_place)

    def _observe(self, s: TensorSettings, x: torch.Tensor) -> Any:
        return self.observe(s, x.detach().to("cpu", torch.float32).numpy())

    def _per_channel(self, s: TensorSettings, fix_pos: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        key = (s.name, str(x.device))
        cached = self._axis_cache.get(key)
        if cached is None or cached.numel() != len(fix_pos):
            cached = self._axis_cache[key] = fix_position_tensor(fix_pos, x, s.axis)
        return cached

    # --- results (calibrated(): CalibrationState) ------------------------------------------

    def load(self, fix_pos: Mapping[str, Any]) -> None:
        """Test mode: use these fix positions (int, or a tuple per channel)."""
        self.fix_pos = dict(fix_pos)
        self._axis_cache.clear()

    def quantized_values(self) -> dict[str, np.ndarray]:
        """The last forward's node outputs as float32 numpy arrays (torch layout)."""
        return {name: t.to("cpu", torch.float32).numpy() for name, t in self.last_outputs.items()}

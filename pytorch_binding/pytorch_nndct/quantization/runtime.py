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

NaN/inf during calibration, decided like the rest of the project:

- in the data given to quant_model (calib mode): CALIB_DATA_NONFINITE, raised before the batch
  reaches any observer, as the LSTM flow does. Skipping such a batch would not be enough here:
  the NaN would still run through the model (and into the inputs kept for bias correction);
  raising keeps every statistic gathered so far intact, and the loop can go on with clean data;
- inside the model (a float overflow) or in a parameter: the tensor's observer skips that call
  with the warning TENSOR_VALUE_INVALID naming the tensor (once), as every calibration observer
  of `nndct_shared.calibration` does, and the fix position comes from the finite calls; a tensor
  that never saw finite data has no fix position, and `calibrated()` (so export_quant_config)
  raises CALIB_DATA_NONFINITE naming it instead of writing `null` to quant_info.json.

Float-scale tensors (`scale_type: "float"`, see `nndct_shared.calibration.float_scale`) hold a
`FloatQParams` (scale, zero point) where the others hold a fix position: the observer's
`fix_pos`, the loaded result and `calibrated()` carry it, and `_quantize` branches on it.

In test mode NaN passes through the fix op unchanged and +-inf saturates, as in the float model
and on the hardware; no statistic is computed there.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from nndct_shared.calibration import FloatQParams
from nndct_shared.cnn.calibration_state import CalibrationState
from nndct_shared.cnn.settings import TensorSettings
from nndct_shared.messages import error
from nndct_shared.quant_info_store import QUANT_INFO_FILE
from nndct_shared.quant_mode import RunMode

from .fix_float_torch import fake_quant_float_torch
from .fix_torch import fix_neuron_torch

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
    batch); with `finite=True` (calib mode) their float values must be finite. See the module
    docstring for why.
    """

    def __init__(self, inputs: list[tuple[str, tuple[int, ...]]], finite: bool) -> None:
        self.inputs = [(name, tuple(int(d) for d in shape)) for name, shape in inputs]
        self.finite = finite

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
            if self.finite and arg.is_floating_point():
                count = int((~torch.isfinite(arg)).sum())
                if count:
                    raise error("CALIB_DATA_NONFINITE", name=name, count=count)


class QuantRuntime(CalibrationState):
    """Observers (calib) or fix positions (test) of the quantized tensors of one model (the
    calibration state and its rules are the neutral `CalibrationState`, shared with Keras)."""

    def __init__(self, settings: Mapping[str, TensorSettings], mode: RunMode) -> None:
        super().__init__(settings, mode)
        self.forwards = 0
        self.last_batch_size: int | None = None
        self.last_inputs: tuple[torch.Tensor, ...] | None = None
        self.last_outputs: dict[str, torch.Tensor] = {}
        self._axis_cache: dict[tuple[str, str], torch.Tensor] = {}

    # --- hooks called by the converted model -----------------------------------------------

    def on_forward(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook of the converted model: counts calls, keeps the last inputs."""
        self.forwards += 1
        tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
        self.last_inputs = tuple(t.detach() for t in tensors)
        self.last_batch_size = int(tensors[0].shape[0]) if tensors and tensors[0].dim() else None

    def output(self, name: str, y: torch.Tensor) -> torch.Tensor:
        settings = self.settings.get(name)
        if settings is not None:
            y = self._quantize(settings, y)
        self.last_outputs[name] = y.detach()
        return y

    def param(self, name: str, value: torch.Tensor) -> torch.Tensor:
        settings = self.settings.get(name)
        return value if settings is None else self._quantize(settings, value)

    # --- quantization -----------------------------------------------------------------------

    def _quantize(self, s: TensorSettings, x: torch.Tensor) -> torch.Tensor:
        if self.mode == RunMode.CALIB:
            fix_pos = self._observe(s, x)
        else:
            fix_pos = self.fix_pos.get(s.name)
            if fix_pos is None:
                raise error("PARAM_NOT_QUANTIZED", name=s.name, path=QUANT_INFO_FILE)
        if fix_pos is None:
            return x
        if isinstance(fix_pos, FloatQParams):
            spec = s.float_spec
            return fake_quant_float_torch(x, spec.qmin, spec.qmax, fix_pos.scale, fix_pos.zero_point,
                                          s.round_code)
        if isinstance(fix_pos, tuple):
            return fix_neuron_torch(x, s.bit_width, self._per_channel(s, fix_pos, x), s.round_code)
        return fix_neuron_torch(x, s.bit_width, fix_pos, s.round_code)

    def _observe(self, s: TensorSettings, x: torch.Tensor) -> Any:
        return self.observe(s, x.detach().to("cpu", torch.float32).numpy())

    def _per_channel(self, s: TensorSettings, fix_pos: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        key = (s.name, str(x.device))
        cached = self._axis_cache.get(key)
        if cached is None or cached.numel() != len(fix_pos):
            shape = [1] * x.dim()
            shape[s.axis] = len(fix_pos)
            cached = torch.tensor(fix_pos, dtype=torch.float64, device=x.device).reshape(shape)
            self._axis_cache[key] = cached
        return cached

    # --- results (calibrated(): CalibrationState) ------------------------------------------

    def load(self, fix_pos: Mapping[str, Any]) -> None:
        """Test mode: use these fix positions (int, or a tuple per channel)."""
        self.fix_pos = dict(fix_pos)
        self._axis_cache.clear()

    def quantized_values(self) -> dict[str, np.ndarray]:
        """The last forward's node outputs as float32 numpy arrays (torch layout)."""
        return {name: t.to("cpu", torch.float32).numpy() for name, t in self.last_outputs.items()}

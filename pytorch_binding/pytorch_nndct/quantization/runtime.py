"""The quantized model's runtime: calibration (calib) and fake quantization (test).

Every module of the converted model passes its params and its output through `param()` and
`output()`. In calib mode each quantized tensor feeds its observer, and is then fake-quantized
at the fix position known so far, as the reference does (calibration is not passive: later
layers see quantized data). In test mode the fix positions come from quant_info.json and every
quantized tensor goes through `fix_neuron_torch`. The last output of every node is kept (as a
reference, no copy) for the deploy-check dumps and the exports.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from nndct_shared.calibration import Observer
from nndct_shared.messages import error

from .fix_torch import fix_neuron_torch
from .settings import TensorSettings, make_observer

__all__ = ["QuantRuntime"]

FixPos = "int | tuple[int, ...] | None"


class QuantRuntime:
    """Observers (calib) or fix positions (test) of the quantized tensors of one model."""

    def __init__(self, settings: Mapping[str, TensorSettings], mode: str) -> None:
        if mode not in ("calib", "test"):
            raise ValueError(f"mode must be 'calib' or 'test', got {mode!r}")
        self.settings = dict(settings)
        self.mode = mode
        self.observers: dict[str, Observer] = {}
        self.fix_pos: dict[str, Any] = {}
        self.forwards = 0
        self.last_batch_size: int | None = None
        self.last_inputs: tuple[torch.Tensor, ...] | None = None
        self.last_outputs: dict[str, torch.Tensor] = {}
        self._param_seen: set[str] = set()
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
        if self.mode == "calib":
            fix_pos = self._observe(s, x)
        else:
            fix_pos = self.fix_pos.get(s.name)
            if fix_pos is None:
                raise error("PARAM_NOT_QUANTIZED", name=s.name, path="quant_info.json")
        if fix_pos is None:
            return x
        if isinstance(fix_pos, tuple):
            return fix_neuron_torch(x, s.bit_width, self._per_channel(s, fix_pos, x), s.round_code)
        return fix_neuron_torch(x, s.bit_width, fix_pos, s.round_code)

    def _observe(self, s: TensorSettings, x: torch.Tensor) -> Any:
        observer = self.observers.get(s.name)
        if observer is None:
            observer = self.observers[s.name] = make_observer(s)
        if not (s.is_param and s.name in self._param_seen):
            observer.observe(x.detach().to("cpu", torch.float32).numpy())
            if s.is_param and observer.fix_pos is not None:
                self._param_seen.add(s.name)
        return observer.fix_pos

    def _per_channel(self, s: TensorSettings, fix_pos: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        key = (s.name, str(x.device))
        cached = self._axis_cache.get(key)
        if cached is None or cached.numel() != len(fix_pos):
            shape = [1] * x.dim()
            shape[s.axis] = len(fix_pos)
            cached = torch.tensor(fix_pos, dtype=torch.float64, device=x.device).reshape(shape)
            self._axis_cache[key] = cached
        return cached

    # --- results ----------------------------------------------------------------------------

    def calibrated(self) -> dict[str, Any]:
        """Fix position of every quantized tensor after calibration (None if never observed).

        An activation that was only ever all-zero has no range; any fix position reproduces
        it, so it gets the cap (the most precise allowed one), as the kernels do for params.
        """
        result: dict[str, Any] = {}
        for name, s in self.settings.items():
            observer = self.observers.get(name)
            fix_pos = None if observer is None else observer.fix_pos
            if fix_pos is None and observer is not None and observer.skipped_no_range:
                fix_pos = s.max_fix_pos
            result[name] = fix_pos
        return result

    def load(self, fix_pos: Mapping[str, Any]) -> None:
        """Test mode: use these fix positions (int, or a tuple per channel)."""
        self.fix_pos = dict(fix_pos)
        self._axis_cache.clear()

    def quantized_values(self) -> dict[str, np.ndarray]:
        """The last forward's node outputs as float32 numpy arrays (torch layout)."""
        return {name: t.to("cpu", torch.float32).numpy() for name, t in self.last_outputs.items()}

"""`Inspector`: which operations of a float PyTorch model a DPU target runs, and why the others
fall back to the CPU.

The PyTorch part only captures the model (the same torch.fx capture as the CNN quantizer, so
the node names are the quantizer's); the target database, the partition, the report and the
pictures are the framework-neutral `nndct_shared.inspector`. The user's module is not touched:
a copy is traced on `device` (CPU when CUDA is missing, with the CUDA_UNAVAILABLE warning).
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.inspector import DpuTarget, InspectResult, inspector_target, run_inspection
from nndct_shared.messages import error

from .parse import capture_model
from .utils.device import resolve_device


def _as_inputs(input_args: Any, device: torch.device) -> tuple[Any, ...]:
    if input_args is None:
        raise error("CNN_NO_INPUT_ARGS", module="the model to inspect")
    args = tuple(input_args) if isinstance(input_args, (list, tuple)) else (input_args,)
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


class Inspector:
    """`Inspector(name_or_fingerprint)`: a DPU target by name (`DPUCZDX8G_ISA1_B4096`) or
    fingerprint (`"0x603000b16013831"` or an int). An unknown name is the catalogued
    UNKNOWN_TARGET error listing the known targets; a fingerprint that is neither registered
    nor decodable is the guide's INSPECTOR_INPUT_FORMAT error (pass the name instead)."""

    def __init__(self, name_or_fingerprint: str | int) -> None:
        self.target: DpuTarget = inspector_target(name_or_fingerprint)
        self.result: InspectResult | None = None

    def inspect(self, module: nn.Module, input_args: Any, device: torch.device | str = torch.device("cuda"),
                output_dir: str | os.PathLike[str] = "quantize_result", verbose_level: int = 1,
                image_format: str | None = None) -> InspectResult:
        """Captures the float `module` on `input_args` (random values are fine) and writes
        `output_dir/inspect_<target>.txt`, plus `.gv` and the picture with `image_format`
        'svg' or 'png'. Returns the device assignment of every node (each with its reason:
        `assignment.why`). `module` itself is left as it was (device, train/eval mode)."""
        if not isinstance(module, nn.Module):
            raise error("MODULE_TYPE", got=type(module).__name__)
        device = resolve_device(device)
        float_model = copy.deepcopy(module).to(device).eval()
        captured = capture_model(float_model, _as_inputs(input_args, device))
        self.result, _ = run_inspection(captured.graph, self.target, Path(output_dir), verbose_level, image_format)
        return self.result

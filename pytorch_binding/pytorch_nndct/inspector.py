"""`Inspector`: which operations of a float PyTorch model a DPU target runs, and why the others
fall back to the CPU.

The PyTorch part only captures the model (the same torch.fx capture as the CNN quantizer, so
the node names are the quantizer's); the target database, the partition, the report and the
pictures are the framework-neutral `nndct_shared.inspector`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.inspector import DpuTarget, InspectResult, get_target, run_inspection
from nndct_shared.messages import error, warn

from .parse import capture_model


def _as_inputs(input_args: Any) -> tuple[Any, ...]:
    if input_args is None:
        raise error("CNN_NO_INPUT_ARGS", module="the model to inspect")
    return tuple(input_args) if isinstance(input_args, (list, tuple)) else (input_args,)


class Inspector:
    """`Inspector(name_or_fingerprint)`: a DPU target by name (`DPUCZDX8G_ISA1_B4096`) or
    fingerprint (`"0x603000b16013831"` or an int); an unknown one is a catalogued error listing
    the known targets."""

    def __init__(self, name_or_fingerprint: str | int) -> None:
        self.target: DpuTarget = get_target(name_or_fingerprint)
        self.result: InspectResult | None = None

    def inspect(self, module: nn.Module, input_args: Any, device: torch.device | str = torch.device("cpu"),
                output_dir: str | os.PathLike[str] = "quantize_result", verbose_level: int = 1,
                image_format: str | None = None) -> InspectResult:
        """Captures the float `module` on `input_args` (random values are fine) and writes
        `output_dir/inspect_<target>.txt`, plus `.gv` and the picture with `image_format`
        'svg' or 'png'. Returns the device assignment of every node."""
        if not isinstance(module, nn.Module):
            raise error("MODULE_TYPE", got=type(module).__name__)
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            warn("CUDA_UNAVAILABLE", requested=str(device))
        captured = capture_model(module.cpu().eval(), _as_inputs(input_args))
        self.result, _ = run_inspection(captured.graph, self.target, Path(output_dir), verbose_level, image_format)
        return self.result

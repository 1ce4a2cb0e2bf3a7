"""The device a quantizer, the Inspector or QAT runs on.

The reference defaulted to CUDA; this project runs on the CPU, so a CUDA device on a machine
without one falls back to the CPU with the catalogued CUDA_UNAVAILABLE warning instead of failing
deep inside torch. One function, so the three entry points cannot drift apart.
"""
from __future__ import annotations

from typing import Any

import torch

from nndct_shared.messages import warn

__all__ = ["resolve_device"]


def resolve_device(device: Any) -> torch.device:
    """`device` as a torch.device (None: the CPU); CUDA without a GPU becomes the CPU, warned."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        warn("CUDA_UNAVAILABLE", requested=str(device))
        return torch.device("cpu")
    return device

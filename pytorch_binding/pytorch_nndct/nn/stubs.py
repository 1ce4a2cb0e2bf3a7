"""QuantStub / DeQuantStub: mark where the quantized part of a model begins and ends.

They are identities in the float model. When a model contains any of them, only the ops between
a QuantStub and a DeQuantStub are quantized (the user guide's "module partial quantization");
without them, the whole model is.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["DeQuantStub", "QuantStub"]


class QuantStub(nn.Module):
    """Start of a quantized region: its output is quantized like a model input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class DeQuantStub(nn.Module):
    """End of a quantized region: ops after it run in float."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

"""Module forms of tensor arithmetic, for QAT (`from pytorch_nndct.nn.modules import functional`).

Why modules: QAT gives every quantized operation its own learnable quantizer, found by the
module that runs it, so the guide requires `+`, `-`, `torch.add` and `torch.sub` between
quantized tensors to be written as `functional.Add()` / `functional.Sub()` instances, one per
call site. They compute exactly what the operator does; the graph capture sees the torch op
inside the module and names it after the module (e.g. `Net::Net/Add[skip_add]/add`).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Add", "Sub"]


class Add(nn.Module):
    """`x + y` as a module (replaces `+` and `torch.add` in models trained with QAT)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.add(x, y)


class Sub(nn.Module):
    """`x - y` as a module (replaces `-` and `torch.sub` in models trained with QAT)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sub(x, y)

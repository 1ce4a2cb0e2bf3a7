"""Quantization-aware training (QAT): `QatProcessor(model, inputs, bitwidth)`, its trainable
model with learnable TQT fix positions, and deployment through the CNN flow's test mode."""
from __future__ import annotations

from .processor import QatProcessor
from .runtime import QatModel

__all__ = ["QatModel", "QatProcessor"]

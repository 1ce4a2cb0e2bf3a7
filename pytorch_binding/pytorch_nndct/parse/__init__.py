"""Graph capture of a float PyTorch model (torch.fx) into the neutral CNN `Graph`."""
from __future__ import annotations

from .lower import CapturedModel, capture_model

__all__ = ["CapturedModel", "capture_model"]

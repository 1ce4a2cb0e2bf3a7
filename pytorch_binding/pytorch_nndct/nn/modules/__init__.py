"""User-facing modules the guide asks models to use (`pytorch_nndct.nn.modules.functional.Add`)."""
from __future__ import annotations

from . import functional

__all__ = ["functional"]

"""User-facing utilities (`from pytorch_nndct.utils import register_custom_op`)."""
from __future__ import annotations

from .custom_op import CustomOp, custom_op_registry, register_custom_op

__all__ = ["CustomOp", "custom_op_registry", "register_custom_op"]

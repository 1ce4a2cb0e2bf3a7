"""Loads the compiled kernel module with a message that says how to build it when missing."""
from __future__ import annotations

try:
    from nndct_shared import _kernels as core
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "the compiled kernels nndct_shared._kernels are not built; run "
        "`pip install --no-build-isolation -e .` in the repository root"
    ) from exc

__all__ = ["core"]

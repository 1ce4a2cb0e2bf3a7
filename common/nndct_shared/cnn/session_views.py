"""The neutral CNN session's state as plain attributes of a front end's quantizer.

Why a mixin: tests, tools and the user guide read `quantizer.graph`, `.plan`, `.settings`...;
the session owns them, and every front end's quantizer (PyTorch's `TorchQuantizer`, Keras'
`KerasCnnQuantizer`) exposes them under the same names by mixing this in next to its
`self.session` (a `CnnQuantSession`).
"""
from __future__ import annotations

__all__ = ["SessionViews"]


class SessionViews:
    """Read-only views of `self.session` (a `nndct_shared.cnn.session.CnnQuantSession`)."""

    captured = property(lambda self: self.session.captured, doc="The captured float model.")
    graph = property(lambda self: self.session.graph,
                     doc="The captured float graph (neutral IR; params float, BatchNorm folded).")
    config = property(lambda self: self.session.config, doc="The quantization config in use.")
    plan = property(lambda self: self.session.plan, doc="The fix plan (tensors to quantize).")
    settings = property(lambda self: self.session.settings, doc="Per-tensor quantization settings.")

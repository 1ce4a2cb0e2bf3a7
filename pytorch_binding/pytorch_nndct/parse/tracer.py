"""torch.fx tracing with the quantizer's leaf modules, and user source lines for messages.

Why torch.fx: the reference used `torch.jit.trace` (deprecated); fx keeps module boundaries
(every `torch.nn` layer stays one call, so BatchNorm can be folded and layers named by their
attribute path) and records the user's source line of every op, which error messages quote.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from typing import Any

import torch
import torch.fx
from torch.fx.passes.shape_prop import ShapeProp

from nndct_shared.messages import error

from ..nn.stubs import DeQuantStub, QuantStub

__all__ = ["QuantTracer", "source_of", "trace_model"]

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>[^\n]+)\n(?P<code>[^\n]*)')
_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class QuantTracer(torch.fx.Tracer):
    """fx Tracer that keeps torch.nn layers and the QuantStub/DeQuantStub markers as leaves and
    records stack traces (for the source line in error messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (QuantStub, DeQuantStub)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace_model(model: torch.nn.Module, inputs: tuple[Any, ...]) -> torch.fx.GraphModule:
    """The fx GraphModule of `model`, with tensor shapes of one run on `inputs` in node.meta.

    Any tracing failure (data-dependent control flow, unsupported Python) raises
    QUANTIZER_TORCH_PYTORCH_TRACE with torch's reason.
    """
    tracer = QuantTracer()
    try:
        graph = tracer.trace(model)
        gm = torch.fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as exc:  # torch raises many types here; all mean "not traceable"
        raise error("PYTORCH_TRACE", reason=f"{type(exc).__name__}: {exc}") from exc
    # ShapeProp prints a traceback to stderr before it re-raises; the error below says the
    # same in one line, so what went to stderr is passed on only when the run succeeds.
    stderr = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stderr(stderr):
            ShapeProp(gm).propagate(*inputs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        first_line = (str(cause).strip().splitlines() or [""])[0]
        raise error("PYTORCH_TRACE", reason=f"running the traced model on input_args failed: "
                                            f"{type(cause).__name__}: {first_line}") from exc
    if stderr.getvalue():
        sys.stderr.write(stderr.getvalue())
    return gm


def source_of(node: torch.fx.Node) -> str:
    """`file:line: code` of the user's line that created `node` ('unknown source' if none)."""
    trace = node.stack_trace or ""
    user = None
    for match in _FRAME.finditer(trace):
        path = os.path.abspath(match["file"])
        if path.startswith(_TORCH_DIR) or path.startswith(_OWN_DIR):
            continue
        user = match
    if user is None:
        return "unknown source"
    return f"{user['file']}:{user['line']}: {user['code'].strip()}"

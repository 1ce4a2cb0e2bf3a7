"""torch.fx tracing with the quantizer's leaf modules, and user source lines for messages.

Why torch.fx: the reference used `torch.jit.trace` (deprecated); fx keeps module boundaries
(every `torch.nn` layer stays one call, so BatchNorm can be folded and layers named by their
attribute path) and records the user's source line of every op, which error messages quote.
A model fx cannot trace (Python control flow on tensor sizes or values) is captured with
`torch.jit.trace`, the reference's capture, rewritten as the same kind of fx graph
(`jit_capture.py`), so every model that passes the guide's jit trace test captures.
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

from nndct_shared.messages import NndctError, error, note

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


def trace_model(model: torch.nn.Module, inputs: tuple[Any, ...], method: str = "auto") -> torch.fx.GraphModule:
    """The fx GraphModule of `model`, with tensor shapes of one run on `inputs` in node.meta.

    `method` "auto" traces with torch.fx and, when fx cannot trace the model (or its trace does
    not run on `inputs`), captures it with torch.jit.trace instead (the reference's capture,
    `jit_capture`: branches and loops follow `inputs`), noting why; "fx" / "jit" use one of
    them. Raises QUANTIZER_TORCH_PYTORCH_TRACE with torch's reasons when no capture succeeds.
    """
    if method not in ("auto", "fx", "jit"):
        raise ValueError(f"method must be 'auto', 'fx' or 'jit', got {method!r}")
    fx_problem = None
    if method != "jit":
        try:
            return _fx_trace(model, inputs)
        except _TraceFailure as exc:
            if method == "fx":
                raise error("PYTORCH_TRACE", reason=exc.reason) from exc.__cause__
            fx_problem = exc.reason
    from .jit_capture import jit_graph_module

    try:
        gm = jit_graph_module(model, inputs, QuantTracer().is_leaf_module)
    except NndctError:
        raise
    except Exception as exc:  # torch.jit.trace raises many types; all mean "not traceable"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        reason = f"torch.jit.trace failed too: {type(exc).__name__}: {first_line}"
        raise error("PYTORCH_TRACE", reason=f"{fx_problem}; {reason}" if fx_problem else reason) from exc
    try:
        _propagate_shapes(gm, inputs)
    except _TraceFailure as exc:
        raise error("PYTORCH_TRACE", reason=f"torch.jit.trace capture: {exc.reason}") from exc.__cause__
    if fx_problem is not None:
        note(f"torch.fx could not trace '{type(model).__name__}' ({fx_problem}); it was captured with "
             "torch.jit.trace, which records the ops run for input_args (branches on tensor values "
             "or sizes follow input_args, as in the reference).")
    return gm


class _TraceFailure(Exception):
    """One capture did not work; `reason` says why (torch's message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fx_trace(model: torch.nn.Module, inputs: tuple[Any, ...]) -> torch.fx.GraphModule:
    tracer = QuantTracer()
    try:
        graph = tracer.trace(model)
        gm = torch.fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as exc:  # torch raises many types here; all mean "not traceable"
        raise _TraceFailure(f"{type(exc).__name__}: {exc}") from exc
    _propagate_shapes(gm, inputs)
    return gm


def _propagate_shapes(gm: torch.fx.GraphModule, inputs: tuple[Any, ...]) -> None:
    """Run `gm` on `inputs` with ShapeProp (tensor_meta on every node)."""
    # ShapeProp prints a traceback to stderr before it re-raises; the error says the same in
    # one line, so what went to stderr is passed on only when the run succeeds.
    stderr = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stderr(stderr):
            ShapeProp(gm).propagate(*inputs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        first_line = (str(cause).strip().splitlines() or [""])[0]
        raise _TraceFailure(f"running the traced model on input_args failed: "
                            f"{type(cause).__name__}: {first_line}") from exc
    if stderr.getvalue():
        sys.stderr.write(stderr.getvalue())


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

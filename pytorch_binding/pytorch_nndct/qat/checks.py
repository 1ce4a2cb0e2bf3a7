"""The guide's requirements on a model trained with QAT, checked on its torch.fx trace.

Why they exist: QAT gives each quantized operation its own learnable quantizers, keyed by the
module that runs it. So (1) the quantized region must be marked with QuantStub/DeQuantStub,
(2) `+`, `-`, `torch.add`, `torch.sub` between quantized tensors must be
`pytorch_nndct.nn.modules.functional.Add/Sub` modules, and (3) a quantized module must not be
called twice (its calls would share quantizers) unless the user allows it.

The quantized region is found as the capture finds it: a QuantStub output is quantized, a
DeQuantStub output is not, any other op is quantized when all its tensor inputs are.
"""
from __future__ import annotations

import operator
from collections import Counter

import torch
import torch.fx
from torch import nn

from nndct_shared.messages import error, warn

from ..nn.modules import functional
from ..nn.stubs import DeQuantStub, QuantStub
from ..parse.tracer import source_of

__all__ = ["check_arithmetic", "check_stubs", "quantized_nodes", "reused_modules", "check_reuse"]

_ARITH_FUNCS = {operator.add: "+", operator.iadd: "+=", operator.sub: "-", operator.isub: "-=",
                torch.add: "torch.add", torch.sub: "torch.sub"}
_ARITH_METHODS = {"add": "Tensor.add", "add_": "Tensor.add_", "sub": "Tensor.sub", "sub_": "Tensor.sub_"}
_NOT_QUANTIZED_OPS = (QuantStub, DeQuantStub, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
_FUNCTIONAL = (functional.Add, functional.Sub)


def check_stubs(model: nn.Module, gm: torch.fx.GraphModule) -> None:
    """INPUT_NOT_QUANTIZED when the model has no QuantStub (nothing would be quantized)."""
    if any(isinstance(m, QuantStub) for m in model.modules()):
        return
    first = next((n for n in gm.graph.nodes if n.op == "placeholder"), None)
    raise error("INPUT_NOT_QUANTIZED", name=str(first.target) if first is not None else "<none>")


def quantized_nodes(gm: torch.fx.GraphModule) -> set[torch.fx.Node]:
    """The fx nodes inside a QuantStub/DeQuantStub region."""
    quantized: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "get_attr", "output"):
            continue
        if node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            if isinstance(module, QuantStub):
                quantized.add(node)
                continue
            if isinstance(module, DeQuantStub):
                continue
        inputs = [a for a in node.all_input_nodes if a.op != "get_attr"]
        if inputs and all(a in quantized for a in inputs):
            quantized.add(node)
    return quantized


def _innermost_module(gm: torch.fx.GraphModule, node: torch.fx.Node) -> tuple[str, type | None]:
    """(module path, module class) of the innermost module whose forward created `node`."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", None
    key, value = list(stack.items())[-1]
    path, kind = (value[0], value[1]) if isinstance(value, tuple) else (key, value)
    return path, kind if isinstance(kind, type) else None


def _arith_label(node: torch.fx.Node) -> str | None:
    if node.op == "call_function":
        return _ARITH_FUNCS.get(node.target)
    if node.op == "call_method":
        return _ARITH_METHODS.get(str(node.target))
    return None


def check_arithmetic(gm: torch.fx.GraphModule, quantized: set[torch.fx.Node]) -> None:
    """NOT_A_MODULE for `+`/`-`/torch.add/torch.sub on a quantized tensor outside a functional
    Add/Sub module."""
    for node in gm.graph.nodes:
        label = _arith_label(node)
        if label is None or not any(a in quantized for a in node.all_input_nodes):
            continue
        _, kind = _innermost_module(gm, node)
        if kind is None or not issubclass(kind, _FUNCTIONAL):
            raise error("NOT_A_MODULE", op=label, source=source_of(node))


def reused_modules(gm: torch.fx.GraphModule, quantized: set[torch.fx.Node]) -> dict[str, int]:
    """{module path: calls} of quantized modules called more than once in one forward."""
    calls: Counter[str] = Counter()
    for node in gm.graph.nodes:
        if node not in quantized:
            continue
        if node.op == "call_module":
            if not isinstance(gm.get_submodule(str(node.target)), _NOT_QUANTIZED_OPS):
                calls[str(node.target)] += 1
        elif _arith_label(node) is not None:
            path, kind = _innermost_module(gm, node)
            if kind is not None and issubclass(kind, _FUNCTIONAL):
                calls[path] += 1
    return {path: count for path, count in calls.items() if count > 1}


def check_reuse(gm: torch.fx.GraphModule, quantized: set[torch.fx.Node], allow: bool) -> dict[str, int]:
    """REUSED_MODULE (an error, or with `allow` a warning per module); returns the reused ones."""
    reused = reused_modules(gm, quantized)
    for path, count in reused.items():
        if not allow:
            raise error("REUSED_MODULE", module=path, count=count)
        warn("REUSED_MODULE", module=path, count=count)
    return reused

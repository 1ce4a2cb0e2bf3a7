"""`register_custom_op`: a Python function that the quantizer keeps as one opaque op.

The decorated function runs in float inside the quantized model (its inputs arrive quantized
and its output is quantized), is captured as one `custom` node with `op_name` = the op type and
the listed attributes, and is exported as an XIR custom op. The guide's signature: the first
argument is `ctx` (as in torch.autograd.Function), then tensors, then the attributes named in
`attrs_list`, in that order. Limits (as the guide's): one tensor output, no loops captured.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

import torch
import torch.fx

from nndct_shared.messages import error

__all__ = ["CustomOp", "custom_op_registry", "register_custom_op"]

_REGISTRY: dict[str, "CustomOp"] = {}


class _Ctx:
    """The `ctx` handed to a custom op; a plain namespace, as in inference there is no backward."""


class CustomOp:
    """A registered custom op: callable like the original function (without `ctx`)."""

    def __init__(self, op_type: str, fn: Callable[..., torch.Tensor], attrs_list: list[str]) -> None:
        self.op_type = op_type
        self.fn = fn
        self.attrs_list = list(attrs_list)
        params = list(inspect.signature(fn).parameters.values())
        if not params:
            raise TypeError(f"custom op {op_type!r}: the function must take 'ctx' first")
        self.signature = inspect.Signature(params[1:])
        unknown = [a for a in self.attrs_list if a not in self.signature.parameters]
        if unknown:
            raise TypeError(f"custom op {op_type!r}: attrs_list names {unknown}, which are not "
                            f"arguments of {fn.__name__}")
        functools.update_wrapper(self, fn)

    def split(self, args: tuple, kwargs: dict) -> tuple[list[Any], dict[str, Any]]:
        """(tensor inputs in argument order, {attr: value}) of one call."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        inputs, attrs = [], {}
        for name, value in bound.arguments.items():
            if name in self.attrs_list:
                attrs[name] = value
            else:
                inputs.append(value)
        return inputs, attrs

    def run(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Call the float function with a fresh ctx."""
        return self.fn(_Ctx(), *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        proxies = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.fx.Proxy)]
        if proxies:
            return proxies[0].tracer.create_proxy("call_function", self, args, kwargs)
        return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"CustomOp({self.op_type!r})"


def custom_op_registry() -> dict[str, CustomOp]:
    """A copy of the registered custom ops by op type."""
    return dict(_REGISTRY)


def register_custom_op(op_type: str, attrs_list: Optional[list[str]] = None) -> Callable[[Callable], CustomOp]:
    """Decorator registering `fn(ctx, *tensors, *attrs)` as custom op `op_type`.

    Registering a second function under an existing op type raises QUANTIZER_TORCH_OP_REGIST
    (re-registering the same function, e.g. when its module is reloaded, is allowed).
    """
    def decorate(fn: Callable[..., torch.Tensor]) -> CustomOp:
        existing = _REGISTRY.get(op_type)
        if existing is not None and (existing.fn.__module__, existing.fn.__qualname__) != (
                fn.__module__, fn.__qualname__):
            raise error("OP_REGIST", op_type=op_type)
        op = CustomOp(op_type, fn, attrs_list or [])
        _REGISTRY[op_type] = op
        return op

    return decorate

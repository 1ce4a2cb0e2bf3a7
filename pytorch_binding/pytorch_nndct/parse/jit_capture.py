"""Capture with `torch.jit.trace` (the reference's own capture) when torch.fx cannot trace.

Why: the user guide asks that "the float model should pass the jit trace test"; a model that
passes it but branches on tensor sizes, or uses Python torch.fx cannot follow, must still
capture. The trace records the ops run for `input_args` (branches taken, loops unrolled).

How: the traced TorchScript graph is rewritten as the torch.fx GraphModule that torch.fx would
have produced for the same code, so the lowering (`lower.py`) is the same for both captures
and an fx-traceable model gives the same neutral graph either way:

- a call of a submodule that fx keeps as a leaf (`QuantTracer.is_leaf_module`: torch.nn
  layers, QuantStub/DeQuantStub) is a `call_module` of its path; other submodules are walked
  into (their traced graphs), with `nn_module_stack` recording the path as fx does;
- parameters and buffers read in forward are `get_attr` nodes; tensor constants of the trace
  become attributes of the GraphModule;
- aten ops are mapped to the torch functions / Tensor methods the lowering knows, with
  torch.fx's node names (`relu`, `add_1`, `interpolate`, ...); `aten::size` and the
  integer bookkeeping around it stay Python values, as in fx;
- each node's `stack_trace` is built from the trace's source range, so messages quote the
  user's line as with fx.

An aten op without a mapping is the catalogued CNN_UNSUPPORTED_OP naming it.
"""
from __future__ import annotations

import collections
import inspect
import linecache
import operator
import re
import warnings
from typing import Any, Callable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from nndct_shared.messages import error

from ..nn.stubs import DeQuantStub, QuantStub

__all__ = ["jit_graph_module"]

_RANGE = re.compile(r"^(?P<file>.+)\((?P<line>\d+)\): (?P<func>.+)$")
_MULTI_OUTPUT_AS_ONE = ("aten::max", "aten::adaptive_max_pool1d", "aten::adaptive_max_pool2d")


class _ModuleRef:
    """A submodule value of the traced graph (the path of the module in the model)."""

    def __init__(self, path: str) -> None:
        self.path = path


def _stack_trace(node: torch._C.Node) -> str:
    """The node's source range as a Python traceback body (outermost frame first)."""
    frames = []
    for line in node.sourceRange().splitlines():
        match = _RANGE.match(line.strip())
        if match:
            code = linecache.getline(match["file"], int(match["line"])).strip()
            frames.append(f'  File "{match["file"]}", line {match["line"]}, in {match["func"]}\n    {code}')
    return "\n".join(reversed(frames))


# --- aten op -> fx node ------------------------------------------------------------------------------

Emit = Callable[["_Builder", list[Any]], Any]


def _fn(target: Any, *names: str, drop_none: bool = False) -> Emit:
    """call_function `target`: the first aten argument positional, the rest by `names`."""
    def emit(b: "_Builder", args: list[Any]) -> Any:
        kwargs = {n: v for n, v in zip(names, args[1:]) if n and not (drop_none and v is None)}
        return b.call("call_function", target, (args[0],), kwargs)
    return emit


def _pos(target: Any, count: int | None = None, kind: str = "call_function") -> Emit:
    """`target` with the first `count` aten arguments positional (all when None)."""
    def emit(b: "_Builder", args: list[Any]) -> Any:
        return b.call(kind, target, tuple(args if count is None else args[:count]), {})
    return emit


def _binary(op: Callable, name: str) -> Emit:
    def emit(b: "_Builder", args: list[Any]) -> Any:
        if len(args) > 2 and args[2] not in (None, 1):           # add / sub with alpha
            return b.call("call_function", getattr(torch, name), tuple(args[:2]), {"alpha": args[2]})
        return b.call("call_function", op, tuple(args[:2]), {})
    return emit


def _interpolate(mode: str) -> Emit:
    def emit(b: "_Builder", args: list[Any]) -> Any:
        x, size, rest = args[0], args[1], args[2:]
        align = rest.pop(0) if mode == "bilinear" else None
        scales = rest[0] if len(rest) == 1 else (rest if rest and rest[0] is not None else None)
        kwargs: dict[str, Any] = {"size": size} if scales is None else {"scale_factor": tuple(scales)}
        kwargs["mode"] = mode
        if mode == "bilinear":
            kwargs["align_corners"] = align
        return b.call("call_function", F.interpolate, (x,), kwargs)
    return emit


def _pad(mode: str | None) -> Emit:
    def emit(b: "_Builder", args: list[Any]) -> Any:
        if mode is None:                                   # aten::pad(x, pad, mode, value)
            return b.call("call_function", F.pad, (args[0], args[1]), {"mode": args[2], "value": args[3]})
        kwargs = {"mode": mode} if mode != "constant" else {"mode": mode, "value": args[2]}
        return b.call("call_function", F.pad, (args[0], args[1]), kwargs)
    return emit


def _hardtanh(b: "_Builder", args: list[Any]) -> Any:
    if (args[1], args[2]) == (0.0, 6.0):
        return b.call("call_function", F.relu6, (args[0],), {})
    return b.call("call_function", F.hardtanh, (args[0], args[1], args[2]), {})


def _reduce(target: Any) -> Emit:
    def emit(b: "_Builder", args: list[Any]) -> Any:
        if len(args) == 1 or (len(args) == 2 and args[1] is None):  # every axis (sum(x, dtype))
            return b.call("call_function", target, (args[0],), {})
        if len(args) == 2:                                          # max(a, b): elementwise
            return b.call("call_function", target, (args[0], args[1]), {})
        return b.call("call_function", target, (args[0], args[1], args[2]), {})
    return emit


def _method(name: str, count: int | None = None) -> Emit:
    return _pos(name, count, kind="call_method")


def _same(b: "_Builder", args: list[Any]) -> Any:
    return args[0]


_ATEN: dict[str, Emit] = {
    # activations
    "aten::relu": _pos(torch.relu, 1), "aten::relu_": _pos(torch.relu, 1),
    "aten::relu6": _pos(F.relu6, 1), "aten::sigmoid": _pos(torch.sigmoid, 1),
    "aten::tanh": _pos(torch.tanh, 1), "aten::hardswish": _pos(F.hardswish, 1),
    "aten::hardswish_": _pos(F.hardswish, 1), "aten::hardsigmoid": _pos(F.hardsigmoid, 1),
    "aten::hardsigmoid_": _pos(F.hardsigmoid, 1), "aten::silu": _pos(F.silu, 1),
    "aten::silu_": _pos(F.silu, 1), "aten::gelu": _fn(F.gelu, "approximate"),
    "aten::elu": _fn(F.elu, "alpha"), "aten::leaky_relu": _pos(F.leaky_relu, 2),
    "aten::leaky_relu_": _pos(F.leaky_relu, 2), "aten::hardtanh": _hardtanh, "aten::hardtanh_": _hardtanh,
    "aten::prelu": _pos(F.prelu, 2), "aten::softmax": _pos(F.softmax, 2),
    "aten::clamp": _pos(torch.clamp, 3), "aten::clip": _pos(torch.clamp, 3),
    "aten::clamp_min": _fn(torch.clamp, "min"), "aten::clamp_max": _fn(torch.clamp, "max"),
    # arithmetic
    "aten::add": _binary(operator.add, "add"), "aten::add_": _binary(operator.add, "add"),
    "aten::sub": _binary(operator.sub, "sub"), "aten::sub_": _binary(operator.sub, "sub"),
    "aten::mul": _binary(operator.mul, "mul"), "aten::mul_": _binary(operator.mul, "mul"),
    "aten::rsub": lambda b, a: b.call("call_function", operator.sub, (a[1], a[0]), {}),
    "aten::div": _pos(operator.truediv, 2), "aten::neg": _pos(operator.neg, 1),
    "aten::matmul": _pos(torch.matmul, 2), "aten::bmm": _pos(torch.bmm, 2),
    # shapes and data movement
    "aten::cat": _pos(torch.cat, 2), "aten::flatten": _pos(torch.flatten, 3),
    "aten::view": _method("view", 2), "aten::reshape": _method("reshape", 2),
    "aten::contiguous": _method("contiguous", 1), "aten::permute": _method("permute", 2),
    "aten::transpose": _pos(torch.transpose, 3), "aten::t": _pos(torch.t, 1),
    "aten::unsqueeze": _pos(torch.unsqueeze, 2), "aten::chunk": _method("chunk", 3),
    "aten::split": _pos(torch.split, 3), "aten::split_with_sizes": _pos(torch.split, 3),
    "aten::constant_pad_nd": _pad("constant"), "aten::reflection_pad1d": _pad("reflect"),
    "aten::reflection_pad2d": _pad("reflect"), "aten::replication_pad1d": _pad("replicate"),
    "aten::replication_pad2d": _pad("replicate"), "aten::pad": _pad(None),
    "aten::upsample_nearest2d": _interpolate("nearest"), "aten::upsample_bilinear2d": _interpolate("bilinear"),
    "aten::size": _method("size"), "aten::dropout": _pos(F.dropout, 3),
    "aten::feature_dropout": _pos(F.dropout2d, 3), "aten::detach": _method("detach", 1),
    "aten::clone": _method("clone", 1),
    # pooling and reductions
    "aten::max_pool1d": _pos(F.max_pool1d, 6), "aten::max_pool2d": _pos(F.max_pool2d, 6),
    "aten::avg_pool1d": _pos(F.avg_pool1d, 6), "aten::avg_pool2d": _pos(F.avg_pool2d, 7),
    "aten::adaptive_avg_pool1d": _pos(F.adaptive_avg_pool1d, 2),
    "aten::adaptive_avg_pool2d": _pos(F.adaptive_avg_pool2d, 2),
    "aten::adaptive_max_pool1d": _pos(F.adaptive_max_pool1d, 2),
    "aten::adaptive_max_pool2d": _pos(F.adaptive_max_pool2d, 2),
    "aten::mean": _reduce(torch.mean), "aten::sum": _reduce(torch.sum), "aten::amax": _pos(torch.amax, 3),
    "aten::max": _reduce(torch.max),
    # norms
    "aten::layer_norm": _pos(F.layer_norm, 5), "aten::group_norm": _pos(F.group_norm, 5),
    "aten::instance_norm": lambda b, a: b.call("call_function", F.instance_norm,
                                               (a[0], a[3], a[4], a[1], a[2], a[5], a[6], a[7]), {}),
    # Python numbers around x.size()
    "prim::NumToTensor": _same, "aten::Int": _same, "aten::Float": _same, "aten::ScalarImplicit": _same,
}


# --- the walk ----------------------------------------------------------------------------------------


class _Builder:
    """Builds the fx graph of one traced model."""

    def __init__(self, model: nn.Module, traced: torch.jit.ScriptModule, is_leaf: Callable[[nn.Module, str], bool]) -> None:
        self.model = model
        self.traced = traced
        self.is_leaf = is_leaf
        self.graph = torch.fx.Graph()
        self.root: dict[str, Any] = {}
        self.attrs: dict[str, torch.fx.Node] = {}
        self.stack: list[tuple[str, type]] = []
        self.trace = ""
        self.consts = 0

    def call(self, kind: str, target: Any, args: tuple, kwargs: dict) -> torch.fx.Node:
        node = self.graph.create_node(kind, target, args, kwargs)
        if self.stack or kind == "call_module":
            stack = list(self.stack)
            if kind == "call_module":
                stack.append((target, type(self.model.get_submodule(target))))
            node.meta["nn_module_stack"] = collections.OrderedDict((p, (p, t)) for p, t in stack)
        node.stack_trace = self.trace
        return node

    def get_attr(self, path: str, value: Any) -> torch.fx.Node:
        if path not in self.attrs:
            self.root[path] = value
            self.attrs[path] = self.graph.get_attr(path)
        return self.attrs[path]

    def constant(self, value: torch.Tensor) -> torch.fx.Node:
        path = f"_jit_constant_{self.consts}"
        self.consts += 1
        return self.get_attr(path, value)

    def build(self, inputs: tuple[Any, ...]) -> torch.fx.GraphModule:
        graph = self.traced.graph
        values = list(graph.inputs())
        env: dict[Any, Any] = {values[0]: _ModuleRef("")}
        names = list(inspect.signature(self.model.forward).parameters)
        for i, value in enumerate(values[1:]):
            env[value] = self.graph.placeholder(names[i] if i < len(names) else f"input_{i}")
        result = self.walk(graph, env)
        self.graph.output(result)
        for node in list(self.graph.nodes):                 # unread pieces (max's indices, ...)
            if node.target is operator.getitem and not node.users:
                self.graph.erase_node(node)
        return torch.fx.GraphModule(self.root, self.graph, type(self.model).__name__)

    def walk(self, graph: torch._C.Graph, env: dict[Any, Any]) -> Any:
        for node in graph.nodes():
            self.trace = _stack_trace(node)
            self.node(node, env)
        outputs = [env[v] for v in graph.return_node().inputs()]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def node(self, node: torch._C.Node, env: dict[Any, Any]) -> None:
        kind = node.kind()
        inputs = [env[v] for v in node.inputs()]
        outputs = list(node.outputs())
        if kind == "prim::Constant":
            value = node.output().toIValue() if node.hasAttributes() else None
            env[outputs[0]] = self.constant(value) if isinstance(value, torch.Tensor) else value
        elif kind == "prim::GetAttr":
            self.get_attribute(node, inputs[0], outputs[0], env)
        elif kind == "prim::CallMethod":
            self.call_method(node, inputs, outputs[0], env)
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            env[outputs[0]] = list(inputs) if kind == "prim::ListConstruct" else tuple(inputs)
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            self.unpack(inputs[0], outputs, env)
        elif kind in ("prim::TupleIndex", "aten::__getitem__"):
            base, index = inputs
            env[outputs[0]] = base[index] if isinstance(base, (list, tuple)) else \
                self.call("call_function", operator.getitem, (base, index), {})
        elif kind in _ATEN:
            result = _ATEN[kind](self, inputs)
            if len(outputs) > 1 and kind in _MULTI_OUTPUT_AS_ONE:
                self.unpack(result, outputs, env)
            else:
                env[outputs[0]] = result
        else:
            raise error("CNN_UNSUPPORTED_OP", op=kind, source=_user_line(self.trace),
                        detail=" (captured with torch.jit.trace: this TorchScript op has no capture rule)")

    def unpack(self, base: Any, outputs: list[Any], env: dict[Any, Any]) -> None:
        for i, value in enumerate(outputs):
            env[value] = base[i] if isinstance(base, (list, tuple)) else \
                self.call("call_function", operator.getitem, (base, i), {})

    def get_attribute(self, node: torch._C.Node, base: Any, output: Any, env: dict[Any, Any]) -> None:
        if not isinstance(base, _ModuleRef):
            raise error("CNN_UNSUPPORTED_OP", op="prim::GetAttr", source=_user_line(self.trace),
                        detail=" (an attribute of a value that is not a module)")
        name = node.s("name")
        path = f"{base.path}.{name}" if base.path else name
        value = getattr(self.model.get_submodule(base.path) if base.path else self.model, name)
        if isinstance(value, nn.Module):
            env[output] = _ModuleRef(path)
        elif isinstance(value, torch.Tensor):
            env[output] = self.get_attr(path, value)
        else:
            env[output] = value

    def call_method(self, node: torch._C.Node, inputs: list[Any], output: Any, env: dict[Any, Any]) -> None:
        ref, args = inputs[0], inputs[1:]
        if not isinstance(ref, _ModuleRef) or node.s("name") != "forward":
            raise error("CNN_UNSUPPORTED_OP", op=f"method {node.s('name')}", source=_user_line(self.trace),
                        detail=" (only calls of a submodule's forward are captured)")
        module = self.model.get_submodule(ref.path)
        if not args and node.output().type().kind() == "NoneType":
            env[output] = None       # an identity layer (nn.Identity) the trace cut out of the data path
            return
        if self.is_leaf(module, ref.path):
            self.root[ref.path] = module
            env[output] = self.call("call_module", ref.path, tuple(args), {})
            return
        sub = self.traced.get_submodule(ref.path)
        values = list(sub.graph.inputs())
        sub_env: dict[Any, Any] = {values[0]: ref, **dict(zip(values[1:], args))}
        self.stack.append((ref.path, type(module)))
        try:
            env[output] = self.walk(sub.graph, sub_env)
        finally:
            self.stack.pop()


def _user_line(stack_trace: str) -> str:
    from .tracer import source_of

    node = torch.fx.Graph().placeholder("x")
    node.stack_trace = stack_trace
    return source_of(node)


def jit_graph_module(model: nn.Module, inputs: tuple[Any, ...],
                     is_leaf: Callable[[nn.Module, str], bool]) -> torch.fx.GraphModule:
    """The fx GraphModule of `model` captured with torch.jit.trace on `inputs` (see the module
    docstring). torch.jit.trace's own failures propagate (the caller reports them).

    QuantStub / DeQuantStub are identities, which a trace drops (the call is left without its
    input); during the trace they copy their input instead, so the boundaries of the quantized
    regions stay in the traced graph."""
    stubs = [m for m in model.modules() if isinstance(m, (QuantStub, DeQuantStub))]
    for stub in stubs:
        stub.forward = _copy
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")      # TracerWarnings: the trace follows input_args, by design
            traced = torch.jit.trace(model, inputs, check_trace=False, strict=False)
    finally:
        for stub in stubs:
            del stub.forward
    return _Builder(model, traced, is_leaf).build(inputs)


def _copy(x: torch.Tensor) -> torch.Tensor:
    return x.clone()

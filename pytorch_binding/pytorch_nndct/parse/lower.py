"""Lowering of an fx-traced float model to the neutral CNN `Graph` (contract: the op registry, nndct_shared/graph/ops).

What happens here and why:
- every torch op is mapped to one op of the contract (attrs normalised: tuples in torch order,
  dims made non-negative), or rejected with the op and the user's source line;
- BatchNorm after a conv/linear is folded into it (the DPU has no BatchNorm); a standalone one
  becomes `scale`;
- LeakyReLU with slope 0.1 becomes 0.1015625 (26/256, the only slope the DPU has), with the
  guide's warning; ReLU6 becomes ReLU and SiLU Hardswish when the config says so
  (convert_relu6_to_relu, convert_silu_to_hswish), each with the guide's warning
  (REPLACE_RELU6, REPLACE_SILU); a BatchNorm with affine=False is read as affine with weight 1
  and bias 0, with BATCHNORM_AFFINE, as the reference does when parsing;
- Dropout, Identity and `.contiguous()` disappear; `x.size()` and friends are shape
  bookkeeping, resolved from the traced shapes;
- QuantStub / DeQuantStub are not nodes: they decide which nodes run quantized.

Names follow the reference's scheme: `<Model>::input_<k>` for inputs, `<Model>::<scope>/<fx
name>` for ops, where scope is the module path as `Model/Sequential[layer1]/Conv2d[conv]`;
params are `<Model>::<module path>.<param>` (e.g. `FFN::l1.weight`).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.operator_schemas import normalize_function

from nndct_shared.cnn import bn_as_scale, fold_bn
from nndct_shared.cnn.capture import CapturedModel
from nndct_shared.graph import Graph, Tensor
from nndct_shared.graph.ops import get_op
from nndct_shared.messages import error, warn

from ..nn.stubs import DeQuantStub, QuantStub
from ..utils.custom_op import CustomOp
from .lower_ops import OpRules
from .tracer import source_of, trace_model

__all__ = ["CapturedModel", "capture_model", "DPU_LEAKY_SLOPE"]

#: The LeakyReLU slope of the DPU (26/256), used instead of 0.1.
DPU_LEAKY_SLOPE = 0.1015625


@dataclass
class _Value:
    """A traced tensor: its graph tensor name and whether it is in a quantized region."""

    tensor: str
    quantized: bool


class _Const:
    """A non-graph value (a number, a shape, a parameter tensor read with get_attr)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _pair(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


_ACT_MODULES: dict[type, str] = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Sigmoid: "sigmoid",
                                 nn.Tanh: "tanh", nn.Hardswish: "hardswish"}
_ACT_FUNCS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.hardswish: "hardswish",
}
_ACT_METHODS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_BINARY_FUNCS: dict[Any, str] = {
    operator.add: "add", operator.iadd: "add", torch.add: "add",
    operator.sub: "sub", operator.isub: "sub", torch.sub: "sub",
    operator.mul: "mul", operator.imul: "mul", torch.mul: "mul",
}
_BINARY_METHODS = {"add": "add", "sub": "sub", "mul": "mul", "add_": "add", "sub_": "sub", "mul_": "mul"}
_ALIAS_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)
_ALIAS_FUNCS = (F.dropout, F.dropout1d, F.dropout2d)
_ALIAS_METHODS = ("contiguous", "clone", "detach")
_SHAPE_METHODS = ("size", "dim")
_POOL_FUNCS: dict[Any, str] = {
    F.max_pool1d: "max_pool1d", F.max_pool2d: "max_pool2d", F.avg_pool1d: "avg_pool1d",
    F.avg_pool2d: "avg_pool2d", F.adaptive_avg_pool1d: "adaptive_avg_pool1d",
    F.adaptive_avg_pool2d: "adaptive_avg_pool2d", F.adaptive_max_pool1d: "adaptive_max_pool1d",
    F.adaptive_max_pool2d: "adaptive_max_pool2d",
    # return_indices=True traces to the *_with_indices functions; captured only to name the reason
    F.adaptive_max_pool1d_with_indices: "adaptive_max_pool1d",
    F.adaptive_max_pool2d_with_indices: "adaptive_max_pool2d",
}


class _Lowering(OpRules):
    """One pass over the fx graph, building the neutral graph (the rules of the ops added for
    users' real models are `lower_ops.OpRules`)."""

    def __init__(self, model: nn.Module, gm: torch.fx.GraphModule, model_name: str, has_stubs: bool,
                 convert_relu6_to_relu: bool, convert_silu_to_hswish: bool) -> None:
        self.model = model
        self.gm = gm
        self.name = model_name
        self.has_stubs = has_stubs
        self.relu6_to_relu = convert_relu6_to_relu
        self.silu_to_hswish = convert_silu_to_hswish
        self.graph = Graph(model_name)
        self.captured = CapturedModel(self.graph)
        self.env: dict[torch.fx.Node, Any] = {}
        self.inputs = 0

    # --- helpers --------------------------------------------------------------------------

    def _fail(self, fx_node: torch.fx.Node, op: str, detail: str = "") -> Exception:
        return error("CNN_UNSUPPORTED_OP", op=op, source=source_of(fx_node),
                     detail=f" ({detail})" if detail else "")

    def _scope(self, fx_node: torch.fx.Node, module_path: str | None = None) -> str:
        parts = [self.name]
        stack = fx_node.meta.get("nn_module_stack") or {}
        paths = [v[0] if isinstance(v, tuple) else k for k, v in stack.items()]
        if module_path is not None:
            paths = [p for p in paths if p != module_path] + [module_path]
        for path in paths:
            if not path:
                continue
            module = _submodule(self.model, path)
            attr = path.rsplit(".", 1)[-1]
            parts.append(f"{type(module).__name__ if module is not None else 'Module'}[{attr}]")
        return "/".join(parts)

    def _node_name(self, fx_node: torch.fx.Node, module_path: str | None = None) -> str:
        return f"{self.name}::{self._scope(fx_node, module_path)}/{fx_node.name}"

    def _param_name(self, path: str, attr: str) -> str:
        return f"{self.name}::{path}.{attr}" if path else f"{self.name}::{attr}"

    def _shape(self, fx_node: torch.fx.Node) -> tuple[int, ...]:
        meta = fx_node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise self._fail(fx_node, _op_label(fx_node), "its result is not a single tensor")
        return tuple(int(d) for d in meta.shape)

    def _tensor(self, fx_node: torch.fx.Node, arg: Any) -> _Value:
        value = self.env.get(arg) if isinstance(arg, torch.fx.Node) else None
        if not isinstance(value, _Value):
            raise self._fail(fx_node, _op_label(fx_node), "an operand that should be a tensor is not "
                             "produced by a captured op")
        return value

    def _const(self, arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            value = self.env.get(arg)
            if isinstance(value, _Const):
                return value.value
            return value
        if isinstance(arg, (list, tuple)):
            return type(arg)(self._const(a) for a in arg)
        return arg

    def _add(self, fx_node: torch.fx.Node, op_type: str, inputs: list[_Value], *,
             attrs: dict[str, Any] | None = None, params: dict[str, Tensor] | None = None,
             module_path: str | None = None, layer_type: str | None = None,
             name: str | None = None) -> _Value:
        name = name or self._node_name(fx_node, module_path)
        quantized = all(v.quantized for v in inputs) if inputs else not self.has_stubs
        self.graph.add(name, op_type, [v.tensor for v in inputs], attrs=attrs or {}, params=params or {},
                       shape=self._shape(fx_node))
        self.captured.layer_types[name] = layer_type or op_type
        self.captured.sources[name] = source_of(fx_node)
        if quantized:
            self.captured.quantized.add(name)
        value = _Value(name, quantized)
        self.env[fx_node] = value
        return value

    @staticmethod
    def _ndim_axis(axis: int, ndim: int) -> int:
        return axis + ndim if axis < 0 else axis

    # --- node kinds -----------------------------------------------------------------------

    def run(self) -> CapturedModel:
        for fx_node in self.gm.graph.nodes:
            handler: Callable[[torch.fx.Node], None] = getattr(self, f"_do_{fx_node.op}")
            handler(fx_node)
        return self.captured

    def _do_placeholder(self, fx_node: torch.fx.Node) -> None:
        name = f"{self.name}::input_{self.inputs}"
        self.inputs += 1
        self.graph.add(name, "input", [], shape=self._shape(fx_node))
        self.captured.layer_types[name] = "input"
        self.captured.sources[name] = f"argument '{fx_node.target}' of forward()"
        quantized = not self.has_stubs
        if quantized:
            self.captured.quantized.add(name)
        self.env[fx_node] = _Value(name, quantized)

    def _do_get_attr(self, fx_node: torch.fx.Node) -> None:
        value = _getattr_path(self.gm, str(fx_node.target))
        self.env[fx_node] = _Const(value)

    def _do_output(self, fx_node: torch.fx.Node) -> None:
        result = fx_node.args[0]
        items = list(result) if isinstance(result, (list, tuple)) else [result]
        names = []
        for item in items:
            value = self._tensor(fx_node, item)
            producer = self.graph.producer(value.tensor)
            names.append(producer.name)
        self.graph.set_outputs(names)
        self.captured.output_names = names

    def _do_call_module(self, fx_node: torch.fx.Node) -> None:
        path = str(fx_node.target)
        module = self.gm.get_submodule(path)
        layer_type = f"{type(module).__module__.split('.modules')[0]}.{type(module).__name__}"
        if isinstance(module, (QuantStub, DeQuantStub)):
            value = self._tensor(fx_node, fx_node.args[0])
            if isinstance(module, QuantStub) and not value.quantized:
                producer = self.graph.producer(value.tensor)
                self.captured.quant_inputs.add(producer.name)
            self.env[fx_node] = _Value(value.tensor, isinstance(module, QuantStub))
            return
        if isinstance(module, _ALIAS_MODULES):
            self.env[fx_node] = self._tensor(fx_node, fx_node.args[0])
            return
        x = self._tensor(fx_node, fx_node.args[0])
        kw = dict(module_path=path, layer_type=layer_type)
        if isinstance(module, nn.Linear):
            self._add(fx_node, "linear", [x], params=self._weights(module, path), **kw)
        elif type(module) in (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d):
            self._conv(fx_node, module, x, path, kw)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self._batchnorm(fx_node, module, x, path, kw)
        elif type(module) in _ACT_MODULES:
            self._add(fx_node, self._replaced(fx_node, _ACT_MODULES[type(module)], path), [x], **kw)
        elif isinstance(module, nn.LeakyReLU):
            self._leaky(fx_node, x, float(module.negative_slope), kw)
        elif isinstance(module, nn.SiLU) and self.silu_to_hswish:
            self._add(fx_node, self._replaced(fx_node, "silu", path), [x], **kw)
        elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            op = {nn.MaxPool1d: "max_pool1d", nn.MaxPool2d: "max_pool2d", nn.AvgPool1d: "avg_pool1d",
                  nn.AvgPool2d: "avg_pool2d"}[type(module)]
            self._pool(fx_node, op, x, {k: getattr(module, k, None) for k in (
                "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
                "count_include_pad", "divisor_override")}, kw)
        elif isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            op = "adaptive_avg_pool1d" if isinstance(module, nn.AdaptiveAvgPool1d) else "adaptive_avg_pool2d"
            self._adaptive(fx_node, op, x, module.output_size, kw)
        elif isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            op = "adaptive_max_pool1d" if isinstance(module, nn.AdaptiveMaxPool1d) else "adaptive_max_pool2d"
            if module.return_indices:
                raise self._fail(fx_node, op, "return_indices=True")
            self._adaptive(fx_node, op, x, module.output_size, kw)
        elif isinstance(module, nn.Flatten):
            self._flatten(fx_node, x, module.start_dim, module.end_dim, kw)
        elif isinstance(module, nn.Softmax):
            self._softmax(fx_node, x, module.dim, kw)
        elif not self._extra_module(fx_node, module, x, path, kw):
            raise self._fail(fx_node, f"{layer_type} (module '{path}')")

    def _do_call_function(self, fx_node: torch.fx.Node) -> None:
        target = fx_node.target
        if isinstance(target, CustomOp):
            self._custom(fx_node, target)
            return
        if self._extra_function(fx_node):
            return
        if target in _ALIAS_FUNCS:
            self.env[fx_node] = self._tensor(fx_node, fx_node.args[0])
            return
        if target is operator.getitem or target is getattr:
            base = self.env.get(fx_node.args[0]) if isinstance(fx_node.args[0], torch.fx.Node) else None
            if isinstance(base, _Const):
                self.env[fx_node] = _Const(None)  # shape bookkeeping (x.size(0), x.shape[1])
                return
            if target is getattr and isinstance(base, _Value) and fx_node.args[1] in ("shape",):
                self.env[fx_node] = _Const(self._shape(fx_node.args[0]))
                return
            raise self._fail(fx_node, _op_label(fx_node), "indexing tensors is not supported")
        if target in _ACT_FUNCS:
            self._add(fx_node, self._replaced(fx_node, _ACT_FUNCS[target]), [self._tensor(fx_node, fx_node.args[0])])
            return
        if target is F.leaky_relu:
            kwargs = _normalized(target, fx_node)
            self._leaky(fx_node, self._tensor(fx_node, kwargs["input"]), float(kwargs["negative_slope"]), {})
            return
        if target is F.silu and self.silu_to_hswish:
            self._add(fx_node, self._replaced(fx_node, "silu"), [self._tensor(fx_node, fx_node.args[0])])
            return
        if target in _BINARY_FUNCS:
            if target in (torch.add, torch.sub) and self._const(fx_node.kwargs.get("alpha", 1)) != 1:
                raise self._fail(fx_node, _op_label(fx_node), "alpha != 1")
            self._binary(fx_node, _BINARY_FUNCS[target], fx_node.args[0], fx_node.args[1])
            return
        if target in _POOL_FUNCS:
            kwargs = _normalized(target, fx_node)
            x = self._tensor(fx_node, kwargs.pop("input"))
            op = _POOL_FUNCS[target]
            if op.startswith("adaptive"):
                if self._const(kwargs.get("return_indices", False)):
                    raise self._fail(fx_node, op, "return_indices=True")
                self._adaptive(fx_node, op, x, self._const(kwargs["output_size"]), {})
            else:
                self._pool(fx_node, op, x, {k: self._const(v) for k, v in kwargs.items()}, {})
            return
        if target in (torch.cat, torch.concat, torch.concatenate):
            kwargs = _normalized(target, fx_node)
            tensors = [self._tensor(fx_node, t) for t in kwargs["tensors"]]
            dim = self._const(kwargs.get("dim", kwargs.get("axis", 0)))
            ndim = len(self._shape(fx_node))
            self._add(fx_node, "concat", tensors, attrs={"axis": self._ndim_axis(int(dim), ndim)})
            return
        if target is torch.flatten:
            kwargs = _normalized(target, fx_node)
            self._flatten(fx_node, self._tensor(fx_node, kwargs["input"]), self._const(kwargs.get("start_dim", 0)),
                          self._const(kwargs.get("end_dim", -1)), {})
            return
        if target is torch.reshape:
            self._reshape(fx_node, self._tensor(fx_node, fx_node.args[0]))
            return
        if target is torch.mean:
            self._mean(fx_node, fx_node.args, fx_node.kwargs)
            return
        if target in (F.softmax, torch.softmax):
            kwargs = _normalized(target, fx_node)
            self._softmax(fx_node, self._tensor(fx_node, kwargs["input"]), self._const(kwargs["dim"]), {})
            return
        raise self._fail(fx_node, _op_label(fx_node))

    def _do_call_method(self, fx_node: torch.fx.Node) -> None:
        method = str(fx_node.target)
        if method in _SHAPE_METHODS:
            self.env[fx_node] = _Const(None)
            return
        if method in _ALIAS_METHODS:
            self.env[fx_node] = self._tensor(fx_node, fx_node.args[0])
            return
        if self._extra_method(fx_node):
            return
        x = self._tensor(fx_node, fx_node.args[0])
        if method in _ACT_METHODS:
            self._add(fx_node, _ACT_METHODS[method], [x])
        elif method in _BINARY_METHODS:
            if self._const(fx_node.kwargs.get("alpha", 1)) != 1:
                raise self._fail(fx_node, _op_label(fx_node), "alpha != 1")
            self._binary(fx_node, _BINARY_METHODS[method], fx_node.args[0], fx_node.args[1])
        elif method in ("view", "reshape"):
            self._reshape(fx_node, x)
        elif method == "flatten":
            args = [self._const(a) for a in fx_node.args[1:]]
            start = fx_node.kwargs.get("start_dim", args[0] if args else 0)
            end = fx_node.kwargs.get("end_dim", args[1] if len(args) > 1 else -1)
            self._flatten(fx_node, x, self._const(start), self._const(end), {})
        elif method == "mean":
            self._mean(fx_node, fx_node.args, fx_node.kwargs)
        elif method == "softmax":
            dim = fx_node.kwargs.get("dim", fx_node.args[1] if len(fx_node.args) > 1 else None)
            self._softmax(fx_node, x, self._const(dim), {})
        else:
            raise self._fail(fx_node, _op_label(fx_node))

    # --- ops ------------------------------------------------------------------------------

    def _weights(self, module: nn.Module, path: str) -> dict[str, Tensor]:
        params = {"weight": Tensor(self._param_name(path, "weight"), data=_np(module.weight))}
        if getattr(module, "bias", None) is not None:
            params["bias"] = Tensor(self._param_name(path, "bias"), data=_np(module.bias))
        return params

    def _conv(self, fx_node: torch.fx.Node, module: nn.Module, x: _Value, path: str, kw: dict) -> None:
        if isinstance(module.padding, str):
            raise self._fail(fx_node, kw["layer_type"], f"padding='{module.padding}'; give the padding "
                             "as numbers")
        if module.padding_mode != "zeros":
            raise self._fail(fx_node, kw["layer_type"], f"padding_mode='{module.padding_mode}'")
        n = 1 if isinstance(module, nn.Conv1d) else 2
        attrs = {"kernel": _pair(module.kernel_size, n), "stride": _pair(module.stride, n),
                 "padding": _pair(module.padding, n), "dilation": _pair(module.dilation, n),
                 "groups": int(module.groups)}
        op = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.ConvTranspose2d: "conv_transpose2d"}[type(module)]
        if op == "conv_transpose2d":
            attrs["output_padding"] = _pair(module.output_padding, n)
        self._add(fx_node, op, [x], attrs=attrs, params=self._weights(module, path), **kw)

    def _batchnorm(self, fx_node: torch.fx.Node, module: nn.Module, x: _Value, path: str, kw: dict) -> None:
        if module.running_mean is None or module.running_var is None:
            raise self._fail(fx_node, kw["layer_type"], "track_running_stats=False: an inference "
                             "BatchNorm needs running statistics")
        # affine=False: gamma 1, beta 0 (the guide's warning is BatchNorm's; an InstanceNorm with
        # running statistics folded here is affine=False by default)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and (module.weight is None or module.bias is None):
            warn("BATCHNORM_AFFINE", node=self._node_name(fx_node, path))
        stats = (_np(module.running_mean), _np(module.running_var), float(module.eps),
                 None if module.weight is None else _np(module.weight),
                 None if module.bias is None else _np(module.bias))
        producer = self.graph.producer(x.tensor)
        src = fx_node.args[0]
        axis = None if producer is None else get_op(producer.op_type).weight_axis  # output channels
        foldable = (axis is not None and len(src.users) == 1
                    and producer.name not in self.captured.output_names
                    and not (producer.op_type == "conv_transpose2d" and producer.attrs["groups"] != 1))
        if foldable:
            weight = producer.params["weight"]
            bias = producer.params.get("bias")
            w, b = fold_bn(weight.data, None if bias is None else bias.data, axis, *stats)
            producer.params["weight"] = Tensor(weight.name, data=w)
            bias_name = bias.name if bias is not None else weight.name.rsplit(".", 1)[0] + ".bias"
            producer.params["bias"] = Tensor(bias_name, data=b)
            self.env[fx_node] = x
            return
        w, b = bn_as_scale(*stats)
        params = {"weight": Tensor(self._param_name(path, "weight"), data=w),
                  "bias": Tensor(self._param_name(path, "bias"), data=b)}
        self._add(fx_node, "scale", [x], attrs={"axis": 1}, params=params, **kw)

    def _replaced(self, fx_node: torch.fx.Node, op: str, module_path: str | None = None) -> str:
        """`op`, or what the config converts it to (convert_relu6_to_relu: relu6 -> relu,
        convert_silu_to_hswish: silu -> hardswish), with the guide's REPLACE_RELU6 / REPLACE_SILU
        warning naming the node."""
        if op == "relu6" and self.relu6_to_relu:
            warn("REPLACE_RELU6", node=self._node_name(fx_node, module_path))
            return "relu"
        if op == "silu":
            warn("REPLACE_SILU", node=self._node_name(fx_node, module_path))
            return "hardswish"
        return op

    def _leaky(self, fx_node: torch.fx.Node, x: _Value, slope: float, kw: dict) -> None:
        if slope == 0.1:
            warn("LEAKYRELU", node=self._node_name(fx_node, kw.get("module_path")), slope=slope)
            slope = DPU_LEAKY_SLOPE
        self._add(fx_node, "leaky_relu", [x], attrs={"alpha": slope}, **kw)

    def _pool(self, fx_node: torch.fx.Node, op: str, x: _Value, p: dict[str, Any], kw: dict) -> None:
        n = 1 if op.endswith("1d") else 2
        if p.get("return_indices"):
            raise self._fail(fx_node, op, "return_indices=True")
        if p.get("dilation") not in (None, 1, (1,) * n, [1] * n):
            raise self._fail(fx_node, op, "dilation != 1")
        if p.get("divisor_override") is not None:
            raise self._fail(fx_node, op, "divisor_override")
        kernel = _pair(p["kernel_size"], n)
        stride = p.get("stride")
        attrs = {"kernel": kernel, "stride": kernel if stride in (None, [], ()) else _pair(stride, n),
                 "padding": _pair(p.get("padding") or 0, n), "ceil_mode": bool(p.get("ceil_mode"))}
        if op.startswith("avg"):
            attrs["count_include_pad"] = bool(p.get("count_include_pad", True))
        self._add(fx_node, op, [x], attrs=attrs, **kw)

    def _adaptive(self, fx_node: torch.fx.Node, op: str, x: _Value, output_size: Any, kw: dict) -> None:
        n = 1 if op.endswith("1d") else 2
        in_shape = self.graph.tensor(x.tensor).shape
        sizes = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * n
        sizes = tuple(int(in_shape[2 + i]) if s is None else int(s) for i, s in enumerate(sizes))
        self._add(fx_node, op, [x], attrs={"output_size": sizes}, **kw)

    def _flatten(self, fx_node: torch.fx.Node, x: _Value, start: int, end: int, kw: dict) -> None:
        ndim = len(self.graph.tensor(x.tensor).shape)
        self._add(fx_node, "flatten", [x], attrs={"start_dim": self._ndim_axis(int(start), ndim),
                                                  "end_dim": self._ndim_axis(int(end), ndim)}, **kw)

    def _reshape(self, fx_node: torch.fx.Node, x: _Value) -> None:
        self._add(fx_node, "reshape", [x], attrs={"shape": self._shape(fx_node)})

    def _softmax(self, fx_node: torch.fx.Node, x: _Value, dim: Any, kw: dict) -> None:
        if dim is None:
            raise self._fail(fx_node, "softmax", "dim must be given")
        ndim = len(self.graph.tensor(x.tensor).shape)
        self._add(fx_node, "softmax", [x], attrs={"dim": self._ndim_axis(int(dim), ndim)}, **kw)

    def _mean(self, fx_node: torch.fx.Node, args: tuple, kwargs: dict) -> None:
        x = self._tensor(fx_node, args[0])
        ndim = len(self.graph.tensor(x.tensor).shape)
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
        dims = self._const(dims)
        if dims is None:
            dims = tuple(range(ndim))
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if kwargs.get("dtype") is not None:
            raise self._fail(fx_node, "mean", "dtype=")
        self._add(fx_node, "mean", [x], attrs={"dims": tuple(self._ndim_axis(int(d), ndim) for d in dims),
                                               "keepdim": bool(self._const(keepdim))})

    def _binary(self, fx_node: torch.fx.Node, op: str, a: Any, b: Any) -> None:
        values = [self.env.get(v) if isinstance(v, torch.fx.Node) else _Const(v) for v in (a, b)]
        tensors = [v for v in values if isinstance(v, _Value)]
        if len(tensors) == 2:
            self._add(fx_node, op, tensors)
            return
        if len(tensors) != 1:
            raise self._fail(fx_node, _op_label(fx_node), "neither operand is a captured tensor")
        index = 0 if not isinstance(values[0], _Value) else 1
        const = values[index].value
        if op in ("add", "mul"):
            index = 1     # commutative: the constant second, as TorchScript (the reference) records it
        if isinstance(const, torch.Tensor):
            data = _np(const)
        elif isinstance(const, (int, float)) and not isinstance(const, bool):
            data = np.asarray(const, dtype=np.float32)
        else:
            raise self._fail(fx_node, _op_label(fx_node), f"operand of type {type(const).__name__}")
        name = self._node_name(fx_node)
        other = Tensor(f"{name}.other", data=data)
        self._add(fx_node, op, tensors, attrs={"other_index": index}, params={"other": other})

    def _custom(self, fx_node: torch.fx.Node, op: CustomOp) -> None:
        args = tuple(self._const_or_node(a) for a in fx_node.args)
        kwargs = {k: self._const_or_node(v) for k, v in fx_node.kwargs.items()}
        inputs, attrs = op.split(args, kwargs)
        values = []
        for item in inputs:
            if not isinstance(item, _Value):
                raise self._fail(fx_node, f"custom op {op.op_type}", "arguments not in attrs_list must "
                                 "be tensors")
            values.append(item)
        for key, value in attrs.items():
            if isinstance(value, (_Value, torch.Tensor)):
                raise self._fail(fx_node, f"custom op {op.op_type}", f"attribute '{key}' is a tensor")
        self._add(fx_node, "custom", values, attrs={"op_name": op.op_type, **attrs}, layer_type=op.op_type)

    def _const_or_node(self, arg: Any) -> Any:
        if isinstance(arg, torch.fx.Node):
            value = self.env.get(arg)
            return value.value if isinstance(value, _Const) else value
        return arg


def _submodule(root: nn.Module, path: str) -> nn.Module | None:
    try:
        return root.get_submodule(path)
    except AttributeError:
        return None


def _getattr_path(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _normalized(target: Any, fx_node: torch.fx.Node) -> dict[str, Any]:
    pair = normalize_function(target, tuple(fx_node.args), dict(fx_node.kwargs),
                              normalize_to_only_use_kwargs=True)
    if pair is None:
        raise error("CNN_UNSUPPORTED_OP", op=_op_label(fx_node), source=source_of(fx_node),
                    detail=" (its arguments could not be matched to a known signature)")
    return dict(pair.kwargs)


def _op_label(fx_node: torch.fx.Node) -> str:
    target = fx_node.target
    if fx_node.op == "call_method":
        return f"Tensor.{target}"
    if fx_node.op == "call_function":
        module = getattr(target, "__module__", None) or ""
        name = getattr(target, "__name__", repr(target))
        if module in ("_operator", "operator"):
            return f"operator.{name}"
        module = {"torch._C._nn": "torch.nn.functional", "torch.nn.functional": "torch.nn.functional"}.get(
            module, "torch" if module.startswith("torch") else module)
        return f"{module}.{name}" if module else name
    return str(target)


def capture_model(model: nn.Module, inputs: tuple[Any, ...], *, convert_relu6_to_relu: bool = False,
                  convert_silu_to_hswish: bool = False, trace: str = "auto") -> CapturedModel:
    """Trace `model` (in eval mode) on `inputs` and lower it to the neutral graph. `trace`:
    "auto" (torch.fx, torch.jit.trace when fx cannot trace), "fx" or "jit" (`trace_model`)."""
    gm = trace_model(model, inputs, trace)
    has_stubs = any(isinstance(m, (QuantStub, DeQuantStub)) for m in model.modules())
    lowering = _Lowering(model, gm, type(model).__name__, has_stubs, convert_relu6_to_relu, convert_silu_to_hswish)
    return lowering.run()


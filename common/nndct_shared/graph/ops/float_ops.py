"""Ops with no quantized form (`quantizable = False`): GELU, ELU, SiLU, LayerNorm, GroupNorm,
InstanceNorm (statistics of the input itself, so nothing folds), and the sum / max reductions.

As in the reference, they run in float: the session leaves their nodes out of the quantized
part with the FLOAT_OP warning naming them, and quantizes their output as an input (kind
"input") where a quantized node reads it (`nndct_shared.cnn.float_ops`). No DPU engine runs
them (the Inspector sends them to the CPU); the xmodel keeps them as CPU ops: XIR's `gelu`,
`elu`, `swish`, `reduction_sum` and `reduction_max`, and ops of their own type for the norms
(`layernorm`, `groupnorm`, `instancenorm`, as the reference names them, with the input read in
torch layout and float params as consts).

Numerics: float64 inside, float32 out; frameworks compute these in float32, so values differ
from a framework's by a few float32 ulps (then a quantized reader's input fix maps both to the
same code except where a value lies within those ulps of a rounding boundary).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...cnn_export import kernels as K
from .base import OpContractError, OpDef, is_int, param_array, register
from .pooling import check_dims

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.vectorize(math.erf, otypes=[np.float64])


class _FloatOp(OpDef):
    """Runs in float; no DPU engine computes it."""

    quantizable = False

    def dpu_rule(self, graph, node, t) -> str:
        return f"DPU does not support {node.op_type}."


# --- elementwise -------------------------------------------------------------------------------------


def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if approximate == "tanh":
        return K.f32(0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))))
    return K.f32(0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))))


def elu(x: np.ndarray, alpha: float) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return K.f32(np.where(x > 0, x, float(np.float32(alpha)) * np.expm1(np.minimum(x, 0.0))))


def silu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return K.f32(x / (1.0 + np.exp(-x)))


@register("gelu", attrs=("approximate",), xir_types=("gelu",))
class Gelu(_FloatOp):
    """attrs: `approximate` ("none": x/2 (1 + erf(x/sqrt 2)); "tanh": torch's tanh form)."""

    nndct_op = "nndct_GELU"

    def check(self, graph, node, in_shape, out_shape) -> None:
        if node.attrs["approximate"] not in ("none", "tanh"):
            raise OpContractError(f"attr 'approximate' must be 'none' or 'tanh', got {node.attrs['approximate']!r}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return gelu(xs[0], node.attrs["approximate"])

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return gelu(xs[0], str(op.attrs.get("approximate", "none")))

    def to_xmodel(self, b, node, xs) -> str:
        approximate = node.attrs["approximate"]
        return b.emit(node, "gelu", {"input": xs}, {"approximate": approximate} if approximate != "none" else {})

    def to_onnx(self, b, node, xs) -> str:
        x, n = xs[0], node.name
        half = b.init(f"{n}_half", np.array(0.5, np.float32))
        one = b.init(f"{n}_one", np.array(1.0, np.float32))
        if node.attrs["approximate"] == "tanh":
            cube = b.add("Mul", [b.add("Mul", [x, x], f"{n}_sq"), x], f"{n}_cube")
            coef = b.init(f"{n}_coef", np.array(0.044715, np.float32))
            inner = b.add("Add", [x, b.add("Mul", [cube, coef], f"{n}_cube_coef")], f"{n}_inner")
            k = b.init(f"{n}_k", np.array(_SQRT_2_OVER_PI, np.float32))
            core = b.add("Tanh", [b.add("Mul", [inner, k], f"{n}_scaled")], f"{n}_tanh")
        else:
            root2 = b.init(f"{n}_sqrt2", np.array(math.sqrt(2.0), np.float32))
            core = b.add("Erf", [b.add("Div", [x, root2], f"{n}_div")], f"{n}_erf")
        gate = b.add("Mul", [b.add("Add", [core, one], f"{n}_plus1"), half], f"{n}_gate")
        return b.add("Mul", [x, gate], n)


@register("elu", attrs=("alpha",), xir_types=("elu",))
class Elu(_FloatOp):
    """attrs: `alpha`: x if x > 0 else alpha * (exp(x) - 1)."""

    nndct_op = "aten::elu"

    def check(self, graph, node, in_shape, out_shape) -> None:
        if not isinstance(node.attrs["alpha"], (int, float, np.floating)):
            raise OpContractError(f"attr 'alpha' must be a number, got {node.attrs['alpha']!r}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return elu(xs[0], float(node.attrs["alpha"]))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return elu(xs[0], float(op.attrs.get("alpha", 1.0)))

    def to_xmodel(self, b, node, xs) -> str:
        return b.emit(node, "elu", {"input": xs}, {"alpha": float(node.attrs["alpha"])})

    def to_onnx(self, b, node, xs) -> str:
        return b.add("Elu", [xs[0]], node.name, alpha=float(node.attrs["alpha"]))


@register("silu", xir_types=("swish",))
class Silu(_FloatOp):
    """x * sigmoid(x) (when the config does not convert it to hardswish)."""

    nndct_op = "aten::silu"

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return silu(xs[0])

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return silu(xs[0])

    def to_xmodel(self, b, node, xs) -> str:
        return b.emit(node, "swish", {"input": xs})

    def to_onnx(self, b, node, xs) -> str:
        return b.add("Mul", [xs[0], b.add("Sigmoid", [xs[0]], f"{node.name}_sigmoid")], node.name)


# --- norms -------------------------------------------------------------------------------------------


def _affine(out: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
            axis: int | None) -> np.ndarray:
    """out * weight + bias, per channel on `axis` (None: weight/bias cover the trailing dims)."""
    shape = None
    if axis is not None:
        shape = [1] * out.ndim
        shape[axis] = -1
    if weight is not None:
        w = np.asarray(weight, np.float64)
        out = out * (w if shape is None else w.reshape(shape))
    if bias is not None:
        c = np.asarray(bias, np.float64)
        out = out + (c if shape is None else c.reshape(shape))
    return out


def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + float(np.float32(eps)))


def layer_norm(x: np.ndarray, normalized_ndim: int, eps: float, weight, bias) -> np.ndarray:
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    return K.f32(_affine(_normalize(x, axes, eps), weight, bias, None))


def group_norm(x: np.ndarray, groups: int, eps: float, weight, bias) -> np.ndarray:
    x = np.asarray(x, np.float64)
    grouped = x.reshape((x.shape[0], groups, -1))
    out = _normalize(grouped, (2,), eps).reshape(x.shape)
    return K.f32(_affine(out, weight, bias, 1))


def instance_norm(x: np.ndarray, eps: float, weight, bias) -> np.ndarray:
    x = np.asarray(x, np.float64)
    out = _normalize(x, tuple(range(2, x.ndim)), eps)
    return K.f32(_affine(out, weight, bias, 1))


def _check_eps(node) -> None:
    eps = node.attrs["eps"]
    if not isinstance(eps, (int, float)) or not eps > 0:
        raise OpContractError(f"attr 'eps' must be a positive number, got {eps!r}")


def _check_channel_params(node, channels: int) -> None:
    for role in ("weight", "bias"):
        if role in node.params and node.params[role].data.shape != (channels,):
            raise OpContractError(f"{role} shape {list(node.params[role].data.shape)} is not [C={channels}]")


def _norm_args(b: Any, node) -> list[str]:
    """The XIR inputs of a norm: the input in torch layout, then its float params as consts."""
    return [b.const(node, role, node.params[role].data) for role in ("weight", "bias") if role in node.params]


def _norm_xmodel(b: Any, node, xs: list[str], xir_type: str, attrs: dict[str, Any]) -> str:
    attrs = dict(attrs, has_weight="weight" in node.params, has_bias="bias" in node.params)
    return b.emit(node, xir_type, {"input": [b.torch_in(xs[0]), *_norm_args(b, node)]}, attrs,
                  torch_out=True)


def _norm_params(op, xs: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
    rest = list(xs[1:])
    weight = rest.pop(0) if op.attrs.get("has_weight") else None
    bias = rest.pop(0) if op.attrs.get("has_bias") else None
    return weight, bias


def _onnx_affine(b: Any, node, y: str, rank: int) -> str:
    """y * weight + bias with per-channel params on axis 1 (ONNX broadcasting)."""
    n, shape = node.name, (-1,) + (1,) * (rank - 2)
    if "weight" in node.params:
        y = b.add("Mul", [y, b.param(node, "weight", node.params["weight"].data.reshape(shape))],
                  f"{n}_mul" if "bias" in node.params else n)
    if "bias" in node.params:
        y = b.add("Add", [y, b.param(node, "bias", node.params["bias"].data.reshape(shape))], n)
    return y


@register("layer_norm", attrs=("normalized_shape", "eps"), optional_params=("weight", "bias"),
          xir_types=("layernorm",))
class LayerNorm(_FloatOp):
    """attrs: `normalized_shape` (the trailing dims normalized over), `eps`; params `weight`,
    `bias` of that shape (optional)."""

    nndct_op = "nndct_layer_norm"

    def check(self, graph, node, in_shape, out_shape) -> None:
        _check_eps(node)
        shape = tuple(node.attrs["normalized_shape"])
        if not shape or not all(is_int(d) for d in shape) or tuple(in_shape[-len(shape):]) != shape:
            raise OpContractError(f"normalized_shape {list(shape)} is not the trailing dims of {list(in_shape)}")
        for role in ("weight", "bias"):
            if role in node.params and node.params[role].data.shape != shape:
                raise OpContractError(f"{role} shape {list(node.params[role].data.shape)} is not {list(shape)}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        a = node.attrs
        return layer_norm(xs[0], len(a["normalized_shape"]), float(a["eps"]),
                          param_array(node, "weight"), param_array(node, "bias"))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        weight, bias = _norm_params(op, xs)
        return layer_norm(xs[0], int(op.attrs["normalized_ndim"]), float(op.attrs["eps"]), weight, bias)

    def to_xmodel(self, b, node, xs) -> str:
        a = node.attrs
        return _norm_xmodel(b, node, xs, "layernorm", {"normalized_ndim": len(a["normalized_shape"]),
                                                      "eps": float(a["eps"])})

    def to_onnx(self, b, node, xs) -> str:
        n, a = node.name, node.attrs
        shape = tuple(int(d) for d in a["normalized_shape"])
        scale = b.param(node, "weight") if "weight" in node.params else \
            b.init(f"{n}_scale", np.ones(shape, np.float32))
        inputs = [xs[0], scale] + ([b.param(node, "bias")] if "bias" in node.params else [])
        return b.add("LayerNormalization", inputs, n, axis=-len(shape), epsilon=float(a["eps"]))


@register("group_norm", attrs=("num_groups", "eps"), optional_params=("weight", "bias"),
          xir_types=("groupnorm",))
class GroupNorm(_FloatOp):
    """attrs: `num_groups` (dividing the channels, axis 1), `eps`; params `weight`, `bias`
    ([C], optional)."""

    nndct_op = "nndct_group_norm"

    def check(self, graph, node, in_shape, out_shape) -> None:
        _check_eps(node)
        groups = node.attrs["num_groups"]
        if not is_int(groups) or groups < 1 or in_shape[1] % groups:
            raise OpContractError(f"num_groups {groups!r} does not divide the {in_shape[1]} channels")
        _check_channel_params(node, in_shape[1])

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        a = node.attrs
        return group_norm(xs[0], int(a["num_groups"]), float(a["eps"]), param_array(node, "weight"),
                          param_array(node, "bias"))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        weight, bias = _norm_params(op, xs)
        return group_norm(xs[0], int(op.attrs["num_groups"]), float(op.attrs["eps"]), weight, bias)

    def to_xmodel(self, b, node, xs) -> str:
        a = node.attrs
        return _norm_xmodel(b, node, xs, "groupnorm", {"num_groups": int(a["num_groups"]),
                                                      "eps": float(a["eps"])})

    def to_onnx(self, b, node, xs) -> str:
        # (x - mean) / sqrt(var + eps) over each group, as standard ops (any opset >= 18)
        n, a = node.name, node.attrs
        x, rank = xs[0], len(b.shape(node.inputs[0]))
        grouped_shape = b.init(f"{n}_grouped_shape", np.array([0, int(a["num_groups"]), -1], np.int64))
        g = b.add("Reshape", [x, grouped_shape], f"{n}_grouped")
        axes = b.init(f"{n}_axes", np.array([2], np.int64))
        mean = b.add("ReduceMean", [g, axes], f"{n}_mean", keepdims=1)
        centered = b.add("Sub", [g, mean], f"{n}_centered")
        var = b.add("ReduceMean", [b.add("Mul", [centered, centered], f"{n}_sq"), axes], f"{n}_var",
                    keepdims=1)
        eps = b.init(f"{n}_eps", np.array(a["eps"], np.float32))
        std = b.add("Sqrt", [b.add("Add", [var, eps], f"{n}_var_eps")], f"{n}_std")
        normed = b.add("Div", [centered, std], f"{n}_normed")
        y = b.add("Reshape", [normed, b.add("Shape", [x], f"{n}_shape")], f"{n}_norm")
        return _onnx_affine(b, node, y, rank)


@register("instance_norm", attrs=("eps",), optional_params=("weight", "bias"),
          xir_types=("instancenorm",))
class InstanceNorm(_FloatOp):
    """Per sample and channel over the spatial dims (an InstanceNorm that uses the input's own
    statistics; one with running statistics in eval mode is folded like BatchNorm by the front
    end). attrs: `eps`; params `weight`, `bias` ([C], optional)."""

    nndct_op = "nndct_instance_norm"

    def check(self, graph, node, in_shape, out_shape) -> None:
        _check_eps(node)
        if len(in_shape) < 3:
            raise OpContractError(f"instance_norm needs [N, C, *spatial], got {list(in_shape)}")
        _check_channel_params(node, in_shape[1])

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return instance_norm(xs[0], float(node.attrs["eps"]), param_array(node, "weight"),
                             param_array(node, "bias"))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        weight, bias = _norm_params(op, xs)
        return instance_norm(xs[0], float(op.attrs["eps"]), weight, bias)

    def to_xmodel(self, b, node, xs) -> str:
        return _norm_xmodel(b, node, xs, "instancenorm", {"eps": float(node.attrs["eps"])})

    def to_onnx(self, b, node, xs) -> str:
        n, channels = node.name, b.shape(node.inputs[0])[1]
        scale = b.param(node, "weight") if "weight" in node.params else \
            b.init(f"{n}_scale", np.ones(channels, np.float32))
        bias = b.param(node, "bias") if "bias" in node.params else \
            b.init(f"{n}_bias", np.zeros(channels, np.float32))
        return b.add("InstanceNormalization", [xs[0], scale, bias], n, epsilon=float(node.attrs["eps"]))


# --- reductions --------------------------------------------------------------------------------------


class _Reduction(_FloatOp):
    """attrs: `dims` (non-negative axes reduced), `keepdim`. XIR: `reduction_<kind>` on the
    input in torch layout (axes as torch numbers it)."""

    attrs = ("dims", "keepdim")
    xir_type = ""

    @staticmethod
    def fn(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        raise NotImplementedError

    def check(self, graph, node, in_shape, out_shape) -> None:
        check_dims(node, len(in_shape))

    def _apply(self, x: np.ndarray, dims, keepdim) -> np.ndarray:
        axes = tuple(sorted({int(d) % x.ndim for d in dims}))
        return K.f32(self.fn(np.asarray(x, np.float64), axes, bool(keepdim)))

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return self._apply(xs[0], node.attrs["dims"], node.attrs["keepdim"])

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return self._apply(xs[0], op.attrs["axis"], op.attrs["keep_dims"])

    def to_xmodel(self, b, node, xs) -> str:
        rank = len(b.shape(node.inputs[0]))
        attrs = {"axis": sorted({int(d) % rank for d in node.attrs["dims"]}),
                 "keep_dims": bool(node.attrs["keepdim"])}
        return b.emit(node, self.xir_type, {"input": [b.torch_in(xs[0])]}, attrs, torch_out=True)

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        axes = b.init(f"{n}_axes", np.array([int(d) for d in node.attrs["dims"]], np.int64))
        return b.add(self.onnx_type, [xs[0], axes], n, keepdims=int(bool(node.attrs["keepdim"])))


@register("sum", xir_types=("reduction_sum",))
class Sum(_Reduction):
    nndct_op = "nndct_sum"
    xir_type = "reduction_sum"
    onnx_type = "ReduceSum"
    fn = staticmethod(lambda x, axes, keepdims: np.sum(x, axis=axes, keepdims=keepdims))


@register("max", xir_types=("reduction_max",))
class Max(_Reduction):
    """The values of torch.max over one dim, of x.max() over all, or of torch.amax."""

    nndct_op = "nndct_max"
    xir_type = "reduction_max"
    onnx_type = "ReduceMax"
    fn = staticmethod(lambda x, axes, keepdims: np.max(x, axis=axes, keepdims=keepdims))

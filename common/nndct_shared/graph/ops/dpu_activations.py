"""Activations the DPU computes quantized besides those of `activations.py`: clamp (relu-like
when it is ReLU or ReLU6), PReLU (per-channel slopes on the ALU) and hardsigmoid.

Clamp is a fused activation like ReLU6: after a conv / linear / add the one fix sits after it.
Hardsigmoid is written as the reference writes it: `hard-sigmoid` `<op>_i0` times the float32
const `<op>_i1` (the node's `dpu_scale`, else 1.0) as `mul` `<op>`.
"""
from __future__ import annotations

import numpy as np

from ...cnn_export import kernels as K
from .activations import _DpuActivation, onnx_relu6_plus3
from .base import OpContractError, OpDef, param_array, register


def _bound(node, key: str) -> float | None:
    value = node.attrs[key]
    return None if value is None else float(value)


def clamp(x: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """torch.clamp with scalar bounds (converted to float32 like torch does)."""
    out = np.asarray(x, np.float32)
    if low is not None:
        out = np.maximum(out, np.float32(low))
    if high is not None:
        out = np.minimum(out, np.float32(high))
    return out


@register("clamp", attrs=("min", "max"), fused_activation=True, xir_types=("clamp",))
class Clamp(OpDef):
    """attrs: `min`, `max` (numbers, or None for no bound; not both None). XIR: `relu` for
    (0, None), `relu6` for (0, 6) (what the DPU runs), else a `clamp` op with attrs min / max."""

    nndct_op = "nndct_clamp"

    def check(self, graph, node, in_shape, out_shape) -> None:
        for key in ("min", "max"):
            value = node.attrs[key]
            if value is not None and (not isinstance(value, (int, float, np.floating)) or not np.isfinite(value)):
                raise OpContractError(f"attr {key!r} must be a finite number or None, got {value!r}")
        if node.attrs["min"] is None and node.attrs["max"] is None:
            raise OpContractError("clamp needs 'min' or 'max'")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return clamp(xs[0], _bound(node, "min"), _bound(node, "max"))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return clamp(xs[0], op.attrs.get("min"), op.attrs.get("max"))

    @staticmethod
    def relu_like(node) -> str | None:
        """'relu' / 'relu6' when the clamp is one of them, else None."""
        bounds = (_bound(node, "min"), _bound(node, "max"))
        return {(0.0, None): "relu", (0.0, 6.0): "relu6"}.get(bounds)

    def to_xmodel(self, b, node, xs) -> str:
        like = self.relu_like(node)
        if like is not None:
            return b.emit(node, like, {"input": xs})
        attrs = {k: float(node.attrs[k]) for k in ("min", "max") if node.attrs[k] is not None}
        return b.emit(node, "clamp", {"input": xs}, attrs)

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        bounds = [b.init(f"{n}_{k}", np.array(node.attrs[k], np.float32)) if node.attrs[k] is not None
                  else "" for k in ("min", "max")]
        while bounds and bounds[-1] == "":
            bounds.pop()
        return b.add("Clip", [xs[0], *bounds], n)

    def dpu_rule(self, graph, node, t) -> str:
        like = self.relu_like(node)
        if like is None:
            return (f"DPU only supports clamp as ReLU (min=0) or ReLU6 (min=0, max=6), got "
                    f"min={node.attrs.get('min')}, max={node.attrs.get('max')}.")
        return "" if like in t.activations() else f"{t.name} does not support {like}."

    def dpu_engine(self, graph, node, t, device) -> str:
        return f"Computed as {self.relu_like(node)}, a nonlinear function the DPU engines support."


def prelu(x: np.ndarray, weight: np.ndarray, channel_axis: int) -> np.ndarray:
    """x where x >= 0, else weight * x; `weight` has one slope or one per channel."""
    x = np.asarray(x, np.float64)
    w = np.asarray(weight, np.float64).reshape(-1)
    if w.size > 1:
        shape = [1] * x.ndim
        shape[channel_axis] = w.size
        w = w.reshape(shape)
    return K.f32(np.where(x >= 0, x, x * w))


@register("prelu", params=("weight",), xir_types=("prelu",))
class PRelu(OpDef):
    """params: `weight`, the slopes ([1] or [C], channels on axis 1). Its output carries its
    own fix (the DPU runs PReLU on the ALU, after the conv's fix)."""

    nndct_op = "nndct_prelu"

    def check(self, graph, node, in_shape, out_shape) -> None:
        w = node.params["weight"].data
        channels = in_shape[1] if len(in_shape) > 1 else 1
        if w.ndim != 1 or w.shape[0] not in (1, channels):
            raise OpContractError(f"weight shape {list(w.shape)} is not [1] or [C={channels}]")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return prelu(xs[0], param_array(node, "weight"), 1)

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return prelu(xs[0], args["weight"][0], -1)

    def to_xmodel(self, b, node, xs) -> str:
        weight = b.const(node, "weight", node.params["weight"].data)
        return b.emit(node, "prelu", {"input": xs, "weight": [weight]})

    def to_onnx(self, b, node, xs) -> str:
        rank = len(b.shape(node.inputs[0]))
        data = node.params["weight"].data
        shape = (-1,) + (1,) * (rank - 2) if data.size > 1 else (1,)
        return b.add("PRelu", [xs[0], b.param(node, "weight", data.reshape(shape))], node.name)

    def dpu_rule(self, graph, node, t) -> str:
        if t.alu is not None and "prelu" in t.alu.types:
            return ""
        return f"{t.name} does not support prelu."

    def dpu_engine(self, graph, node, t, device) -> str:
        return "PReLU on the alu_engine."


def hardsigmoid(x: np.ndarray) -> np.ndarray:
    """relu6(x + 3) / 6 (float64 inside, float32 out)."""
    return K.f32(np.clip(np.asarray(x, np.float64) + 3.0, 0.0, 6.0) / 6.0)


@register("hardsigmoid", optional_attrs=("dpu_scale",), dpu_activation="hsigmoid",
          xir_types=("hard-sigmoid",))
class Hardsigmoid(_DpuActivation):
    """relu6(x + 3) / 6, times `dpu_scale` when the front end sets it (the reference's DPU
    approximation 6 * 2731 / 16384); its own fix."""

    nndct_op = "nndct_hsigmoid"

    def check(self, graph, node, in_shape, out_shape) -> None:
        scale = node.attrs.get("dpu_scale")
        if scale is not None and (not isinstance(scale, (int, float)) or not scale > 0):
            raise OpContractError(f"attr 'dpu_scale' must be a positive number, got {scale!r}")

    def compute(self, x: np.ndarray) -> np.ndarray:
        return hardsigmoid(x)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        out = hardsigmoid(xs[0])
        scale = node.attrs.get("dpu_scale")
        return out if scale is None else K.scale_mul(out, scale)

    def to_xmodel(self, b, node, xs) -> str:
        return b.scaled(node, b.pool_core(node, "hard-sigmoid", xs, {}))

    def to_onnx(self, b, node, xs) -> str:
        # torch's formula, so it rounds like the model
        n = node.name
        six = b.init(f"{n}_six", np.array(6, np.float32))
        return b.avg_scaled(node, b.add("Div", [onnx_relu6_plus3(b, xs[0], n), six], n))

    def dpu_engine(self, graph, node, t, device) -> str:
        if t.alu is not None and "hsigmoid" in t.alu.types:
            return "Hard sigmoid on the alu_engine."
        return "A nonlinear function the DPU engines support."


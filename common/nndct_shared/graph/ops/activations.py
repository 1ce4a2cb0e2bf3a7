"""Activations (relu, relu6, leaky_relu, sigmoid, tanh, hardswish) and softmax: one input, one
output of the same shape; computed in float64, returned as float32 (`cnn_export.kernels`)."""
from __future__ import annotations

import numpy as np

from ...cnn_export import kernels as K
from ...cnn_export import layout as L
from ...inspector.partition import DPU
from ..naming import to_op_name
from . import find_op
from .base import OpContractError, OpDef, axis_of, register


class _Unary(OpDef):
    """An elementwise function: the same numpy semantics in the reference executor and the
    xmodel evaluator (`compute`), one XIR op (`xir_types[0]`), one ONNX op (`onnx_type`)."""

    onnx_type = ""

    def compute(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return self.compute(xs[0])

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return self.compute(xs[0])

    def to_xmodel(self, b, node, xs) -> str:
        return b.emit(node, self.xir_types[0], {"input": xs})

    def to_onnx(self, b, node, xs) -> str:
        return b.add(self.onnx_type, [xs[0]], node.name)


class _DpuActivation(_Unary):
    """A nonlinear function a DPU engine computes (`dpu_activation`), fused into the conv,
    linear, scale or add before it when there is one."""

    def dpu_rule(self, graph, node, t) -> str:
        if self.dpu_activation not in t.activations():
            return f"{t.name} does not support {node.op_type}."
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        parents = graph.predecessors(node.name)
        if (len(parents) == 1 and _is_fusing_producer(parents[0].op_type)
                and device.get(parents[0].name) == DPU):
            return f"Fused into '{parents[0].name}' as the nonlinear function of its engine."
        return "A nonlinear function the DPU engines support."


def _is_fusing_producer(op_type: str) -> bool:
    entry = find_op(op_type)
    return entry is not None and entry.fusing_producer


def _clip(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(x, np.float32(low), np.float32(high))


@register("relu", nndct_op="nndct_relu", fused_activation=True, cle="transparent",
          dpu_activation="relu", xir_types=("relu",))
class Relu(_DpuActivation):
    onnx_type = "Relu"

    def compute(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, np.float32(0))


@register("relu6", nndct_op="nndct_relu6", optional_attrs=("clip",), fused_activation=True,
          cle="clip", dpu_activation="relu6", xir_types=("relu6", "min"))
class Relu6(_DpuActivation):
    """min(max(x, 0), 6); optional attr `clip`: per-channel clip levels (channel axis 1) instead
    of 6, set by cross-layer equalization (6 / s(c), the reference's ReLU-k). With a clip the
    xmodel computes `min(relu(x), <clip const>)` (`<op>_i0`, `<op>_i1`, `min` named after the
    node) and ONNX `Min(Relu(x), clip)`."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        clip = node.attrs.get("clip")
        if clip is None:
            return
        values = np.asarray(clip, dtype=np.float64)
        if values.shape != (in_shape[1],) or not (np.isfinite(values).all() and (values > 0).all()):
            raise OpContractError(f"attr 'clip' must be {in_shape[1]} positive finite clip levels "
                                  f"(one per channel), got {clip!r}")

    def compute(self, x: np.ndarray) -> np.ndarray:
        return _clip(x, 0, 6)

    @staticmethod
    def clip_levels(node) -> np.ndarray | None:
        """The per-channel clip levels (float32), None for a plain ReLU6."""
        clip = node.attrs.get("clip")
        return None if clip is None else np.asarray(clip, dtype=np.float32)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        clip = self.clip_levels(node)
        if clip is None:
            return self.compute(xs[0])
        x = xs[0]
        return np.minimum(np.maximum(x, np.float32(0)), clip.reshape((1, -1) + (1,) * (x.ndim - 2)))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        if op.type == "min":
            return np.minimum(np.asarray(xs[0], np.float32), np.asarray(xs[1], np.float32))
        return self.compute(xs[0])

    def to_xmodel(self, b, node, xs) -> str:
        clip = self.clip_levels(node)
        if clip is None:
            return b.emit(node, "relu6", {"input": xs})
        name = to_op_name(node.name)
        out = L.xir_shape(b.shape(node.outputs[0]))
        b.x.add_op(f"{name}_i0", "relu", inputs={"input": xs}, shape=out)
        b.x.add_const(f"{name}_i1", clip)  # channels are the last XIR axis: broadcasts as [C]
        return b.emit(node, "min", {"input": [f"{name}_i0", f"{name}_i1"]})

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        clip = self.clip_levels(node)
        if clip is not None:
            rank = len(b.shape(node.inputs[0]))
            levels = b.init(f"{n}_clip", clip.reshape((-1,) + (1,) * (rank - 2)))
            return b.add("Min", [b.add("Relu", [xs[0]], f"{n}_relu"), levels], n)
        lo = b.init(f"{n}_min", np.array(0, np.float32))
        hi = b.init(f"{n}_max", np.array(6, np.float32))
        return b.add("Clip", [xs[0], lo, hi], n)

    def dpu_rule(self, graph, node, t) -> str:
        clip = self.clip_levels(node)
        if clip is not None and not (clip == 6).all():
            return ("DPU does not support a per-channel clip level (a ReLU6 scaled by cross-layer "
                    "equalization).")
        return super().dpu_rule(graph, node, t)


@register("leaky_relu", nndct_op="nndct_leaky_relu", attrs=("alpha",), fused_activation=True,
          cle="transparent", cle_extension=True, dpu_activation="leaky_relu",
          xir_types=("leaky-relu",))
class LeakyRelu(_DpuActivation):
    """attrs: `alpha`, the negative slope (the DPU's is 26/256, see the Inspector)."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        if not isinstance(node.attrs["alpha"], (float, int, np.floating)):
            raise OpContractError(f"attr 'alpha' must be a number, got {node.attrs['alpha']!r}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return K.leaky_relu(xs[0], node.attrs["alpha"])

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return K.leaky_relu(xs[0], op.attrs["alpha"])

    def to_xmodel(self, b, node, xs) -> str:
        return b.emit(node, "leaky-relu", {"input": xs}, {"alpha": float(node.attrs["alpha"])})

    def to_onnx(self, b, node, xs) -> str:
        return b.add("LeakyRelu", [xs[0]], node.name, alpha=float(node.attrs["alpha"]))

    def dpu_rule(self, graph, node, t) -> str:
        msg = super().dpu_rule(graph, node, t)
        if msg:
            return msg
        alpha = float(node.attrs.get("alpha", 0.01))
        if alpha != t.leaky_relu_alpha:
            return f"Its alpha is {alpha}, but DPU only supports {t.leaky_relu_alpha}."
        return ""


@register("hardswish", nndct_op="nndct_hswish", dpu_activation="hswish", xir_types=("hard-swish",))
class Hardswish(_DpuActivation):
    """x * relu6(x + 3) / 6."""

    def compute(self, x: np.ndarray) -> np.ndarray:
        return K.hardswish(x)

    def to_onnx(self, b, node, xs) -> str:
        # torch's formula, so it rounds like the model
        x, n = xs[0], node.name
        six = b.init(f"{n}_six", np.array(6, np.float32))
        return b.add("Div", [b.add("Mul", [x, onnx_relu6_plus3(b, x, n)], f"{n}_mul"), six], n)

    def dpu_rule(self, graph, node, t) -> str:
        activations = t.activations()
        if "hswish" in activations or "hsigmoid" in activations:
            return ""
        return f"{t.name} does not support {node.op_type}."


def onnx_relu6_plus3(b, x: str, n: str) -> str:
    """ONNX Clip(x + 3, 0, 6), the gate of hardswish and hardsigmoid in torch's formula."""
    three = b.init(f"{n}_three", np.array(3, np.float32))
    lo = b.init(f"{n}_min", np.array(0, np.float32))
    hi = b.init(f"{n}_max", np.array(6, np.float32))
    return b.add("Clip", [b.add("Add", [x, three], f"{n}_plus3"), lo, hi], f"{n}_relu6")


class _CpuUnary(_Unary):
    """A function no DPU engine computes (the reference Inspector sends it to the CPU)."""

    def dpu_rule(self, graph, node, t) -> str:
        return f"DPU does not support {node.op_type}."


@register("sigmoid", nndct_op="nndct_sigmoid", xir_types=("sigmoid",))
class Sigmoid(_CpuUnary):
    onnx_type = "Sigmoid"

    def compute(self, x: np.ndarray) -> np.ndarray:
        return K.sigmoid(x)


@register("tanh", nndct_op="nndct_tanh", xir_types=("tanh",))
class Tanh(_CpuUnary):
    onnx_type = "Tanh"

    def compute(self, x: np.ndarray) -> np.ndarray:
        return K.f32(np.tanh(np.asarray(x, np.float64)))


@register("softmax", nndct_op="nndct_softmax", attrs=("dim",), xir_types=("softmax",))
class Softmax(OpDef):
    """attrs: `dim`, the (non-negative) axis normalised over."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        axis_of(node, "dim", node.attrs["dim"], len(in_shape))

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return K.softmax(xs[0], int(node.attrs["dim"]))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return K.softmax(xs[0], int(op.attrs["axis"]))

    def to_xmodel(self, b, node, xs) -> str:
        rank = len(b.shape(node.inputs[0]))
        axis = L.xir_perm(rank).index(int(node.attrs["dim"]) % rank)
        return b.emit(node, "softmax", {"input": xs}, {"axis": axis})

    def to_onnx(self, b, node, xs) -> str:
        return b.add("Softmax", [xs[0]], node.name, axis=int(node.attrs["dim"]))

    def dpu_rule(self, graph, node, t) -> str:
        if t.alu is not None and "softmax" in t.alu.types:
            return ""
        return "DPU does not support softmax."

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Softmax on the alu_engine."

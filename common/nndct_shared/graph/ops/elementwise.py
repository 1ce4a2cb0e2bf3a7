"""Elementwise arithmetic (add, sub, mul: two tensors, or a tensor and a constant `other`
param at position `other_index`, with numpy broadcasting) and concat."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...cnn_export import kernels as K
from ...cnn_export import layout as L
from ...inspector import rules as R
from ...inspector.partition import DPU
from .base import BINARY, VARIADIC, OpContractError, OpDef, axis_of, param_array, register


class _Binary(OpDef):
    """`fn(a, b)` in float64; the operands are the two inputs, or the input and `other`."""

    optional_attrs = ("other_index",)          # set exactly when there is an `other` param
    optional_params = ("other",)
    arity = BINARY
    onnx_type = ""

    @staticmethod
    def fn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        operands = xs
        if "other" in node.params:
            other = param_array(node, "other")
            operands = [other, xs[0]] if node.attrs["other_index"] == 0 else [xs[0], other]
        p, q = (np.asarray(v, np.float64) for v in operands)
        return K.f32(self.fn(p, q))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        out = np.asarray(xs[0], np.float64)
        for other in xs[1:]:
            out = self.fn(out, np.asarray(other, np.float64))
        return K.f32(out)

    def to_xmodel(self, b: Any, node, xs) -> str:
        out_rank = len(b.shape(node.outputs[0]))
        ranks = [len(b.shape(t)) for t in node.inputs]
        direct = out_rank <= 2 or all(r == out_rank for r in ranks)
        operands = list(xs) if direct else [b.torch_in(x) for x in xs]
        if "other" in node.params:
            data = np.asarray(node.params["other"].data, dtype=np.float32)
            data = L.xir_broadcast_operand(data, out_rank) if direct else (
                data.reshape(1) if data.ndim == 0 else data)
            operands.insert(int(node.attrs["other_index"]), b.const(node, "other", data))
        return b.emit(node, self.xir_types[0], {"input": operands}, torch_out=not direct)

    def to_onnx(self, b: Any, node, xs) -> str:
        operands = list(xs)
        if "other" in node.params:
            operands.insert(int(node.attrs["other_index"]), b.param(node, "other"))
        return b.add(self.onnx_type, operands, node.name)

    def dpu_rule(self, graph, node, t) -> str:
        kind = "add" if node.op_type == "add" else "mult"
        other = node.params.get("other")
        if kind == "mult" and other is not None:
            # x * constant: per-channel / scalar constants become a depthwise conv (UG1414 "mul")
            size = 1 if other.shape is None else math.prod(other.shape)
            _, oc = R.channels(graph, node)
            if R.dw_engine(t) is not None and (size == 1 or size == oc):
                return ""
        if kind not in t.eltwise_types():
            return f"{t.name} does not support eltwise {kind.upper().replace('MULT', 'MUL')}."
        ic, _ = R.channels(graph, node)
        cp = t.eltwise.channel_parallel if t.eltwise is not None else t.load_channel_parallel
        return R.check_channels(ic, None, cp)

    def dpu_engine(self, graph, node, t, device) -> str:
        if node.op_type == "mul" and "other" in node.params:
            return ("Multiplication by a constant, runs as a depthwise convolution on the "
                    f"{R.engine_of_kind(t, 'dw')}.")
        what, kind = ("addition", "add") if node.op_type == "add" else ("multiplication", "mult")
        return f"Element-wise {what} on the {R.engine_of_kind(t, kind)}."


@register("add", nndct_op="nndct_elemwise_add", fusing_producer=True, xir_types=("add",))
class Add(_Binary):
    onnx_type = "Add"
    fn = staticmethod(np.add)


@register("sub", nndct_op="nndct_elementwise_sub", xir_types=("sub",))
class Sub(_Binary):
    onnx_type = "Sub"
    fn = staticmethod(np.subtract)

    def dpu_rule(self, graph, node, t) -> str:
        return f"DPU does not support {node.op_type}."    # reference: DPU has no such engine


@register("mul", nndct_op="nndct_elemwise_mul", xir_types=("mul",))
class Mul(_Binary):
    onnx_type = "Mul"
    fn = staticmethod(np.multiply)


@register("concat", nndct_op="nndct_concat", attrs=("axis",), arity=VARIADIC, xir_types=("concat",))
class Concat(OpDef):
    """attrs: `axis` (non-negative); inputs agree on every other axis."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        rank = len(in_shape)
        axis = axis_of(node, "axis", node.attrs["axis"], rank)
        for name in node.inputs:
            shape = tuple(graph.tensors[name].shape)
            if len(shape) != rank or any(a != b for i, (a, b) in enumerate(zip(shape, in_shape))
                                         if i != axis):
                raise OpContractError(f"concat inputs must agree except on axis {axis}: "
                                      f"{list(in_shape)} vs {list(shape)}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return np.concatenate(xs, axis=int(node.attrs["axis"]))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return np.concatenate(xs, axis=int(op.attrs["axis"]))

    def to_xmodel(self, b: Any, node, xs) -> str:
        rank = len(b.shape(node.inputs[0]))
        axis = L.xir_perm(rank).index(int(node.attrs["axis"]) % rank)
        return b.emit(node, "concat", {"input": xs}, {"axis": axis})

    def to_onnx(self, b: Any, node, xs) -> str:
        return b.add("Concat", xs, node.name, axis=int(node.attrs["axis"]))

    def dpu_rule(self, graph, node, t) -> str:
        return ""

    def dpu_graph_rule(self, graph, node, t, device) -> str:
        parents = graph.predecessors(node.name)
        if parents and all(device[p.name] != DPU for p in parents):
            return "All inputs of concat are on CPU."
        if "concat_4d_channel_only" in t.restrictions:
            shape = R.output_shape(graph, node)
            axis = int(node.attrs.get("axis", 1))
            if shape is None or len(shape) != 4 or axis % 4 != 1:
                return f"{t.name} only supports channel-wise concatenation of 4-D tensors."
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Data movement only: the DPU compiler folds it into its neighbours' memory layout."

"""Matrix product of two feature maps (`torch.matmul`, `@`, `bmm`), or of a feature map and a
constant (`other` param): numpy/torch semantics for operands of rank >= 2 (batch dims
broadcast). Its output carries its own fix; a constant operand is quantized as a weight.

XIR: `matmul` with transpose_a = transpose_b = false (the op type the `linear` entry
evaluates); operands of rank > 2 are read in torch layout (`<producer>_t`) and the result is
transposed back, since the product is defined on torch's axes.
"""
from __future__ import annotations

import numpy as np

from .base import OpContractError, register
from .elementwise import _Binary


@register("matmul")
class MatMul(_Binary):
    """`a @ b`, either operand possibly the constant `other` (at `other_index`)."""

    nndct_op = "nndct_matmul"
    onnx_type = "MatMul"
    fn = staticmethod(np.matmul)

    def check(self, graph, node, in_shape, out_shape) -> None:
        shapes = [tuple(graph.tensors[t].shape) for t in node.inputs]
        if "other" in node.params:
            shapes.insert(int(node.attrs["other_index"]), tuple(node.params["other"].data.shape))
        if len(shapes) != 2 or any(len(s) < 2 for s in shapes) or shapes[0][-1] != shapes[1][-2]:
            raise OpContractError(f"matmul needs operands [..., m, k] and [..., k, n] of rank >= 2, got "
                                  f"{[list(s) for s in shapes]}")

    def to_xmodel(self, b, node, xs) -> str:
        direct = len(b.shape(node.outputs[0])) <= 2
        operands = list(xs) if direct else [b.torch_in(x) for x in xs]
        if "other" in node.params:      # a const is stored in torch layout
            operands.insert(int(node.attrs["other_index"]),
                            b.const(node, "other", node.params["other"].data))
        attrs = {"transpose_a": False, "transpose_b": False}
        return b.emit(node, "matmul", {"input": operands}, attrs, torch_out=not direct)

    def dpu_rule(self, graph, node, t) -> str:
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        if "other" in node.params:
            return "Multiplication by a constant matrix, runs as a 1x1 convolution on the conv_engine."
        return "Matrix multiplication of two feature maps on the conv_engine."

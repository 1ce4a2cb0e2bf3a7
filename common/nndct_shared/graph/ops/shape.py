"""Shape-only ops (flatten, reshape): the output is the input's elements in the same order,
so they carry no fix of their own (the input is already on its grid)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...inspector import rules as R
from ...inspector.partition import DPU
from ...cnn_export import flatten_fold as FF
from ..naming import to_op_name
from .base import OpContractError, OpDef, axis_of, is_int, register


class _ShapeOnly(OpDef):
    shape_only = True

    def to_onnx(self, b: Any, node, xs) -> str:
        n = node.name
        in_shape, out_shape = b.shape(node.inputs[0]), list(b.shape(node.outputs[0]))
        if out_shape and in_shape and out_shape[0] == in_shape[0]:
            out_shape[0] = 0  # keep the batch of the actual input
        target = b.init(f"{n}_shape", np.array(out_shape, dtype=np.int64))
        return b.add("Reshape", [xs[0], target], n)

    def dpu_rule(self, graph, node, t) -> str:
        return ""

    def dpu_graph_rule(self, graph, node, t, device) -> str:
        if "no_reshape" in t.restrictions:
            return f"{t.name} does not support {node.op_type}."
        parents = graph.predecessors(node.name)
        if not parents or device[parents[0].name] != DPU:
            return f"The input of {node.op_type} is not on DPU."
        children = graph.successors(node.name)
        in_shape, out_shape = R.input_shape(graph, node), R.output_shape(graph, node)
        if (any(device[c.name] != DPU for c in children) and in_shape and out_shape
                and in_shape[0] != out_shape[0]):
            return "First dimension is changed."
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Data movement only: the DPU compiler folds it into its neighbours' memory layout."

    def folded_xmodel(self, b: Any, node, xs) -> str | None:
        """A flatten of channels-first maps before dense layers: one `reshape` of the
        channels-last map (`cnn_export.flatten_fold`), else None."""
        if FF.folded_input_shape(b.graph, node) is None:
            return None
        return _reshape(b, node, xs[0], [int(d) for d in b.shape(node.outputs[0])], torch_layout=False)


def _reshape(b: Any, node, x: str, target: list[int], torch_layout: bool) -> str:
    """The reference's reshape: a `stack` (axis 0) of one float32 const per target dim feeds the
    `shape` input (its tensor attr `shape_info` holds the target); `torch_layout`: reshape the
    torch-layout value (a `<producer>_t` transpose before, a transpose back after rank 3/4)."""
    name = to_op_name(node.name)
    dims = []
    for i, d in enumerate(target):
        const = f"{name}_shape_attr_{i}_"
        b.x.add_const(const, np.array([d], dtype=np.float32))
        dims.append(const)
    stack = f"{name}_shape_i0"
    b.x.add_op(stack, "stack", inputs={"input": dims}, attrs={"axis": 0},
               shape=[len(target), 1], tensor_attrs={"shape_info": target})
    if not torch_layout:
        return b.emit(node, "reshape", {"input": [x], "shape": [stack]})
    return b.emit(node, "reshape", {"input": [b.torch_in(x)], "shape": [stack]}, torch_out=True)


@register("flatten", nndct_op="nndct_flatten", attrs=("start_dim", "end_dim"), xir_types=("flatten",))
class Flatten(_ShapeOnly):
    """attrs: `start_dim`, `end_dim` (non-negative)."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        rank = len(in_shape)
        axis_of(node, "start_dim", node.attrs["start_dim"], rank)
        axis_of(node, "end_dim", node.attrs["end_dim"], rank)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        x = xs[0]
        start, end = int(node.attrs["start_dim"]) % x.ndim, int(node.attrs["end_dim"]) % x.ndim
        return np.reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        x = xs[0]
        start, end = int(op.attrs["start_axis"]) % x.ndim, int(op.attrs["end_axis"]) % x.ndim
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def to_xmodel(self, b: Any, node, xs) -> str:
        folded = self.folded_xmodel(b, node, xs)
        if folded is not None:
            return folded
        rank = len(b.shape(node.inputs[0]))
        attrs = {"start_axis": int(node.attrs["start_dim"]) % rank,
                 "end_axis": int(node.attrs["end_dim"]) % rank}
        if rank <= 2:
            return b.emit(node, "flatten", {"input": xs}, attrs)
        return b.emit(node, "flatten", {"input": [b.torch_in(xs[0])]}, attrs, torch_out=True)


@register("reshape", nndct_op="nndct_reshape", attrs=("shape",), xir_types=("reshape", "stack"))
class Reshape(_ShapeOnly):
    """attrs: `shape`, the full target shape including the batch dim (one -1 allowed)."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        shape = node.attrs["shape"]
        if (not isinstance(shape, (tuple, list)) or not all(is_int(d) for d in shape)
                or sum(1 for d in shape if d == -1) > 1):
            raise OpContractError(f"attr 'shape' must be a full target shape of ints (one -1 at "
                                  f"most), got {shape!r}")
        if int(np.prod(in_shape)) != int(np.prod(out_shape)):
            raise OpContractError(f"reshape from {list(in_shape)} to {list(out_shape)} changes the "
                                  "element count")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return np.reshape(xs[0], out_shape if out_shape is not None else tuple(node.attrs["shape"]))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        if op.type == "stack":          # the target shape, stacked from its consts
            return np.stack(xs, axis=int(op.attrs["axis"]))
        if args.get("shape"):
            target = [int(v) for v in np.asarray(args["shape"][0]).reshape(-1)]
        else:
            target = [int(v) for v in op.attrs["shape"]]
        return xs[0].reshape(target)

    def to_xmodel(self, b: Any, node, xs) -> str:
        folded = self.folded_xmodel(b, node, xs)
        if folded is not None:
            return folded
        target = [int(d) for d in node.attrs["shape"]]
        in_rank = len(b.shape(node.inputs[0]))
        out_rank = len(b.shape(node.outputs[0]))
        return _reshape(b, node, xs[0], target, torch_layout=in_rank > 2 or out_rank > 2)

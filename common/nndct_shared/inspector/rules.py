"""What the per-op DPU rules of the Inspector share: shapes, limits, channels, padding and
engines of a node against a `DpuTarget` (the op registry's `dpu_rule` / `dpu_engine` facets,
`nndct_shared.graph.ops`, call these).

Messages follow the vai_q_pytorch Inspector's style ("'kernel'(17 x 17) is not in DPU supported
range([1-16]).").
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..graph import Graph, Node
from ..graph.ops import get_op
from .targets import DpuTarget, Limit

__all__ = ["channels", "check_channels", "check_limit", "check_pad", "covers_input", "dims", "dw_engine",
           "engine_of_kind", "input_shape", "kernel_stride_problem", "output_shape", "pair", "shape"]


def pair(value: Any, default: int) -> tuple[int, ...]:
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value)


def dims(values: Sequence[int]) -> str:
    return " x ".join(str(v) for v in values)


def shape(graph: Graph, tensor_name: str) -> tuple[int, ...] | None:
    meta = graph.tensor(tensor_name)
    return None if meta is None else meta.shape


def input_shape(graph: Graph, node: Node) -> tuple[int, ...] | None:
    return shape(graph, node.inputs[0]) if node.inputs else None


def output_shape(graph: Graph, node: Node) -> tuple[int, ...] | None:
    return shape(graph, node.outputs[0]) if node.outputs else None


def check_limit(name: str, values: Sequence[int], limit: Limit) -> str:
    if any(v not in limit for v in values):
        return f"'{name}'({dims(values)}) is not in DPU supported range({limit})."
    return ""


def channels(graph: Graph, node: Node) -> tuple[int | None, int | None]:
    """(input, output) channels: from the weight when there is one, else from shapes (axis 1)."""
    ic = oc = None
    weight = node.params.get("weight")
    groups = int(node.attrs.get("groups", 1))
    if weight is not None and weight.shape is not None and len(weight.shape) >= 2:
        if get_op(node.op_type).weight_axis == 1:       # [I, O/groups, ...] (transposed conv)
            ic, oc = weight.shape[0], weight.shape[1] * groups
        else:
            oc, ic = weight.shape[0], weight.shape[1] * groups
    in_shape, out_shape = input_shape(graph, node), output_shape(graph, node)
    if ic is None and in_shape is not None and len(in_shape) >= 2:
        ic = in_shape[1]
    if oc is None and out_shape is not None and len(out_shape) >= 2:
        oc = out_shape[1]
    return ic, oc


def check_channels(ic: int | None, oc: int | None, cp: int, dilation: int = 1) -> str:
    """UG1414 "In Size"/"Out Size"/"Dilation": channels (times dilation) <= 256 * cp."""
    limit = 256 * cp
    if ic is not None and ic * dilation > limit:
        what = "'input_channel'" if dilation == 1 else f"'dilation * input_channel'({dilation} *"
        value = f"({ic})" if dilation == 1 else f" {ic})"
        return f"DPU only supports {what}{value} less than or equal to {limit} (256 * {cp})."
    if oc is not None and oc > limit:
        return f"DPU only supports 'output_channel'({oc}) less than or equal to {limit} (256 * {cp})."
    return ""


def check_pad(padding: Sequence[int], kernel: Sequence[int], dilation: Sequence[int],
               pad_limit: dict[str, Limit] | None) -> str:
    """Symmetric torch padding (ph, pw): within the engine's pad limit, else within the dilated
    kernel ((k - 1) * d + 1, PG338/PG367 "Pad_left/Pad_right")."""
    if any(p < 0 for p in padding):
        return f"DPU only supports non-negative 'pad'({dims(padding)})."
    ph, pw = padding
    if pad_limit:
        for side, value in (("left", pw), ("right", pw), ("top", ph), ("bottom", ph)):
            limit = pad_limit.get(side)
            if limit is not None and value not in limit:
                return f"'pad_{side}'({value}) is not in DPU supported range({limit})."
        return ""
    kh = (kernel[0] - 1) * dilation[0] + 1
    kw = (kernel[1] - 1) * dilation[1] + 1
    if pw > kw:
        return f"DPU only supports 'pad_left'/'pad_right'({pw}) less than or equal to 'kernel_w'({kw})."
    if ph > kh:
        return f"DPU only supports 'pad_top'/'pad_bottom'({ph}) less than or equal to 'kernel_h'({kh})."
    return ""


def covers_input(graph: Graph, node: Node, kernel: Sequence[int]) -> bool:
    """The kernel spans the whole input plane: the stride never applies (reference rule)."""
    shape = input_shape(graph, node)
    return shape is not None and len(shape) == 4 and tuple(shape[2:]) == tuple(kernel)


def dw_engine(t: DpuTarget) -> tuple[Limit, Limit, int, dict[str, Limit] | None] | None:
    """(kernel, stride, channel_parallel, pad_limit) of the engine that runs depthwise conv."""
    if t.alu is not None and "dwconv" in t.alu.types:
        return t.alu.kernel, t.alu.stride, t.alu.channel_parallel, t.alu.pad
    if t.dwconv is not None:
        return t.dwconv.kernel, t.dwconv.stride, t.dwconv.channel_parallel, None
    return None


def kernel_stride_problem(graph: Graph, node: Node, kernel, stride, kernel_limit, stride_limit) -> str:
    """The kernel limit, then the stride limit (which does not apply when the kernel covers the
    whole input, as in a global pool); "" when both hold."""
    msg = check_limit("kernel", kernel, kernel_limit)
    if msg or covers_input(graph, node, kernel):
        return msg
    return check_limit("stride", stride, stride_limit)


def engine_of_kind(t: DpuTarget, kind: str) -> str:
    """The engine that runs pooling ("max"/"avg"), depthwise conv ("dw") or eltwise ("add"/"mult")."""
    if kind == "dw":
        return "alu_engine" if t.alu is not None and "dwconv" in t.alu.types else "dwconv_engine"
    if kind in ("max", "avg"):
        return "alu_engine" if t.alu is not None and f"{kind}_pool" in t.alu.types else "pool_engine"
    if t.eltwise is not None and kind in t.eltwise.types:
        return "eltwise_engine"
    return "alu_engine"

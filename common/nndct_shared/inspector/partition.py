"""Assign every node of a neutral CNN graph to the DPU or the CPU, with the reason, and cut the
graph into device subgraphs.

Why: users want to know before deployment which ops fall back to the CPU and why (the
reference Inspector's `inspect_<target>.txt`); hardware-aware quantization needs the same
answer to decide what to keep in float. The rules follow the vai_q_pytorch Inspector's
per-op filters (kernel, stride, padding, channel and weight-buffer limits from the target's
engines) and its messages' style ("'kernel'(17 x 17) is not in DPU supported range([1-16])."),
applied to the op vocabulary of `nndct_shared.graph.cnn_ops`.

Rules that hold for every node, checked first:
- quantization: in a quantized graph (some node has `fix`), a node outside the quantized part
  runs in float ("Not in quantizable part."). A node is inside when it has a fix on its output,
  an input or a param, when it is a shape-only op (flatten, reshape) reading the quantized part,
  or when it is a conv/linear/scale/add whose only reader is a quantized relu/relu6/leaky_relu
  (the fix sits after the fused activation, `nndct_shared.cnn.fix_plan`). Any
  `fix`/`input_fix`/param `fix` bit width other than 8 goes to the CPU. A float graph (no `fix`
  anywhere, the Inspector's input) is inspected as if it were quantized to 8 bits; there,
  `float_nodes` names the nodes the user keeps in float (outside QuantStub regions).
- outputs of more than 4 dimensions go to the CPU.
Then the op's own rule, then graph rules in topological order: graph inputs follow their
consumers; reshape/flatten need a DPU producer and keep the batch dimension at a DPU/CPU
boundary; a concat whose inputs all come from the CPU goes to the CPU.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..cnn.fix_plan import FUSED_ACTIVATIONS, FUSING_PRODUCERS, SHAPE_ONLY_OPS
from ..graph import Graph, Node
from ..graph.cnn_ops import CNN_OPS
from .targets import DpuTarget, Limit, get_target

__all__ = ["DPU", "CPU", "NodeAssignment", "Subgraph", "InspectResult", "inspect_graph"]

DPU = "DPU"
CPU = "CPU"

_CPU_ONLY = ("sigmoid", "tanh", "sub")                   # reference: DPU has no such engine
_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu",
                "hardswish": "hswish"}
_1D_OPS = ("conv1d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d")


@dataclass(frozen=True)
class NodeAssignment:
    """Where one node runs: `device` "DPU" or "CPU"; `reason` says why a node is on the CPU
    (empty on the DPU); `engine` says which DPU engine runs a DPU node (empty on the CPU);
    `notes` carry extra facts (e.g. what hardware-aware quantization changes)."""

    name: str
    op_type: str
    device: str
    reason: str = ""
    notes: tuple[str, ...] = ()
    engine: str = ""

    @property
    def why(self) -> str:
        """The reason for the assignment, whichever the device: the DPU engine that runs the
        node, or the hardware constraint that sends it to the CPU."""
        return self.engine if self.device == DPU else self.reason


@dataclass(frozen=True)
class Subgraph:
    """A maximal connected set of nodes on one device (edges between same-device nodes)."""

    name: str
    device: str
    nodes: tuple[str, ...]


@dataclass
class InspectResult:
    """The assignment of every node (in topological order) and the device subgraphs."""

    graph: Graph
    target: DpuTarget
    assignments: dict[str, NodeAssignment]
    subgraphs: tuple[Subgraph, ...] = field(default_factory=tuple)

    def device_of(self, node_name: str) -> str:
        return self.assignments[node_name].device

    def on(self, device: str) -> list[NodeAssignment]:
        return [a for a in self.assignments.values() if a.device == device]

    @property
    def cpu_nodes(self) -> list[NodeAssignment]:
        return self.on(CPU)

    @property
    def dpu_nodes(self) -> list[NodeAssignment]:
        return self.on(DPU)


# --- helpers ------------------------------------------------------------------------------------


def _pair(value: Any, default: int) -> tuple[int, ...]:
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value)


def _dims(values: Sequence[int]) -> str:
    return " x ".join(str(v) for v in values)


def _shape(graph: Graph, tensor_name: str) -> tuple[int, ...] | None:
    meta = graph.tensor(tensor_name)
    return None if meta is None else meta.shape


def _in_shape(graph: Graph, node: Node) -> tuple[int, ...] | None:
    return _shape(graph, node.inputs[0]) if node.inputs else None


def _out_shape(graph: Graph, node: Node) -> tuple[int, ...] | None:
    return _shape(graph, node.outputs[0]) if node.outputs else None


def _check_limit(name: str, values: Sequence[int], limit: Limit) -> str:
    if any(v not in limit for v in values):
        return f"'{name}'({_dims(values)}) is not in DPU supported range({limit})."
    return ""


def _channels(graph: Graph, node: Node) -> tuple[int | None, int | None]:
    """(input, output) channels: from the weight when there is one, else from shapes (axis 1)."""
    ic = oc = None
    weight = node.params.get("weight")
    groups = int(node.attrs.get("groups", 1))
    if weight is not None and weight.shape is not None and len(weight.shape) >= 2:
        if node.op_type == "conv_transpose2d":
            ic, oc = weight.shape[0], weight.shape[1] * groups
        else:
            oc, ic = weight.shape[0], weight.shape[1] * groups
    in_shape, out_shape = _in_shape(graph, node), _out_shape(graph, node)
    if ic is None and in_shape is not None and len(in_shape) >= 2:
        ic = in_shape[1]
    if oc is None and out_shape is not None and len(out_shape) >= 2:
        oc = out_shape[1]
    return ic, oc


def _check_channels(ic: int | None, oc: int | None, cp: int, dilation: int = 1) -> str:
    """UG1414 "In Size"/"Out Size"/"Dilation": channels (times dilation) <= 256 * cp."""
    limit = 256 * cp
    if ic is not None and ic * dilation > limit:
        what = "'input_channel'" if dilation == 1 else f"'dilation * input_channel'({dilation} *"
        value = f"({ic})" if dilation == 1 else f" {ic})"
        return f"DPU only supports {what}{value} less than or equal to {limit} (256 * {cp})."
    if oc is not None and oc > limit:
        return f"DPU only supports 'output_channel'({oc}) less than or equal to {limit} (256 * {cp})."
    return ""


def _check_pad(padding: Sequence[int], kernel: Sequence[int], dilation: Sequence[int],
               pad_limit: dict[str, Limit] | None) -> str:
    """Symmetric torch padding (ph, pw): within the engine's pad limit, else within the dilated
    kernel ((k - 1) * d + 1, PG338/PG367 "Pad_left/Pad_right")."""
    if any(p < 0 for p in padding):
        return f"DPU only supports non-negative 'pad'({_dims(padding)})."
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


def _covers_input(graph: Graph, node: Node, kernel: Sequence[int]) -> bool:
    """The kernel spans the whole input plane: the stride never applies (reference rule)."""
    shape = _in_shape(graph, node)
    return shape is not None and len(shape) == 4 and tuple(shape[2:]) == tuple(kernel)


# --- per-op rules -------------------------------------------------------------------------------


def _rule_conv2d(graph: Graph, node: Node, t: DpuTarget) -> str:
    groups = int(node.attrs.get("groups", 1))
    ic, oc = _channels(graph, node)
    if groups != 1:
        if ic is not None and groups == ic:
            return _rule_depthwise(graph, node, t)
        return (f"DPU only supports 'groups' 1 (conv2d) or input_channel (depthwise-conv2d), "
                f"got groups={groups} with input_channel={ic}.")
    kernel = _pair(node.attrs.get("kernel"), 1)
    stride = _pair(node.attrs.get("stride"), 1)
    dilation = _pair(node.attrs.get("dilation"), 1)
    padding = _pair(node.attrs.get("padding"), 0)
    conv = t.conv
    msg = _check_limit("kernel", kernel, conv.kernel)
    if msg:
        return msg
    if ic is not None:
        bank = conv.weight_bank
        depth = (kernel[0] * kernel[1] * math.ceil(ic / bank.bank_width)
                 * math.ceil(conv.output_channel_parallel / bank.bank_num))
        if depth > bank.bank_depth:
            return (f"Weights({oc}, {ic}, {_dims(kernel)}) are too large for the weight buffer: "
                    f"'kernel_h * kernel_w * ceil(input_channel / bank_width) * "
                    f"ceil(output_channel_parallel / bank_num)'({depth}) must be less than or "
                    f"equal to {bank.bank_depth}.")
    if not _covers_input(graph, node, kernel):
        msg = _check_limit("stride", stride, conv.stride)
        if msg:
            return msg
    msg = _check_channels(ic, oc, conv.input_channel_parallel, max(dilation))
    return msg or _check_pad(padding, kernel, dilation, None)


def _dw_engine(t: DpuTarget) -> tuple[Limit, Limit, int, dict[str, Limit] | None] | None:
    """(kernel, stride, channel_parallel, pad_limit) of the engine that runs depthwise conv."""
    if t.alu is not None and "dwconv" in t.alu.types:
        return t.alu.kernel, t.alu.stride, t.alu.channel_parallel, t.alu.pad
    if t.dwconv is not None:
        return t.dwconv.kernel, t.dwconv.stride, t.dwconv.channel_parallel, None
    return None


def _rule_depthwise(graph: Graph, node: Node, t: DpuTarget) -> str:
    engine = _dw_engine(t)
    if engine is None:
        return f"{t.name} does not have depthwise-conv-engine."
    kernel_limit, stride_limit, cp, pad_limit = engine
    kernel = _pair(node.attrs.get("kernel"), 1)
    stride = _pair(node.attrs.get("stride"), 1)
    dilation = _pair(node.attrs.get("dilation"), 1)
    padding = _pair(node.attrs.get("padding"), 0)
    msg = _kernel_stride_problem(graph, node, kernel, stride, kernel_limit, stride_limit)
    if msg:
        return msg
    ic, oc = _channels(graph, node)
    msg = _check_channels(ic, oc, cp, max(dilation))
    return msg or _check_pad(padding, kernel, dilation, pad_limit)


def _rule_conv_transpose2d(graph: Graph, node: Node, t: DpuTarget) -> str:
    if any(int(p) != 0 for p in _pair(node.attrs.get("output_padding"), 0)):
        return "DPU does not support output_padding."
    kernel = _pair(node.attrs.get("kernel"), 1)
    stride = _pair(node.attrs.get("stride"), 1)
    groups = int(node.attrs.get("groups", 1))
    ic, oc = _channels(graph, node)
    if groups == 1:
        limit, cp = t.conv.kernel, t.conv.input_channel_parallel
    elif ic is not None and groups == ic:
        engine = _dw_engine(t)
        if engine is None:
            return f"{t.name} does not have depthwise-conv-engine."
        limit, cp = engine[0], engine[2]
    else:
        return (f"DPU only supports 'groups' 1 or input_channel for transposed-conv2d, got "
                f"groups={groups} with input_channel={ic}.")
    for k, s in zip(kernel, stride):
        # UG1414: kernel_w / stride_w, kernel_h / stride_h within the conv kernel range
        if not (k // s in limit and (k % s == 0 or k // s + 1 in limit)):
            return f"'kernel / stride'({k} / {s}) is not in DPU supported range({limit})."
    return _check_channels(ic, oc, cp)


def _rule_pool(graph: Graph, node: Node, t: DpuTarget) -> str:
    kind = "max" if node.op_type.startswith(("max", "adaptive_max")) else "avg"
    in_shape, out_shape = _in_shape(graph, node), _out_shape(graph, node)
    if node.op_type in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        if in_shape is None or out_shape is None or len(in_shape) != 4:
            return ""          # shapes unknown: kernel/stride cannot be derived, not enforced
        if any(i % o for i, o in zip(in_shape[2:], out_shape[2:])):
            return (f"DPU only supports {node.op_type} whose input size {list(in_shape[2:])} "
                    f"is a multiple of its output size {list(out_shape[2:])}.")
        stride = tuple(i // o for i, o in zip(in_shape[2:], out_shape[2:]))
        kernel, padding = stride, (0, 0)
    else:
        kernel = _pair(node.attrs.get("kernel"), 1)
        stride = _pair(node.attrs.get("stride"), kernel[0])
        padding = _pair(node.attrs.get("padding"), 0)
    if t.alu is not None and f"{kind}_pool" in t.alu.types:
        kernel_limit, stride_limit, pad_limit = t.alu.kernel, t.alu.stride, t.alu.pad
    elif t.pool is not None and kind in t.pool.types:
        if kind == "avg" and t.pool.avg_square and kernel[0] != kernel[1]:
            return (f"DPU only supports avgpool with square kernel, but this op has kernel "
                    f"{_dims(kernel)}.")
        kernel_limit = t.pool.avg_kernel if kind == "avg" else t.pool.max_kernel
        stride_limit = t.pool.avg_stride if kind == "avg" else t.pool.max_stride
        pad_limit = None
    else:
        return f"{t.name} does not support {node.op_type}."
    msg = _kernel_stride_problem(graph, node, kernel, stride, kernel_limit, stride_limit)
    if msg:
        return msg
    return _check_pad(padding, kernel, (1, 1), pad_limit)


def _rule_eltwise(graph: Graph, node: Node, t: DpuTarget) -> str:
    kind = "add" if node.op_type == "add" else "mult"
    other = node.params.get("other")
    if kind == "mult" and other is not None:
        # x * constant: per-channel / scalar constants become a depthwise conv (UG1414 "mul")
        size = 1 if other.shape is None else math.prod(other.shape)
        _, oc = _channels(graph, node)
        if _dw_engine(t) is not None and (size == 1 or size == oc):
            return ""
    if kind not in t.eltwise_types():
        return f"{t.name} does not support eltwise {kind.upper().replace('MULT', 'MUL')}."
    ic, _ = _channels(graph, node)
    cp = t.eltwise.channel_parallel if t.eltwise is not None else t.load_channel_parallel
    return _check_channels(ic, None, cp)


def _rule_activation(graph: Graph, node: Node, t: DpuTarget) -> str:
    kind = _ACTIVATIONS[node.op_type]
    activations = t.activations()
    if kind == "hswish" and ("hswish" in activations or "hsigmoid" in activations):
        return ""
    if kind not in activations:
        return f"{t.name} does not support {node.op_type}."
    if node.op_type == "leaky_relu":
        alpha = float(node.attrs.get("alpha", 0.01))
        if alpha != t.leaky_relu_alpha:
            return f"Its alpha is {alpha}, but DPU only supports {t.leaky_relu_alpha}."
    return ""


def _rule_scale(graph: Graph, node: Node, t: DpuTarget) -> str:
    if _dw_engine(t) is None:       # a standalone BatchNorm runs as a 1x1 depthwise conv
        return f"{t.name} does not have depthwise-conv-engine to run a standalone BatchNorm."
    return ""


def _rule_mean(graph: Graph, node: Node, t: DpuTarget) -> str:
    in_shape = _in_shape(graph, node)
    dims = node.attrs.get("dims")
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    if in_shape is not None:
        dims = tuple(d % len(in_shape) for d in dims)
    if in_shape is None or len(in_shape) != 4 or sorted(dims) != [2, 3]:
        return (f"DPU only supports mean over the spatial dimensions (2, 3) of a 4-D tensor "
                f"(global average pooling), got dims {list(dims)}.")
    has_avg = (t.alu is not None and "avg_pool" in t.alu.types) or \
        (t.pool is not None and "avg" in t.pool.types)
    return "" if has_avg else f"{t.name} does not support average pooling."


def _rule_softmax(graph: Graph, node: Node, t: DpuTarget) -> str:
    if t.alu is not None and "softmax" in t.alu.types:
        return ""
    return "DPU does not support softmax."


def _rule_linear(graph: Graph, node: Node, t: DpuTarget) -> str:
    ic, oc = _channels(graph, node)   # a linear layer runs as a 1x1 conv2d on the conv engine
    return _check_channels(ic, oc, t.conv.input_channel_parallel)


def _rule_none(graph: Graph, node: Node, t: DpuTarget) -> str:
    return ""


_RULES = {
    "linear": _rule_linear,
    "conv2d": _rule_conv2d,
    "conv_transpose2d": _rule_conv_transpose2d,
    "scale": _rule_scale,
    "max_pool2d": _rule_pool,
    "avg_pool2d": _rule_pool,
    "adaptive_avg_pool2d": _rule_pool,
    "adaptive_max_pool2d": _rule_pool,
    "add": _rule_eltwise,
    "mul": _rule_eltwise,
    "mean": _rule_mean,
    "softmax": _rule_softmax,
    "relu": _rule_activation,
    "relu6": _rule_activation,
    "leaky_relu": _rule_activation,
    "hardswish": _rule_activation,
    "concat": _rule_none,
    "flatten": _rule_none,
    "reshape": _rule_none,
}


def _kernel_stride_problem(graph: Graph, node: Node, kernel, stride, kernel_limit, stride_limit) -> str:
    """The kernel limit, then the stride limit (which does not apply when the kernel covers the
    whole input, as in a global pool); "" when both hold."""
    msg = _check_limit("kernel", kernel, kernel_limit)
    if msg or _covers_input(graph, node, kernel):
        return msg
    return _check_limit("stride", stride, stride_limit)


def node_fixes(node: Node) -> list[tuple[str, Any]]:
    """Every `(what, (bit_width, fix_point))` of a node: its output, quantized inputs, params."""
    fixes: list[tuple[str, Any]] = []
    if "fix" in node.attrs:
        fixes.append(("output", node.attrs["fix"]))
    for index, fix in dict(node.attrs.get("input_fix", {})).items():
        fixes.append((f"input {index}", fix))
    for role, tensor in node.params.items():
        if "fix" in tensor.attrs:
            fixes.append((role, tensor.attrs["fix"]))
    return fixes


def _bit_width_problem(node: Node, target: DpuTarget) -> str:
    for what, fix in node_fixes(node):
        if int(fix[0]) != target.bit_width:
            return (f"Its {what} is quantized to {int(fix[0])} bits, but DPU only supports "
                    f"{target.bit_width}-bit quantization.")
    return ""


def _in_quantized_part(graph: Graph, node: Node) -> bool:
    """Whether `node` of a quantized graph runs quantized (see the module docstring)."""
    if node_fixes(node):
        return True
    if node.op_type in SHAPE_ONLY_OPS:
        parents = graph.predecessors(node.name)
        return bool(parents) and all(_in_quantized_part(graph, p) for p in parents)
    if node.op_type in FUSING_PRODUCERS and node.outputs:
        readers = graph.consumers(node.outputs[0])
        return (len(readers) == 1 and readers[0].op_type in FUSED_ACTIVATIONS
                and "fix" in readers[0].attrs)
    return False


_FLOAT = "Not in quantizable part."


def _node_rule(graph: Graph, node: Node, target: DpuTarget, quantized: bool,
               float_nodes: frozenset[str] = frozenset()) -> str:
    """The reason `node` cannot run on the DPU, or "" if its own checks pass."""
    if node.op_type == "custom":
        return f"custom op '{node.attrs.get('op_name', node.name)}' can't be converted to XIR."
    if node.op_type not in CNN_OPS:
        return f"{node.op_type} can't be converted to XIR."
    if node.op_type != "input":
        if node.name in float_nodes or (quantized and not _in_quantized_part(graph, node)):
            return _FLOAT
    msg = _bit_width_problem(node, target)
    if msg:
        return msg
    out_shape = _out_shape(graph, node)
    if out_shape is not None and len(out_shape) > target.max_tensor_dims:
        return (f"DPU only supports tensors of up to {target.max_tensor_dims} dimensions, "
                f"its output has {len(out_shape)}.")
    if node.op_type in _CPU_ONLY:
        return f"DPU does not support {node.op_type}."
    if node.op_type in _1D_OPS:
        return f"DPU does not support {node.op_type} (only 2-D convolution and pooling)."
    if node.op_type == "input":
        return ""
    return _RULES[node.op_type](graph, node, target)


# --- graph rules ----------------------------------------------------------------------------


def _graph_rules(graph: Graph, order: list[Node], device: dict[str, str],
                 reason: dict[str, str], target: DpuTarget) -> None:
    def cpu(name: str, why: str) -> None:
        device[name], reason[name] = CPU, why

    for node in order:
        if node.op_type in ("reshape", "flatten") and device[node.name] == DPU:
            if "no_reshape" in target.restrictions:
                cpu(node.name, f"{target.name} does not support {node.op_type}.")
                continue
            parents = graph.predecessors(node.name)
            if not parents or device[parents[0].name] != DPU:
                cpu(node.name, f"The input of {node.op_type} is not on DPU.")
                continue
            children = graph.successors(node.name)
            in_shape, out_shape = _in_shape(graph, node), _out_shape(graph, node)
            if (any(device[c.name] != DPU for c in children) and in_shape and out_shape
                    and in_shape[0] != out_shape[0]):
                cpu(node.name, "First dimension is changed.")
        elif node.op_type == "concat" and device[node.name] == DPU:
            parents = graph.predecessors(node.name)
            if parents and all(device[p.name] != DPU for p in parents):
                cpu(node.name, "All inputs of concat are on CPU.")
                continue
            if "concat_4d_channel_only" in target.restrictions:
                shape = _out_shape(graph, node)
                axis = int(node.attrs.get("axis", 1))
                if shape is None or len(shape) != 4 or axis % 4 != 1:
                    cpu(node.name, f"{target.name} only supports channel-wise concatenation of "
                                   "4-D tensors.")
    for node in order:
        if node.op_type == "input" and device[node.name] == DPU:
            children = graph.successors(node.name)
            if children and not any(device[c.name] == DPU for c in children):
                cpu(node.name, "All the children nodes are assigned to CPU.")


def _partition(graph: Graph, order: list[Node], device: dict[str, str]) -> tuple[Subgraph, ...]:
    """Connected components of same-device nodes, numbered per device in topological order."""
    component: dict[str, int] = {}
    members: list[list[str]] = []
    for node in order:
        if node.name in component:
            continue
        index = len(members)
        members.append([])
        stack = [node]
        component[node.name] = index
        while stack:
            current = stack.pop()
            members[index].append(current.name)
            for other in graph.predecessors(current.name) + graph.successors(current.name):
                if other.name not in component and device[other.name] == device[node.name]:
                    component[other.name] = index
                    stack.append(other)
    position = {n.name: i for i, n in enumerate(order)}
    counters = {DPU: 0, CPU: 0}
    result = []
    for names in members:
        dev = device[names[0]]
        result.append(Subgraph(f"subgraph_{dev.lower()}_{counters[dev]}", dev,
                               tuple(sorted(names, key=position.__getitem__))))
        counters[dev] += 1
    return tuple(result)


def inspect_graph(graph: Graph, target: str | int | DpuTarget, *, quantized: bool | None = None,
                  float_nodes: Collection[str] = ()) -> InspectResult:
    """Assign every node of `graph` (a CNN graph following `cnn_ops`) to DPU or CPU.

    `target` is a name, fingerprint or `DpuTarget`. `quantized` says whether the graph carries
    quantization (`fix` attrs); None decides from the graph (any node with `fix`). A float
    graph is inspected as if every node were quantized to 8 bits, except `float_nodes` (nodes
    the model keeps in float, e.g. outside its QuantStub regions): they run on the CPU.
    """
    dpu = get_target(target)
    order = graph.topological_order()
    if quantized is None:
        quantized = any(node_fixes(n) for n in order)
    kept_float = frozenset(float_nodes)
    device: dict[str, str] = {}
    reason: dict[str, str] = {}
    for node in order:
        why = _node_rule(graph, node, dpu, quantized, kept_float)
        device[node.name] = CPU if why else DPU
        reason[node.name] = why
    _graph_rules(graph, order, device, reason, dpu)
    notes = _notes(order, dpu)
    assignments = {n.name: NodeAssignment(n.name, n.op_type, device[n.name], reason[n.name],
                                          notes.get(n.name, ()),
                                          _engine(graph, n, dpu, device) if device[n.name] == DPU
                                          else "")
                   for n in order}
    return InspectResult(graph, dpu, assignments, _partition(graph, order, device))


# --- which engine runs a DPU node -----------------------------------------------------------


def _engine_of_kind(t: DpuTarget, kind: str) -> str:
    """The engine that runs pooling ("max"/"avg"), depthwise conv ("dw") or eltwise ("add"/"mult")."""
    if kind == "dw":
        return "alu_engine" if t.alu is not None and "dwconv" in t.alu.types else "dwconv_engine"
    if kind in ("max", "avg"):
        return "alu_engine" if t.alu is not None and f"{kind}_pool" in t.alu.types else "pool_engine"
    if t.eltwise is not None and kind in t.eltwise.types:
        return "eltwise_engine"
    return "alu_engine"


def _engine(graph: Graph, node: Node, t: DpuTarget, device: dict[str, str]) -> str:
    """Why a DPU node runs on the DPU: the engine that computes it (the limits it was checked
    against are in the report's target info)."""
    op = node.op_type
    if op == "input":
        return "Graph input of a DPU subgraph, read by the load engine."
    if op in ("conv2d", "conv_transpose2d"):
        ic, _ = _channels(graph, node)
        groups = int(node.attrs.get("groups", 1))
        if groups != 1 and ic is not None and groups == ic:
            return f"Depthwise convolution within the limits of the {_engine_of_kind(t, 'dw')}."
        return "Convolution within the kernel, stride, channel and weight-buffer limits of the conv_engine."
    if op == "linear":
        return "Runs as a 1x1 convolution on the conv_engine."
    if op == "scale":
        return ("Standalone BatchNorm, runs as a 1x1 depthwise convolution on the "
                f"{_engine_of_kind(t, 'dw')}.")
    if op in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "mean"):
        kind = "max" if op.startswith(("max", "adaptive_max")) else "avg"
        what = "Global average pooling" if op == "mean" else "Pooling"
        return f"{what} within the kernel and stride limits of the {_engine_of_kind(t, kind)}."
    if op in ("add", "mul"):
        if op == "mul" and "other" in node.params:
            return ("Multiplication by a constant, runs as a depthwise convolution on the "
                    f"{_engine_of_kind(t, 'dw')}.")
        what, kind = ("addition", "add") if op == "add" else ("multiplication", "mult")
        return f"Element-wise {what} on the {_engine_of_kind(t, kind)}."
    if op in _ACTIVATIONS:
        parents = graph.predecessors(node.name)
        if (len(parents) == 1 and parents[0].op_type in FUSING_PRODUCERS
                and device.get(parents[0].name) == DPU):
            return f"Fused into '{parents[0].name}' as the nonlinear function of its engine."
        return "A nonlinear function the DPU engines support."
    if op == "softmax":
        return "Softmax on the alu_engine."
    if op in ("concat", "flatten", "reshape"):
        return "Data movement only: the DPU compiler folds it into its neighbours' memory layout."
    return "Supported by the DPU."


def _notes(order: list[Node], target: DpuTarget) -> dict[str, tuple[str, ...]]:
    """Hints for the report: what hardware-aware quantization would change on the node."""
    from .adjust import hardware_aware_adjustments_for_nodes
    notes: dict[str, list[str]] = {}
    for adjustment in hardware_aware_adjustments_for_nodes(order, target):
        if adjustment.kind == "leaky_relu_alpha" and "leaky_relu" not in target.activations():
            continue        # no LeakyReLU on this DPU at all: its slope is not changed
        notes.setdefault(adjustment.node, []).append(adjustment.describe())
    return {k: tuple(v) for k, v in notes.items()}

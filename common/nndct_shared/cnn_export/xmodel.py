"""The XIR graph (`.xmodel`) of a quantized neutral CNN graph.

Why this shape: the file must compute what the quantized model computes, in XIR's channels-last
layout, with the reference quantizer's names, so that the Vitis compiler, the deploy-check dumps
(`deploy_dump.py`) and our own evaluator (`xmodel_eval.py`) agree with the model. Rules (spec
xmodel-format.md §2):

- node `n` becomes op `to_op_name(n)`; a quantized output adds `fix` op `<op>_fix`; a quantized
  input k adds `<op>_pre_fix_i<k>`; params become `const` ops (+ `_fix`) in XIR layouts (conv2d
  OHWI, depthwise `[m, kh, kw, C]`, conv1d `[O, K, I]`, transposed conv flipped, linear kept
  `[out, in]` under a matmul with transpose_b);
- activations are NHWC / NLC (see `layout`); concat/softmax/mean axes are remapped;
- ops whose element order depends on the layout (flatten, reshape, custom ops, mixed-rank
  elementwise ops, linear on rank>2) read torch layout through a `<producer>_t` transpose and,
  when their output is rank 3/4, compute `<op>_i0` and transpose back as `<op>`;
- average pools are `<op>_i0` (avgpool2d, or an `aten::` custom op for 1-D / non-divisible
  adaptive pools) times the float32 const `<op>_i1` (the node's `dpu_scale`, else 1.0) as `mul`
  `<op>`; `mean` with a `dpu_scale` is written the same way with `reduction_mean`;
- adaptive max pools are plain maxpool2d / maxpool1d (kernel = stride = input / output) when
  the input divides into the output; otherwise EXPORT_UNSUPPORTED;
- graph attr `return_ops` lists the value ops (fix ops where quantized) of the graph outputs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..graph import Graph, Node, to_op_name
from ..messages import error
from ..progress import progress
from ..xmodel import XGraph, XGraphError, write_xmodel
from . import layout as L
from .validate import batch_size, fix_of, input_fix_of, refuse_float_scale, tensor_shape, validate_cnn_graph

__all__ = ["build_cnn_xgraph", "write_cnn_xmodel", "XMODEL_FORMAT"]

XMODEL_FORMAT = "xmodel"
_ELEMENTWISE = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh",
                "hardswish": "hard-swish"}
_CUSTOM_ATTRS_SKIPPED = ("op_name", "fix", "input_fix")


class _Unsupported(Exception):
    pass


class _Builder:
    """Emits the XIR ops of one neutral graph, node by node, in topological order."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.x = XGraph(graph.name)
        self.value_op: dict[str, str] = {}  # tensor name -> op holding it (XIR layout)

    # --- helpers ------------------------------------------------------------------------

    def shape(self, tensor: str) -> tuple[int, ...]:
        return tensor_shape(self.graph, tensor)

    def inputs(self, node: Node) -> list[str]:
        ops = [self.value_op[t] for t in node.inputs]
        for index, (bw, fp) in sorted(input_fix_of(node).items()):
            name = f"{to_op_name(node.name)}_pre_fix_i{index}"
            self.x.add_fix(ops[index], bw, fp, name=name)
            ops[index] = name
        return ops

    def const(self, node: Node, role: str, data: np.ndarray) -> str:
        tensor = node.params[role]
        name = to_op_name(tensor.name)
        fix = tensor.attrs.get("fix")
        final = f"{name}_fix" if fix is not None else name
        if name in self.x:
            return final
        self.x.add_const(name, data)
        if fix is not None:
            self.x.add_fix(name, int(fix[0]), int(fix[1]))
        return final

    def torch_in(self, op: str) -> str:
        """The value of `op` in torch layout (a `<op>_t` transpose for rank 3/4)."""
        shape = self.x.op(op).shape
        rank = len(shape)
        if rank not in (3, 4):
            return op
        name = f"{op}_t"
        if name not in self.x:
            order = list(L.inverse_perm(L.xir_perm(rank)))
            self.x.add_op(name, "transpose", inputs={"input": [op]}, attrs={"order": order},
                          shape=[shape[i] for i in order])
        return name

    def emit(self, node: Node, op_type: str, inputs: dict[str, list[str]],
             attrs: dict[str, Any] | None = None, *, torch_out: bool = False,
             name: str | None = None) -> str:
        """Add the node's main op; with torch_out, its output is in torch layout and a sink
        transpose named after the node restores XIR layout for rank 3/4."""
        out = self.shape(node.outputs[0])
        final = name or to_op_name(node.name)
        if torch_out and len(out) in (3, 4):
            core = f"{final}_i0"
            self.x.add_op(core, op_type, inputs=inputs, attrs=attrs, shape=list(out))
            self.x.add_op(final, "transpose", inputs={"input": [core]},
                          attrs={"order": list(L.xir_perm(len(out)))}, shape=L.xir_shape(out))
        else:
            self.x.add_op(final, op_type, inputs=inputs, attrs=attrs,
                          shape=list(out) if torch_out else L.xir_shape(out))
        return final

    def finish(self, node: Node, op: str) -> None:
        fix = fix_of(node)
        if fix is not None:
            op = self.x.add_fix(op, fix[0], fix[1]).name
        self.value_op[node.outputs[0]] = op

    # --- ops ----------------------------------------------------------------------------

    def node(self, node: Node) -> None:
        op = node.op_type
        if op == "input":
            out = self.x.add_data(to_op_name(node.name), L.xir_shape(self.shape(node.outputs[0])))
            self.finish(node, out.name)
            return
        handler = getattr(self, f"_{op}", None)
        if handler is None:
            handler = self._elementwise if op in _ELEMENTWISE else None
        if handler is None:
            raise _Unsupported(f"no XIR mapping for op type {op!r}")
        self.finish(node, handler(node, self.inputs(node)))

    def _elementwise(self, node: Node, xs: list[str]) -> str:
        return self.emit(node, _ELEMENTWISE[node.op_type], {"input": xs})

    def _leaky_relu(self, node: Node, xs: list[str]) -> str:
        return self.emit(node, "leaky-relu", {"input": xs},
                         {"alpha": float(node.attrs["alpha"])})

    def _linear(self, node: Node, xs: list[str]) -> str:
        w = self.const(node, "weight", node.params["weight"].data)
        args = {"input": [xs[0], w]}
        if "bias" in node.params:
            args["bias"] = [self.const(node, "bias", node.params["bias"].data)]
        attrs = {"transpose_a": False, "transpose_b": True}
        if len(self.shape(node.inputs[0])) <= 2:
            return self.emit(node, "matmul", args, attrs)
        args["input"][0] = self.torch_in(xs[0])
        return self.emit(node, "matmul", args, attrs, torch_out=True)

    def _conv_args(self, node: Node, x: str, weight: np.ndarray) -> dict[str, list[str]]:
        args = {"input": [x], "weights": [self.const(node, "weight", weight)]}
        if "bias" in node.params:
            args["bias"] = [self.const(node, "bias", node.params["bias"].data)]
        return args

    def _conv1d(self, node: Node, xs: list[str]) -> str:
        a = node.attrs
        if int(a["groups"]) != 1:
            raise _Unsupported("XIR conv1d has no groups; only groups=1 is supported")
        c_in = self.shape(node.inputs[0])[1]
        weight = L.xir_conv_weight(node.params["weight"].data, 1, c_in)
        p = int(a["padding"][0])
        return self.emit(node, "conv1d", self._conv_args(node, xs[0], weight),
                         {"kernel": list(a["kernel"]), "stride": list(a["stride"]),
                          "dilation": list(a["dilation"]), "pad_mode": "FLOOR", "pad": [p, p]})

    def _conv2d(self, node: Node, xs: list[str]) -> str:
        a = node.attrs
        groups = int(a["groups"])
        c_in = self.shape(node.inputs[0])[1]
        c_out = node.params["weight"].data.shape[0]
        weight = L.xir_conv_weight(node.params["weight"].data, groups, c_in)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel"], a["stride"], a["padding"],
                                                  a["dilation"])
        attrs: dict[str, Any] = {"kernel": [kw, kh], "stride": [sw, sh], "dilation": [dw, dh],
                                 "pad_mode": "FLOOR", "pad": [pw, pw, ph, ph]}
        if L.is_depthwise(groups, c_in, c_out):
            op_type = "depthwise-conv2d"
        else:
            op_type = "conv2d"
            if groups != 1:
                attrs["group"] = groups
        return self.emit(node, op_type, self._conv_args(node, xs[0], weight), attrs)

    def _conv_transpose2d(self, node: Node, xs: list[str]) -> str:
        a = node.attrs
        groups = int(a["groups"])
        c_in = self.shape(node.inputs[0])[1]
        if tuple(a["dilation"]) != (1, 1):
            raise _Unsupported("transposed conv with dilation != 1 has no XIR form here")
        if groups == 1:
            op_type = "transposed-conv2d"
        elif groups == c_in:
            op_type = "transposed-depthwise-conv2d"
        else:
            raise _Unsupported(f"transposed conv with groups={groups} (neither 1 nor C_in)")
        weight = L.xir_transposed_weight(node.params["weight"].data)
        (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
        oph, opw = a["output_padding"]
        attrs = {"kernel": [kw, kh], "stride": [sw, sh], "dilation": [1, 1],
                 "pad_mode": "FLOOR", "pad": [pw, pw - opw, ph, ph - oph]}
        return self.emit(node, op_type, self._conv_args(node, xs[0], weight), attrs)

    def _scale(self, node: Node, xs: list[str]) -> str:
        args = {"input": xs, "scale": [self.const(node, "weight", node.params["weight"].data)],
                "bias": [self.const(node, "bias", node.params["bias"].data)]}
        return self.emit(node, "scale", args, {"axis": -1})

    @staticmethod
    def _window_attrs(node: Node) -> dict[str, Any]:
        a = node.attrs
        kernel, stride, padding = list(a["kernel"]), list(a["stride"]), list(a["padding"])
        pad_mode = "CEIL" if a["ceil_mode"] else "FLOOR"
        if len(kernel) == 1:
            return {"kernel": kernel, "stride": stride, "pad_mode": pad_mode,
                    "pad": [padding[0], padding[0]]}
        return {"kernel": kernel[::-1], "stride": stride[::-1], "pad_mode": pad_mode,
                "pad": [padding[1], padding[1], padding[0], padding[0]], "global": False}

    def _max_pool2d(self, node: Node, xs: list[str]) -> str:
        return self.emit(node, "maxpool2d", {"input": xs}, self._window_attrs(node))

    def _max_pool1d(self, node: Node, xs: list[str]) -> str:
        attrs = self._window_attrs(node)
        attrs["global"] = False
        return self.emit(node, "maxpool1d", {"input": xs}, attrs)

    def _scaled(self, node: Node, core: str) -> str:
        """`<op>_i1` const scale and the `mul` named after the node."""
        name = to_op_name(node.name)
        scale = float(node.attrs.get("dpu_scale", 1.0))
        self.x.add_const(f"{name}_i1", np.array([scale], dtype=np.float32))
        return self.emit(node, "mul", {"input": [core, f"{name}_i1"]})

    def _pool_core(self, node: Node, op_type: str, xs: list[str], attrs: dict[str, Any]) -> str:
        name = f"{to_op_name(node.name)}_i0"
        out = L.xir_shape(self.shape(node.outputs[0]))
        self.x.add_op(name, op_type, inputs={"input": xs}, attrs=attrs, shape=out)
        return name

    def _avg_pool2d(self, node: Node, xs: list[str]) -> str:
        attrs = self._window_attrs(node)
        attrs.update(count_include_pad=bool(node.attrs["count_include_pad"]),
                     count_include_invalid=False)
        return self._scaled(node, self._pool_core(node, "avgpool2d", xs, attrs))

    def _avg_pool1d(self, node: Node, xs: list[str]) -> str:
        a = node.attrs
        attrs = {"kernel": list(a["kernel"]), "stride": list(a["stride"]),
                 "pad": [a["padding"][0], a["padding"][0]], "ceil_mode": bool(a["ceil_mode"]),
                 "count_include_pad": bool(a["count_include_pad"])}
        return self._scaled(node, self._pool_core(node, "aten::avg_pool1d", xs, attrs))

    def _adaptive_avg_pool2d(self, node: Node, xs: list[str]) -> str:
        _, _, h, w = self.shape(node.inputs[0])
        oh, ow = node.attrs["output_size"]
        if h % oh or w % ow:
            core = self._pool_core(node, "aten::adaptive_avg_pool2d", xs,
                                   {"output_size": [int(oh), int(ow)]})
        else:
            kh, kw = h // oh, w // ow
            attrs = {"kernel": [kw, kh], "stride": [kw, kh], "pad_mode": "FLOOR",
                     "pad": [0, 0, 0, 0], "global": (oh, ow) == (1, 1),
                     "count_include_pad": True, "count_include_invalid": False}
            core = self._pool_core(node, "avgpool2d", xs, attrs)
        return self._scaled(node, core)

    def _adaptive_avg_pool1d(self, node: Node, xs: list[str]) -> str:
        core = self._pool_core(node, "aten::adaptive_avg_pool1d", xs,
                               {"output_size": [int(node.attrs["output_size"][0])]})
        return self._scaled(node, core)

    def _adaptive_max_window(self, node: Node) -> tuple[list[int], list[int]]:
        """(input size, kernel) of an adaptive max pool with uniform windows, torch order."""
        size = [int(s) for s in self.shape(node.inputs[0])[2:]]
        out = [int(o) for o in node.attrs["output_size"]]
        if any(s % o for s, o in zip(size, out)):
            raise _Unsupported(f"adaptive max pool from {size} to {out} has windows of different "
                               "sizes (no maxpool form)")
        return size, [s // o for s, o in zip(size, out)]

    def _adaptive_max_pool2d(self, node: Node, xs: list[str]) -> str:
        _, (kh, kw) = self._adaptive_max_window(node)
        attrs = {"kernel": [kw, kh], "stride": [kw, kh], "pad_mode": "FLOOR", "pad": [0, 0, 0, 0],
                 "global": tuple(node.attrs["output_size"]) == (1, 1)}
        return self.emit(node, "maxpool2d", {"input": xs}, attrs)

    def _adaptive_max_pool1d(self, node: Node, xs: list[str]) -> str:
        _, (k,) = self._adaptive_max_window(node)
        attrs = {"kernel": [k], "stride": [k], "pad_mode": "FLOOR", "pad": [0, 0], "global": False}
        return self.emit(node, "maxpool1d", {"input": xs}, attrs)

    def _binary(self, node: Node, xs: list[str]) -> str:
        out_rank = len(self.shape(node.outputs[0]))
        ranks = [len(self.shape(t)) for t in node.inputs]
        direct = out_rank <= 2 or all(r == out_rank for r in ranks)
        operands = list(xs) if direct else [self.torch_in(x) for x in xs]
        if "other" in node.params:
            data = np.asarray(node.params["other"].data, dtype=np.float32)
            data = L.xir_broadcast_operand(data, out_rank) if direct else (
                data.reshape(1) if data.ndim == 0 else data)
            operands.insert(int(node.attrs["other_index"]), self.const(node, "other", data))
        op_type = {"add": "add", "sub": "sub", "mul": "mul"}[node.op_type]
        return self.emit(node, op_type, {"input": operands}, torch_out=not direct)

    _add = _sub = _mul = _binary

    def _concat(self, node: Node, xs: list[str]) -> str:
        rank = len(self.shape(node.inputs[0]))
        axis = L.xir_perm(rank).index(int(node.attrs["axis"]) % rank)
        return self.emit(node, "concat", {"input": xs}, {"axis": axis})

    def _softmax(self, node: Node, xs: list[str]) -> str:
        rank = len(self.shape(node.inputs[0]))
        axis = L.xir_perm(rank).index(int(node.attrs["dim"]) % rank)
        return self.emit(node, "softmax", {"input": xs}, {"axis": axis})

    def _flatten(self, node: Node, xs: list[str]) -> str:
        rank = len(self.shape(node.inputs[0]))
        attrs = {"start_axis": int(node.attrs["start_dim"]) % rank,
                 "end_axis": int(node.attrs["end_dim"]) % rank}
        if rank <= 2:
            return self.emit(node, "flatten", {"input": xs}, attrs)
        return self.emit(node, "flatten", {"input": [self.torch_in(xs[0])]}, attrs,
                         torch_out=True)

    def _reshape(self, node: Node, xs: list[str]) -> str:
        name = to_op_name(node.name)
        target = [int(d) for d in node.attrs["shape"]]
        dims = []
        for i, d in enumerate(target):
            const = f"{name}_shape_attr_{i}_"
            self.x.add_const(const, np.array([d], dtype=np.float32))
            dims.append(const)
        stack = f"{name}_shape_i0"
        self.x.add_op(stack, "stack", inputs={"input": dims}, attrs={"axis": 0},
                      shape=[len(target), 1], tensor_attrs={"shape_info": target})
        in_rank = len(self.shape(node.inputs[0]))
        out_rank = len(self.shape(node.outputs[0]))
        if in_rank <= 2 and out_rank <= 2:
            return self.emit(node, "reshape", {"input": xs, "shape": [stack]})
        return self.emit(node, "reshape", {"input": [self.torch_in(xs[0])], "shape": [stack]},
                         torch_out=True)

    def _mean(self, node: Node, xs: list[str]) -> str:
        in_shape = self.shape(node.inputs[0])
        rank = len(in_shape)
        dims = sorted({int(d) % rank for d in node.attrs["dims"]})
        keep = bool(node.attrs["keepdim"])
        perm = L.xir_perm(rank)
        kept_torch = [d for d in range(rank) if keep or d not in dims]
        xir_order = [kept_torch.index(p) for p in perm if keep or p not in dims]
        direct = tuple(xir_order) == L.xir_perm(len(kept_torch))
        scaled = node.attrs.get("dpu_scale") is not None
        if direct:
            attrs = {"axis": [perm.index(d) for d in dims], "keep_dims": keep}
            if not scaled:
                return self.emit(node, "reduction_mean", {"input": xs}, attrs)
            return self._scaled(node, self._pool_core(node, "reduction_mean", xs, attrs))
        if scaled:
            raise _Unsupported("a mean with dpu_scale whose reduced layout differs from XIR's")
        return self.emit(node, "reduction_mean", {"input": [self.torch_in(xs[0])]},
                         {"axis": dims, "keep_dims": keep}, torch_out=True)

    def _custom(self, node: Node, xs: list[str]) -> str:
        attrs = {k: v for k, v in node.attrs.items()
                 if k not in _CUSTOM_ATTRS_SKIPPED and k not in ("shape", "data_type")}
        attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.items()}
        return self.emit(node, str(node.attrs["op_name"]),
                         {"input": [self.torch_in(x) for x in xs]}, attrs, torch_out=True)


def build_cnn_xgraph(graph: Graph) -> XGraph:
    """The XGraph of a validated, quantized neutral CNN graph with batch size 1.

    Raises CNN_GRAPH_INVALID for a graph that breaks the contract, XMODEL_BATCHSIZE for a batch
    other than 1, EXPORT_UNSUPPORTED for an op with no XIR form (message names the node)."""
    validate_cnn_graph(graph)
    refuse_float_scale(graph, "The xmodel")
    batch = batch_size(graph)
    if batch != 1:
        raise error("XMODEL_BATCHSIZE", batch_size=batch)
    builder = _Builder(graph)
    for node in progress(graph.topological_order(), f"export xmodel {graph.name}", unit="node"):
        try:
            builder.node(node)
        except _Unsupported as exc:
            raise error("EXPORT_UNSUPPORTED", format=XMODEL_FORMAT, node=node.name,
                        op_type=node.op_type, reason=str(exc)) from None
        except XGraphError as exc:
            raise error("EXPORT_XMODEL", graph=graph.name,
                        reason=f"node '{node.name}' ({node.op_type}): {exc}") from None
    builder.x.set_return_ops([builder.value_op[n.outputs[0]] for n in graph.outputs])
    return builder.x


def write_cnn_xmodel(graph: Graph, path: str | os.PathLike[str]) -> Path:
    """Build the xmodel of `graph` and write it atomically to `path`; returns the path."""
    xgraph = build_cnn_xgraph(graph)
    return Path(write_xmodel(xgraph, path))

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
from ..graph.ops import ExportUnsupported, get_op
from ..messages import error
from ..progress import progress
from ..xmodel import XGraph, XGraphError, write_xmodel
from . import layout as L
from .validate import batch_size, fix_of, input_fix_of, refuse_float_scale, tensor_shape, validate_cnn_graph

__all__ = ["build_cnn_xgraph", "write_cnn_xmodel", "XMODEL_FORMAT"]

XMODEL_FORMAT = "xmodel"


class _Builder:
    """Emits the XIR ops of one neutral graph, node by node, in topological order; each op's
    entry in the op registry (`OpDef.to_xmodel`) emits its own ops with the helpers below."""

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

    def scaled(self, node: Node, core: str) -> str:
        """`<op>_i1` const scale (the node's `dpu_scale`, else 1.0) and the `mul` named after
        the node (average pools, a scaled mean)."""
        name = to_op_name(node.name)
        scale = float(node.attrs.get("dpu_scale", 1.0))
        self.x.add_const(f"{name}_i1", np.array([scale], dtype=np.float32))
        return self.emit(node, "mul", {"input": [core, f"{name}_i1"]})

    def pool_core(self, node: Node, op_type: str, xs: list[str], attrs: dict[str, Any]) -> str:
        """The `<op>_i0` op (XIR layout) whose value `scaled` multiplies."""
        name = f"{to_op_name(node.name)}_i0"
        out = L.xir_shape(self.shape(node.outputs[0]))
        self.x.add_op(name, op_type, inputs={"input": xs}, attrs=attrs, shape=out)
        return name

    # --- nodes --------------------------------------------------------------------------

    def node(self, node: Node) -> None:
        """The node's XIR ops, by its op's `to_xmodel` facet (`nndct_shared.graph.ops`)."""
        self.finish(node, get_op(node.op_type).to_xmodel(self, node, self.inputs(node)))


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
        except ExportUnsupported as exc:
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

"""The graph handed to the neutral exporters: the captured graph with quantized params and the
fix facts of the calibration result (the contract of the op registry, graph/ops).

Why a copy: the captured graph keeps float params (BatchNorm folded) so that test mode can
re-quantize from any quant_info.json; exports need the values on the fixed-point grid, the
`fix` attrs, and activation shapes of the exported batch (batch 1 for the xmodel).

Float-scale tensors get the attr `qparams` instead of `fix` (see `float_qparams_attr`): their
params are fake-quantized by the numpy reference of `nndct_shared.calibration.float_scale`.
The ONNX exporter writes them as QDQ with their scale and zero point; the xmodel refuses them.
A power-of-two narrow-range tensor keeps its `fix` and gets `narrow_range: True` (its params
are on the narrow grid; ONNX clips its activations to it, the xmodel cannot say it).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nndct_shared import kernels
from nndct_shared.calibration import FloatQParams
from nndct_shared.calibration.float_scale import fake_quant_float_numpy
from nndct_shared.graph import Graph, Node, Tensor
from nndct_shared.messages import error

from .settings import TensorSettings

__all__ = ["export_graph"]


def float_qparams_attr(s: TensorSettings, qp: FloatQParams) -> dict[str, Any]:
    """The `qparams` attr of a float-scale tensor in the export graph."""
    return {"bit_width": s.bit_width, "signed": s.signed, "narrow_range": s.narrow_range,
            "symmetric": s.symmetric, "scale": float(qp.scale), "zero_point": int(qp.zero_point)}


def _quantized_param(node: Node, tensor: Tensor, s: TensorSettings | None, fix_pos: Any) -> Tensor:
    if s is None or fix_pos is None:
        return Tensor(tensor.name, data=tensor.data.copy(), attrs=dict(tensor.attrs))
    if isinstance(fix_pos, FloatQParams):
        data = fake_quant_float_numpy(np.asarray(tensor.data, dtype=np.float32), s.float_spec, fix_pos,
                                      s.round_method)
        attrs = dict(tensor.attrs)
        attrs["qparams"] = float_qparams_attr(s, fix_pos)
        return Tensor(tensor.name, data=data, attrs=attrs)
    if isinstance(fix_pos, tuple):
        raise error("EXPORT_UNSUPPORTED", format="The xmodel, ONNX and deploy-check", node=node.name,
                    op_type=node.op_type, reason=f"'{tensor.name}' is quantized per channel, and these "
                    "formats carry one fix position per tensor (per_channel is for CPU/GPU targets; "
                    "export_torch_script() keeps it)")
    data = kernels.fix_neuron(np.ascontiguousarray(tensor.data, dtype=np.float32), s.bit_width,
                              int(fix_pos), s.round_method).reshape(tensor.data.shape)
    attrs = dict(tensor.attrs)
    attrs["fix"] = (s.bit_width, int(fix_pos))
    if s.narrow_range:  # the narrow grid drops the lowest code (quantization.fake_quant)
        data = np.maximum(data, np.float32(-(2 ** (s.bit_width - 1) - 1) * 2.0 ** -int(fix_pos)))
        attrs["narrow_range"] = True
    return Tensor(tensor.name, data=data, attrs=attrs)


def export_graph(graph: Graph, settings: Mapping[str, TensorSettings], fix_pos: Mapping[str, Any],
                 shapes: Mapping[str, tuple[int, ...]] | None = None) -> Graph:
    """A copy of `graph` with quantized params, `fix` attrs and (optionally) new output shapes."""
    out = Graph(graph.name, graph.attrs)
    for node in graph.topological_order():
        params = {role: _quantized_param(node, t, settings.get(t.name), fix_pos.get(t.name))
                  for role, t in node.params.items()}
        attrs = dict(node.attrs)
        new_shape = shapes.get(node.outputs[0]) if shapes is not None else None
        if node.op_type == "reshape" and new_shape is not None:
            attrs["shape"] = tuple(new_shape)
        s, fp = settings.get(node.name), fix_pos.get(node.name)
        if s is not None and isinstance(fp, FloatQParams):
            attrs["qparams"] = float_qparams_attr(s, fp)
        elif s is not None and fp is not None:
            attrs["fix"] = (s.bit_width, int(fp))
            if s.narrow_range:
                attrs["narrow_range"] = True
        out.add_node(Node(node.name, node.op_type, attrs, list(node.inputs), list(node.outputs), params))
        for name in node.outputs:
            meta = graph.tensor(name)
            shape = shapes.get(name) if shapes is not None else None
            if shape is None and meta is not None:
                shape = meta.shape
            out.set_tensor(Tensor(name, shape=shape, dtype=meta.dtype if meta is not None else "float32"))
    out.set_inputs([n.name for n in graph.inputs])
    out.set_outputs([n.name for n in graph.outputs])
    return out

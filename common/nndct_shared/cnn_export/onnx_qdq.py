"""ONNX export of a quantized neutral CNN graph as a QDQ model (NCHW, standard ops only).

Why QDQ: any ONNX runtime can run it, and the quantization stays visible as data. Mapping:

- a quantized activation (node `fix`, `input_fix`) is QuantizeLinear -> DequantizeLinear with
  scale 2^-fix_point; the signed grid of bit width <= 8 is stored as uint8 with zero point 128
  (the int8 codes + 128: the same values after DequantizeLinear), 9..16 bits as int16 with zero
  point 0; widths that are not the storage's full width, and narrow-range grids (attr
  `narrow_range`: qmin one code higher), are clamped first by a float Clip to
  [qmin * scale, qmax * scale], which gives exactly the clamped codes (wider than 16: error);
- a float-scale tensor (attr `qparams`, `nndct_shared.calibration.float_scale`; 8-bit only,
  other widths raise EXPORT_UNSUPPORTED) is QuantizeLinear -> DequantizeLinear with its float32
  scale and its zero point, uint8 for unsigned grids and, for signed ones, uint8 with the zero
  point + 128 (as above); a narrow range is a float Clip to [(qmin - zp) * scale,
  (qmax - zp) * scale] first; a float-scale param is a uint8/int8 initializer of its codes
  (q = x / scale + zp) followed by DequantizeLinear;

Why uint8 activations: onnxruntime (1.32, opset 21) optimizes QDQ models for uint8 activations.
With int8 activation zero points its default session options (graph optimization level
extended and above) refuse the model: QDQ propagation copies a DequantizeLinear -> Reshape
into a QuantizeLinear with `output_dtype` int8, which it then rejects next to an int8 zero
point, and the QLinearAveragePool fusion mixes int8 and uint8.
- a quantized param is an int8/int16 initializer of its codes followed by DequantizeLinear;
  float params (and quantized ones wider than 16 bits) are float32 initializers;
- ops: Gemm (linear, transB=1) or MatMul+Add for rank > 2, Conv, ConvTranspose, Mul+Add
  (scale), Relu, Clip (relu6), LeakyRelu, Sigmoid, Tanh, hardswish as x * Clip(x + 3, 0, 6) / 6
  (torch's formula, so it rounds like the model), MaxPool, AveragePool (adaptive pools when the
  input divides into the output, GlobalAveragePool / GlobalMaxPool for output 1), a Mul by the node's
  `dpu_scale`, Add/Sub/Mul, Concat, Reshape (flatten/reshape), ReduceMean, Softmax.
  `custom` nodes and non-divisible adaptive pools raise EXPORT_UNSUPPORTED (a
  NotImplementedError) naming the node.

Rounding: QuantizeLinear rounds ties to even, the DPU (and `reference.py`) rounds ties toward
+inf, so outputs can differ by one step where a value lies exactly halfway between two codes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic_io import write_bytes_atomic
from ..graph import Graph, Node
from ..graph.ops import ExportUnsupported, get_op
from ..messages import error
from .validate import fix_of, input_fix_of, qparams_of, tensor_shape, validate_cnn_graph

__all__ = ["build_onnx_model", "write_onnx", "ONNX_FORMAT", "DEFAULT_OPSET"]

ONNX_FORMAT = "ONNX"
DEFAULT_OPSET = 21


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise error("ONNX_UNAVAILABLE", reason=str(exc)) from None
    return onnx


def _activation_zero_point(dtype: type, zero_point: int) -> np.ndarray:
    """The zero point of an activation QDQ: an int8 grid becomes uint8, shifted by 128."""
    if dtype is np.int8:
        return np.array(zero_point + 128, dtype=np.uint8)
    return np.array(zero_point, dtype=dtype)


class _Builder:
    def __init__(self, graph: Graph, onnx: Any) -> None:
        self.graph = graph
        self.onnx = onnx
        self.h = onnx.helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.names: set[str] = set()
        self.value: dict[str, str] = {}

    # --- helpers ----------------------------------------------------------------------------

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def init(self, base: str, array: np.ndarray) -> str:
        name = self.unique(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op_type: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.unique(base)
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    @staticmethod
    def storage(bw: int) -> type:
        if bw <= 8:
            return np.int8
        if bw <= 16:
            return np.int16
        raise ExportUnsupported(f"bit width {bw} has no ONNX integer storage (at most 16)")

    def qdq(self, x: str, fix: tuple[int, int], base: str, narrow: bool = False) -> str:
        bw, fp = fix
        dtype = self.storage(bw)
        scale = self.init(f"{base}_scale", np.array(2.0 ** -fp, dtype=np.float32))
        zero = self.init(f"{base}_zero_point", _activation_zero_point(dtype, 0))
        if bw not in (8, 16) or narrow:
            lo = np.array(-(2.0 ** (bw - 1) - narrow) * 2.0 ** -fp, dtype=np.float32)
            hi = np.array((2.0 ** (bw - 1) - 1) * 2.0 ** -fp, dtype=np.float32)
            x = self.add("Clip", [x, self.init(f"{base}_min", lo), self.init(f"{base}_max", hi)],
                         f"{base}_clip")
        q = self.add("QuantizeLinear", [x, scale, zero], f"{base}_q")
        return self.add("DequantizeLinear", [q, scale, zero], f"{base}_dq")

    @staticmethod
    def float_grid(qp: dict) -> tuple[type, int, int, np.ndarray, np.ndarray]:
        """(storage dtype, qmin, qmax, scale, zero point) of a float-scale tensor."""
        from ..calibration.float_scale import quant_range

        bw = int(qp["bit_width"])
        if bw != 8:
            raise ExportUnsupported(f"a float-scale tensor of bit width {bw}: ONNX QuantizeLinear "
                               "takes 8-bit float-scale grids here (int8/uint8)")
        dtype = np.int8 if qp["signed"] else np.uint8
        qmin, qmax = quant_range(bw, bool(qp["signed"]), bool(qp["narrow_range"]))
        return (dtype, qmin, qmax, np.array(qp["scale"], dtype=np.float32),
                np.array(int(qp["zero_point"]), dtype=dtype))

    def qdq_float(self, x: str, qp: dict, base: str) -> str:
        dtype, qmin, qmax, scale_value, zero_value = self.float_grid(qp)
        scale = self.init(f"{base}_scale", scale_value)
        zero = self.init(f"{base}_zero_point", _activation_zero_point(dtype, int(zero_value)))
        info = np.iinfo(dtype)
        if (qmin, qmax) != (info.min, info.max):
            zp = int(qp["zero_point"])
            lo = np.array((qmin - zp) * float(scale_value), dtype=np.float32)
            hi = np.array((qmax - zp) * float(scale_value), dtype=np.float32)
            x = self.add("Clip", [x, self.init(f"{base}_min", lo), self.init(f"{base}_max", hi)],
                         f"{base}_clip")
        q = self.add("QuantizeLinear", [x, scale, zero], f"{base}_q")
        return self.add("DequantizeLinear", [q, scale, zero], f"{base}_dq")

    def param(self, node: Node, role: str, data: np.ndarray | None = None) -> str:
        tensor = node.params[role]
        data = np.asarray(tensor.data if data is None else data, dtype=np.float32)
        qp = qparams_of(tensor.attrs)
        if qp is not None:
            dtype, qmin, qmax, scale_value, zero_value = self.float_grid(qp)
            codes = np.clip(np.round(data.astype(np.float64) / float(scale_value)) + int(zero_value),
                            qmin, qmax).astype(dtype)
            codes_name = self.init(f"{tensor.name}_quantized", codes)
            scale = self.init(f"{tensor.name}_scale", scale_value)
            zero = self.init(f"{tensor.name}_zero_point", zero_value)
            return self.add("DequantizeLinear", [codes_name, scale, zero], tensor.name)
        fix = tensor.attrs.get("fix")
        if fix is None or int(fix[0]) > 16:
            return self.init(tensor.name, data)
        bw, fp = int(fix[0]), int(fix[1])
        dtype = self.storage(bw)
        codes = self.init(f"{tensor.name}_quantized", np.ldexp(data.astype(np.float64), fp)
                          .astype(dtype))
        scale = self.init(f"{tensor.name}_scale", np.array(2.0 ** -fp, dtype=np.float32))
        zero = self.init(f"{tensor.name}_zero_point", np.array(0, dtype=dtype))
        return self.add("DequantizeLinear", [codes, scale, zero], tensor.name)

    def shape(self, tensor: str) -> tuple[int, ...]:
        return tensor_shape(self.graph, tensor)

    # --- nodes ------------------------------------------------------------------------------

    def node(self, node: Node) -> None:
        """The node's ONNX nodes, by its op's `to_onnx` facet (`nndct_shared.graph.ops`), with
        QDQ pairs on its quantized inputs and output."""
        out = node.outputs[0]
        xs = [self.value[t] for t in node.inputs]
        for index, fix in sorted(input_fix_of(node).items()):
            xs[index] = self.qdq(xs[index], fix, f"{node.name}_pre_fix_i{index}")
        y = get_op(node.op_type).to_onnx(self, node, xs)
        fix, qp = fix_of(node), qparams_of(node.attrs)
        if qp is not None:
            y = self.qdq_float(y, qp, f"{node.name}_fix")
        elif fix:
            y = self.qdq(y, fix, f"{node.name}_fix", bool(node.attrs.get("narrow_range")))
        self.value[out] = y

    def avg_scaled(self, node: Node, y: str) -> str:
        """`y` times the node's `dpu_scale` (average pools, mean), when it has one."""
        scale = node.attrs.get("dpu_scale")
        if scale is None:
            return y
        const = self.init(f"{node.name}_dpu_scale", np.array(scale, dtype=np.float32))
        return self.add("Mul", [y, const], f"{node.name}_scaled")


def build_onnx_model(graph: Graph, opset: int = DEFAULT_OPSET) -> Any:
    """The QDQ `onnx.ModelProto` of `graph` (checked with onnx.checker). Inputs keep their
    names and shapes with a symbolic batch dim; outputs are the graph's output values."""
    onnx = _onnx()
    validate_cnn_graph(graph)
    builder = _Builder(graph, onnx)
    h = onnx.helper
    inputs = []
    for node in graph.topological_order():
        if node.op_type == "input":
            shape: list[Any] = list(tensor_shape(graph, node.outputs[0]))
            shape[0] = "batch"
            inputs.append(h.make_tensor_value_info(node.name, onnx.TensorProto.FLOAT, shape))
        try:
            builder.node(node)
        except ExportUnsupported as exc:
            raise error("EXPORT_UNSUPPORTED", format=ONNX_FORMAT, node=node.name,
                        op_type=node.op_type, reason=str(exc)) from None
    outputs = []
    for node in graph.outputs:
        name = builder.value[node.outputs[0]]
        shape = list(tensor_shape(graph, node.outputs[0]))
        shape[0] = "batch"
        outputs.append(h.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
    model_graph = h.make_graph(builder.nodes, graph.name, inputs, outputs, builder.inits)
    opsets = [h.make_opsetid("", int(opset))]
    model = h.make_model(model_graph, opset_imports=opsets,
                         producer_name="nndct_shared.cnn_export")
    model.ir_version = h.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model, full_check=True)
    return model


def write_onnx(graph: Graph, path: str | os.PathLike[str], opset: int = DEFAULT_OPSET) -> Path:
    """Build the QDQ model of `graph` and write it atomically to `path`; returns the path."""
    model = build_onnx_model(graph, opset)
    return write_bytes_atomic(path, model.SerializeToString())

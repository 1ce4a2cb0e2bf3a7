"""The Keras CNN flow's quantized datapath: the captured graph run node by node in NumPy.

Why NumPy and not TensorFlow ops: every node computes through its op registry entry's
`reference` facet (`nndct_shared.graph.ops`), the code the reference executor and the xmodel
evaluator use, which sums in float64 and rounds to float32 once per op. On fixed-point data
(quantized inputs and params, on 2^-k grids) those sums are exact, so the result is the
correctly rounded one whatever order another implementation adds in: it equals what PyTorch's
float32 convolution gives on the same data whenever that one is exact too (every partial sum
fits float32's 24-bit significand: e.g. 8-bit data with fan-in up to 2^10, 2^(24-14)), which
is what makes the Keras and PyTorch flows bit-identical (tests/tf_nndct/test_keras_cnn_cross_framework.py).
Fake quantization is the same C++ `fix_neuron` kernel the PyTorch runtime calls.

`QuantRuntime` is the NumPy twin of the PyTorch CNN runtime (`pytorch_nndct.quantization.runtime`,
both on `nndct_shared.cnn.calibration_state`):
in calib mode every planned tensor feeds its observer and is fake-quantized at the fix position
known so far (params once, activations per call); in test mode the fix positions come from
quant_info.json. `GraphRunner` runs (part of) the graph with such a runtime, or with none (the
float model, for bias correction).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nndct_shared import kernels
from nndct_shared.calibration import FloatQParams, Observer
from nndct_shared.calibration.float_scale import fake_quant_float_numpy
from nndct_shared.cnn.calibration_state import CalibrationState
from nndct_shared.cnn.settings import TensorSettings
from nndct_shared.cnn_export.reference import run_node
from nndct_shared.graph import Graph, Node, Tensor
from nndct_shared.messages import error
from nndct_shared.quant_info_store import QUANT_INFO_FILE
from nndct_shared.quant_mode import RunMode

__all__ = ["GraphRunner", "QuantRuntime", "fixed_runtime"]


def fake_quantize(s: TensorSettings, x: np.ndarray, fix_pos: Any) -> np.ndarray:
    """`x` on the grid of `fix_pos` (an int, float qparams, or a tuple of either per channel
    along `s.axis`), float32; the NumPy twin of `pytorch_nndct.quantization.fake_quant` (narrow
    range on power-of-two grids raises the result to the narrow grid's lowest value)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if isinstance(fix_pos, FloatQParams):
        return fake_quant_float_numpy(x, s.float_spec, fix_pos, s.round_method)
    if isinstance(fix_pos, tuple) and fix_pos and isinstance(fix_pos[0], FloatQParams):
        channels = np.moveaxis(x, s.axis, 0)
        out = np.stack([fake_quant_float_numpy(c, s.float_spec, q, s.round_method)
                        for c, q in zip(channels, fix_pos)])
        return np.ascontiguousarray(np.moveaxis(out, 0, s.axis))
    if isinstance(fix_pos, tuple):
        fp = np.asarray(fix_pos)
        y = kernels.fix_neuron_per_channel(x, s.bit_width, fp, s.round_method, s.axis)
        shape = [1] * x.ndim
        shape[s.axis] = len(fix_pos)
        fp = fp.reshape(shape)
    else:
        fp = int(fix_pos)
        y = kernels.fix_neuron(x, s.bit_width, fp, s.round_method)
    if s.narrow_range:
        lowest = -(2 ** (s.bit_width - 1) - 1) * np.power(2.0, -np.asarray(fp, dtype=np.float64))
        y = np.maximum(y, lowest.astype(np.float32))
    return y


class QuantRuntime(CalibrationState):
    """Observers (calib) or fix positions (test) of the quantized tensors of one graph; the
    calibration state and its rules are the neutral `CalibrationState` (the PyTorch runtime's)."""

    def __init__(self, settings: Mapping[str, TensorSettings], mode: RunMode) -> None:
        super().__init__(settings, mode)
        self._param_cache: dict[str, tuple[np.ndarray, Any, np.ndarray]] = {}

    def output(self, name: str, y: np.ndarray) -> np.ndarray:
        s = self.settings.get(name)
        return y if s is None else self._quantize(s, y)

    def param(self, name: str, value: np.ndarray) -> np.ndarray:
        """`value` quantized; a param's fake-quantized values are kept while its data and fix
        position stay the same (params are the same tensor on every call)."""
        s = self.settings.get(name)
        if s is None:
            return value
        if self.mode == RunMode.CALIB and name not in self._param_seen:
            return self._quantize(s, value)
        fix_pos = self._fix_pos_of(s)
        cached = self._param_cache.get(name)
        if cached is not None and cached[0] is value and cached[1] == fix_pos:
            return cached[2]
        result = value if fix_pos is None else fake_quantize(s, value, fix_pos)
        self._param_cache[name] = (value, fix_pos, result)
        return result

    def _fix_pos_of(self, s: TensorSettings) -> Any:
        if self.mode == RunMode.CALIB:
            observer = self.observers.get(s.name)
            return None if observer is None else observer.fix_pos
        fix_pos = self.fix_pos.get(s.name)
        if fix_pos is None:
            raise error("PARAM_NOT_QUANTIZED", name=s.name, path=QUANT_INFO_FILE)
        return fix_pos

    def _quantize(self, s: TensorSettings, x: np.ndarray) -> np.ndarray:
        if self.mode == RunMode.CALIB:
            fix_pos = self.observe(s, np.asarray(x, dtype=np.float32))
        else:
            fix_pos = self._fix_pos_of(s)
        return x if fix_pos is None else fake_quantize(s, x, fix_pos)

    def load(self, fix_pos: Mapping[str, Any]) -> None:
        """Test mode: use these fix positions (int, a tuple per channel, or float qparams)."""
        self.fix_pos = dict(fix_pos)
        self._param_cache.clear()

    def replace_observer(self, name: str, observer: Observer) -> None:
        super().replace_observer(name, observer)
        self._param_cache.pop(name, None)


def fixed_runtime(settings: Mapping[str, TensorSettings], fix_pos: Mapping[str, Any]) -> QuantRuntime:
    """A test-mode runtime with these fix positions; tensors without one stay float."""
    known = {name: s for name, s in settings.items() if fix_pos.get(name) is not None}
    runtime = QuantRuntime(known, RunMode.TEST)
    runtime.load({name: fix_pos[name] for name in known})
    return runtime


class GraphRunner:
    """Runs nodes of a captured graph in topological order (see the module docstring)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.order = graph.topological_order()
        self.position = {node.name: i for i, node in enumerate(self.order)}

    def out_shape(self, node: Node, batch: int) -> tuple[int, ...]:
        shape = self.graph.tensor(node.outputs[0]).shape
        return (batch,) + tuple(shape[1:])

    def run(self, nodes: Iterable[Node], values: dict[str, np.ndarray], runtime: QuantRuntime | None,
            feeds: Mapping[str, np.ndarray] | None = None,
            params: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Run `nodes` (in order) into `values` (tensor name -> array, channels-first): an
        `input` node takes `feeds[node name]`; `params` overrides param data by tensor name;
        with `runtime` None the nodes run in float."""
        for node in nodes:
            if node.op_type == "input":
                xs = [np.asarray(feeds[node.name], dtype=np.float32)]
                y = xs[0]
            else:
                xs = [values[t] for t in node.inputs]
                y = run_node(self.view(node, runtime, params), xs, self.out_shape(node, xs[0].shape[0]))
            values[node.outputs[0]] = y if runtime is None else runtime.output(node.name, y)
        return values

    @staticmethod
    def view(node: Node, runtime: QuantRuntime | None, params: Mapping[str, np.ndarray] | None = None) -> Node:
        """`node` with the params it computes with: `params` overrides by tensor name, and
        `runtime` (None: float) fake-quantizes them."""
        if not node.params:
            return node
        quantized = {}
        for role, t in node.params.items():
            data = t.data if params is None else params.get(t.name, t.data)
            data = data if runtime is None else runtime.param(t.name, data)
            quantized[role] = Tensor(t.name, data=data)
        return Node(node.name, node.op_type, node.attrs, node.inputs, node.outputs, quantized)

    def upto(self, name: str) -> list[Node]:
        """The nodes that run before `name` in topological order, `name` included."""
        return self.order[:self.position[name] + 1]

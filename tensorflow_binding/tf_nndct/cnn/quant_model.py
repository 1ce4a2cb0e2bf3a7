"""`quant_model` of the Keras CNN flow: a Keras model whose CNN part runs the captured graph.

Why segments: the captured graph is run by `CnnEngine` (NumPy, see `runtime.py`); a Keras layer
`QuantCnnSegment` runs the part of it between recurrent layers. A pure CNN model is one segment;
in a model mixing CNN and recurrent layers, segment k holds the graph nodes that come after k
recurrent layers (on the longest path), and the recurrent layers (quantized by the recurrent
flow, or float) are called between the segments with their original arguments. Values cross
segment borders in Keras layout, so the recurrent layers and the user see Keras tensors.

One call of quant_model is one forward of the engine: the lowest segment starts it (counting
forwards, keeping the batch size and, in calib mode with bias correction, the graph inputs of
the first calibration samples); every node output of the last forward is kept for the
deploy-check dumps. Eagerly a segment calls the engine directly; inside a `tf.function`
(`predict`) it goes through `tf.numpy_function`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nndct_shared.graph import Graph, Node
from nndct_shared.messages import NndctError, error, use_frontend
from nndct_shared.quant_mode import RunMode

from .capture import BoundaryCall, KerasCapture, Value
from .layout import keras_array, torch_array
from .runtime import GraphRunner, QuantRuntime

__all__ = ["CnnEngine", "QuantCnnSegment", "build_quant_model"]


def _shape_pattern(shape: Sequence[int]) -> str:
    return "(" + ", ".join(["N", *(str(d) for d in shape[1:])]) + ")"


class CnnEngine:
    """The captured graph with its runtime, run level by level by the segments of quant_model."""

    def __init__(self, graph: Graph, runtime: QuantRuntime, levels: Mapping[str, int],
                 record_samples: int = 0) -> None:
        self.graph = graph
        self.runner = GraphRunner(graph)
        self.runtime = runtime
        self.levels = dict(levels)
        self.first_level = min(levels.values()) if levels else 0
        self.record_samples = record_samples
        self.recorded: list[dict[str, np.ndarray]] = []   # graph input node -> its values, per forward
        self.recorded_count = 0
        self._recording: dict[str, np.ndarray] | None = None
        self._room = 0
        self.forwards = 0
        self.last_batch_size: int | None = None
        self.last_outputs: dict[str, np.ndarray] = {}

    def nodes_at(self, level: int) -> list[Node]:
        return [n for n in self.runner.order if self.levels[n.name] == level]

    def stop_recording(self) -> None:
        self.record_samples = 0

    def _check_feed(self, node: Node, x: np.ndarray, model_input: bool) -> None:
        """Shapes of every fed value; NaN/inf in the model's inputs (`model_input`, calib mode)
        leave the forward out of calibration (`CalibrationState.skip_batch`, the PyTorch flow's
        rule). Values a recurrent layer feeds to a later segment are inside the model: their
        observers skip NaN/inf per tensor."""
        shape = tuple(self.graph.tensor(node.outputs[0]).shape)
        if x.ndim != len(shape) or tuple(x.shape[1:]) != shape[1:]:
            what = self.graph.tensor(node.outputs[0]).name
            raise error("SHAPE_MISMATCH", what=f"the value of '{what}' in quant_model",
                        expected=f"{_shape_pattern(shape)} (channels first; Keras: any batch, the other "
                                 "dimensions as captured)", got=str(tuple(x.shape)))
        if model_input and self.runtime.mode == RunMode.CALIB:
            bad = int(np.count_nonzero(~np.isfinite(x)))
            if bad:
                self.runtime.skip_batch(node.name, bad)

    def run_level(self, level: int, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the nodes of `level`; `feeds` are channels-first values of the input nodes of
        this level and of the tensors of lower levels it reads. Returns every value computed."""
        nodes = self.nodes_at(level)
        inputs = [n for n in nodes if n.op_type == "input"]
        for node in inputs:
            self._check_feed(node, feeds[node.name], level == self.first_level)
        if level == self.first_level:
            self._start_forward(int(next(iter(feeds.values())).shape[0]) if feeds else None)
        if self._recording is not None:
            for node in inputs:
                self._recording[node.name] = np.array(feeds[node.name][:self._room], dtype=np.float32)
        values = {k: v for k, v in feeds.items() if k not in {n.name for n in inputs}}
        self.runner.run(nodes, values, self.runtime, feeds)
        self.last_outputs.update({n.outputs[0]: values[n.outputs[0]] for n in nodes})
        return values

    def _start_forward(self, batch: int | None) -> None:
        """Count the forward; keep the graph inputs of the first `record_samples` samples (the
        calibration samples bias correction replays), whichever level feeds them."""
        self.forwards += 1
        self.runtime.begin_forward()
        self.last_batch_size = batch
        self.last_outputs = {}
        self._recording = None
        self._room = self.record_samples - self.recorded_count
        if batch and self._room > 0 and not self.runtime.skipping:  # no NaN/inf batch either
            self._recording = {}
            self.recorded.append(self._recording)
            self.recorded_count += min(batch, self._room)


class QuantCnnSegment(keras.layers.Layer):
    """The Keras layer that runs one level of a `CnnEngine` (see the module docstring)."""

    def __init__(self, engine: CnnEngine, level: int, feeds: list[str], outputs: list[str],
                 output_shapes: list[tuple[int, ...]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.level = level
        self.feeds = feeds
        self.output_names = outputs
        self.output_shapes = [tuple(s) for s in output_shapes]

    def compute_output_spec(self, inputs, *args, **kwargs):
        return [keras.KerasTensor((None,) + s[1:], dtype="float32") for s in self.output_shapes]

    def call(self, inputs):
        try:
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if tf.executing_eagerly():
                arrays = self._run(*[x.numpy() if hasattr(x, "numpy") else np.asarray(x) for x in inputs])
                return [tf.convert_to_tensor(a) for a in arrays]
            results = tf.numpy_function(self._run, inputs, [tf.float32] * len(self.output_names), stateful=True)
            results = list(results) if isinstance(results, (list, tuple)) else [results]
            for tensor, shape in zip(results, self.output_shapes):
                tensor.set_shape((None,) + shape[1:])
            return results
        except NndctError as exc:
            # Keras re-creates exceptions raised in call() to add argument info, which would drop
            # the catalogue ID; this marker tells it the error is already informative.
            exc._keras_call_info_injected = True
            raise

    def _run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        with use_frontend("tf"):
            feeds = {name: torch_array(a) for name, a in zip(self.feeds, arrays)}
            values = self.engine.run_level(self.level, feeds)
            return [keras_array(values[name]) for name in self.output_names]

    def get_config(self):
        raise NotImplementedError(
            "QuantCnnSegment layers hold the calibration state of a tf_quantizer session and cannot "
            "be serialized; save the float model and re-create the quantizer instead.")


def build_quant_model(capture: KerasCapture, engine: CnnEngine,
                      layer_for: Mapping[int, Any] | None = None) -> keras.Model:
    """The quantized Keras model: segments of `engine` and the recurrent boundary layers
    (`layer_for` maps id(original layer) -> the layer to call instead, e.g. a QuantLSTM)."""
    graph, calls = capture.graph, capture.calls
    layer_for = dict(layer_for or {})
    originals = [calls.tensors[k] for k in calls.inputs]
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=t.name) for t in originals]
    known: dict[Any, Any] = {("input", k): x for k, x in enumerate(inputs)}
    readers = _readers(capture, engine)
    node_of_input = {name: k for k, name in capture.input_nodes.items()}
    feeds_of_boundary = {name: (b, j) for b, bc in enumerate(capture.boundaries) for j, name in bc.input_nodes.items()}
    top = max([*engine.levels.values(), *(b.level for b in capture.boundaries), 0])
    for level in range(top + 1):
        nodes = engine.nodes_at(level)
        if nodes:
            _add_segment(graph, engine, level, nodes, readers, known, node_of_input, feeds_of_boundary)
        for b, boundary in enumerate(capture.boundaries):
            if boundary.level == level:
                _call_boundary(b, boundary, known, layer_for)
    outputs = [_keras_value(ref, known) for ref in capture.outputs]
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                       name=capture.graph.name)


def _readers(capture: KerasCapture, engine: CnnEngine) -> dict[str, int]:
    """Tensor -> the highest level that reads it outside its own segment (-1: model output or
    recurrent input only; absent: read inside its segment only)."""
    graph = capture.graph
    readers: dict[str, int] = {}
    for node in graph.nodes:
        for t in node.inputs:
            producer = graph.producer(t)
            if engine.levels[producer.name] != engine.levels[node.name]:
                readers[t] = max(readers.get(t, -1), engine.levels[node.name])
    external = [r for r in capture.outputs if isinstance(r, Value)]
    external += [r for bc in capture.boundaries for r in bc.inputs if isinstance(r, Value)]
    for ref in external:
        readers.setdefault(ref.tensor, -1)
    return readers


def _add_segment(graph: Graph, engine: CnnEngine, level: int, nodes: list[Node], readers: dict[str, int],
                 known: dict[Any, Any], node_of_input: dict[str, int],
                 feeds_of_boundary: dict[str, tuple[int, int]]) -> None:
    names = {n.name for n in nodes}
    feeds: list[str] = []
    tensors: list[Any] = []
    for node in nodes:
        if node.op_type == "input":
            key = ("input", node_of_input[node.name]) if node.name in node_of_input else \
                ("boundary",) + feeds_of_boundary[node.name]
            feeds.append(node.name)
            tensors.append(known[key])
            continue
        for t in node.inputs:
            producer = graph.producer(t)
            if producer.name not in names and t not in feeds:
                feeds.append(t)
                tensors.append(known[("tensor", t)])
    outputs = [n.outputs[0] for n in nodes if n.outputs[0] in readers]
    shapes = [tuple(_keras_shape(graph, t)) for t in outputs]
    segment = QuantCnnSegment(engine, level, feeds, outputs, shapes, name=f"quant_cnn_{level}")
    results = segment(tensors)
    for t, result in zip(outputs, results):
        known[("tensor", t)] = result


def _keras_shape(graph: Graph, tensor: str) -> tuple[int, ...]:
    shape = graph.tensor(tensor).shape
    if len(shape) in (3, 4):
        return (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return tuple(shape)


def _keras_value(ref: Any, known: dict[Any, Any]) -> Any:
    if isinstance(ref, Value):
        return known[("tensor", ref.tensor)]
    if ref.kind == "input":
        return known[("input", ref.index)]
    return known[("boundary", ref.index, ref.output)]


def _call_boundary(b: int, boundary: BoundaryCall, known: dict[Any, Any], layer_for: Mapping[int, Any]) -> None:
    call = boundary.call
    by_id = {id(t): _keras_value(ref, known) for t, ref in zip(call.node.input_tensors, boundary.inputs)}
    args, kwargs = keras.tree.map_structure(
        lambda x: by_id.get(id(x), x) if isinstance(x, keras.KerasTensor) else x,
        (call.node.arguments.args, call.node.arguments.kwargs))
    layer = layer_for.get(id(call.layer), call.layer)
    outputs = keras.tree.flatten(layer(*args, **kwargs))
    for j, tensor in enumerate(outputs):
        known[("boundary", b, j)] = tensor



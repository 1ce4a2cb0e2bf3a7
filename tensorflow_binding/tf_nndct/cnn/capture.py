"""Capture: a functional / Sequential Keras model -> the neutral CNN graph of the op registry.

This is the Keras front end's one job besides running tensors: the neutral session
(`nndct_shared.cnn.session`) plans, calibrates, writes and exports from what this returns. Each
layer class is mapped by its capture rule (`rules.py`, one per layer type, as the registry's
README asks of a front end) onto registry ops, in PyTorch's channels-first layout with
`torch.nn` weight layouts, so that a Keras model and a PyTorch model with the same weights give
the same graph.

What the capture decides, and why:
- names: the graph is the model's name; a layer call becomes `<Model>::<layer path>` (a layer
  split into several nodes adds `/<part>`, e.g. a fused activation `conv1/relu`; the n-th call
  of a reused stateless layer adds `_<n>`); params are `<Model>::<layer path>.weight|bias`
  (`.depthwise.` / `.pointwise.` for SeparableConv), the PyTorch front end's
  `<Model>::<module path>.<param>`; model inputs are `<Model>::input_<k>`;
- layout: values are channels-first in the graph; a Flatten / Reshape of a feature map keeps
  the graph's (channels-first) element order and the Dense layers that read it take their
  weight rows in that order (`layout.flatten_permutation`), which is how a PyTorch model
  flattens NCHW maps; any other reader of such a tensor is refused, as is a reshape that moves
  elements between the two orders;
- recurrent layers (`is_boundary`) are not captured: their outputs enter the graph as `input`
  nodes (quantized like model inputs) and the graph nodes they read become graph outputs, so a
  model mixing CNN and recurrent layers runs the CNN part through this graph and the recurrent
  layers through the recurrent flow;
- BatchNormalization after a conv / Dense read by nothing else is folded into it; otherwise it
  becomes `scale`. Dropout-like layers are dropped. Every other layer is refused with
  CNN_UNSUPPORTED_OP naming it: nothing stays float silently.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np

from nndct_shared.cnn.capture import CapturedModel
from nndct_shared.graph import Graph, Tensor
from nndct_shared.messages import NndctError, error

from .keras_graph import LayerCall, ModelCalls, TensorKey, flatten_model, with_static_shapes
from .layout import torch_shape

__all__ = ["BoundaryCall", "CaptureContext", "ExternalRef", "KerasCapture", "Value", "capture_keras_model",
           "is_recurrent_layer"]


@dataclass
class Value:
    """A Keras tensor held by the graph: tensor `tensor` (channels-first), `keras_shape` its
    Keras shape (batch = the capture's batch); `perm` is set on a flattened feature map whose
    element order is the graph's channels-first one (see `layout.flatten_permutation`);
    `source` is the layer path that produced it (messages); `level` the number of recurrent
    layers on the longest path from the model inputs to it (`quant_model.py`)."""

    tensor: str
    keras_shape: tuple[int, ...]
    perm: np.ndarray | None = None
    source: str = ""
    level: int = 0


@dataclass(frozen=True)
class ExternalRef:
    """A Keras tensor the graph does not compute: model input `index` (kind "input") or output
    `output` of boundary call `index` (kind "boundary")."""

    kind: str
    index: int
    output: int = 0


Ref = Value | ExternalRef


@dataclass
class BoundaryCall:
    """A recurrent layer call left to the recurrent flow: what it reads and which graph input
    nodes hold its outputs (output index -> node name, for the outputs the graph reads)."""

    call: LayerCall
    inputs: list[Ref]
    level: int
    input_nodes: dict[int, str] = field(default_factory=dict)


@dataclass
class KerasCapture:
    """The captured model: the neutral `CapturedModel`, and how the Keras model's tensors map
    onto it (model inputs -> graph input nodes, recurrent boundaries, model outputs)."""

    captured: CapturedModel
    calls: ModelCalls
    input_nodes: dict[int, str]
    boundaries: list[BoundaryCall]
    outputs: list[Ref]
    levels: dict[str, int]

    @property
    def graph(self) -> Graph:
        return self.captured.graph

    def follow(self, captured: CapturedModel, captured_graph: Graph | None = None) -> "KerasCapture":
        """This capture on `captured`, the same graph as the session holds it: when the session
        names nodes its own way (e.g. the reference's `<Model>::nndct_<op>_<index>`), nodes and
        their tensors are paired by position in the topological order and every reference to
        them is renamed; otherwise this capture itself. `captured_graph`: the graph as captured
        (default: this capture's), needed when the session renamed `captured` in place
        (`CapturedModel.apply_nndct_names`), so that this capture's graph is already the new one."""
        old_graph = self.graph if captured_graph is None else captured_graph
        old, new = old_graph.topological_order(), captured.graph.topological_order()
        if [n.name for n in old] == [n.name for n in new]:
            return self if captured is self.captured else replace(self, captured=captured)
        if [n.op_type for n in old] != [n.op_type for n in new]:
            raise ValueError("the session's graph is not the captured graph")
        nodes = {a.name: b.name for a, b in zip(old, new)}
        tensors = {a.outputs[0]: b.outputs[0] for a, b in zip(old, new)}

        def ref(r: Ref) -> Ref:
            return replace(r, tensor=tensors[r.tensor]) if isinstance(r, Value) else r

        boundaries = [BoundaryCall(b.call, [ref(r) for r in b.inputs], b.level,
                                   {j: nodes[n] for j, n in b.input_nodes.items()}) for b in self.boundaries]
        return KerasCapture(captured, self.calls, {k: nodes[n] for k, n in self.input_nodes.items()}, boundaries,
                            [ref(r) for r in self.outputs], {nodes[n]: lv for n, lv in self.levels.items()})


def is_recurrent_layer(layer: Any) -> bool:
    """Layers of the recurrent flow (LSTM, GRU, SimpleRNN, ... and Bidirectional wrappers)."""
    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


#: Layers that pass their input through at inference.
ALIAS_LAYERS: tuple[type, ...] = (
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
    keras.layers.AlphaDropout, keras.layers.ActivityRegularization, keras.layers.Identity,
)


def layer_type_name(layer: Any) -> str:
    """The layer type the config's `layer_type` matches (on its last component)."""
    return f"keras.layers.{type(layer).__name__}"


def numpy_of(variable: Any) -> np.ndarray:
    """A Keras variable's values as a float32 copy."""
    value = variable.numpy() if hasattr(variable, "numpy") else keras.ops.convert_to_numpy(variable)
    return np.array(value, dtype=np.float32)


class CaptureContext:
    """What a capture rule builds nodes with (`rules.py`)."""

    def __init__(self, model_name: str, batch: int, convert_relu6_to_relu: bool,
                 convert_silu_to_hswish: bool) -> None:
        self.model_name = model_name
        self.batch = batch
        self.convert_relu6_to_relu = convert_relu6_to_relu
        self.convert_silu_to_hswish = convert_silu_to_hswish
        self.graph = Graph(model_name)
        self.captured = CapturedModel(self.graph)
        self.call_names: dict[int, str] = {}   # id(node) -> the call's name (path, _<n> for reuse)
        self.consumers: dict[TensorKey, int] = {}   # readers of each tensor (aliases resolved)
        self.roots: dict[TensorKey, TensorKey] = {}   # an alias layer's output -> its input
        self.model_outputs: set[TensorKey] = set()
        self.levels: dict[str, int] = {}              # node name -> level (see `Value`)

    # --- names and shapes ---------------------------------------------------------------------

    def call_name(self, call: LayerCall) -> str:
        return self.call_names.get(id(call.node), call.path)

    def node_name(self, call: LayerCall, suffix: str = "") -> str:
        return f"{self.model_name}::{self.call_name(call)}{suffix}"

    def param(self, call: LayerCall, role: str, data: np.ndarray, part: str = "") -> Tensor:
        """Param tensor `<Model>::<layer path>[.<part>].<role>`."""
        middle = f".{part}" if part else ""
        return Tensor(f"{self.model_name}::{call.path}{middle}.{role}", data=np.asarray(data, np.float32))

    def keras_shape(self, shape: tuple[int | None, ...]) -> tuple[int, ...]:
        """A Keras shape with the capture's batch; other unknown dims are refused by the caller."""
        return (self.batch,) + tuple(int(d) for d in shape[1:])

    def output_shape(self, call: LayerCall, index: int = 0) -> tuple[int, ...]:
        shape = call.output_shape(index)
        if any(d is None for d in shape[1:]):
            raise self.fail(call, f" (its output shape {list(shape)} is not fully known; give the "
                                  "model's inputs fixed sizes)")
        return self.keras_shape(shape)

    # --- nodes ------------------------------------------------------------------------------------

    def add(self, call: LayerCall, op_type: str, inputs: list[Value], keras_shape: tuple[int, ...], *,
            attrs: dict[str, Any] | None = None, params: dict[str, Tensor] | None = None,
            suffix: str = "", layer_type: str | None = None, perm: np.ndarray | None = None) -> Value:
        """Add one node (quantized, like every captured node) and return its value."""
        name = self.node_name(call, suffix)
        self.graph.add(name, op_type, [v.tensor for v in inputs], attrs=attrs or {}, params=params or {},
                       shape=torch_shape(keras_shape))
        self.captured.layer_types[name] = layer_type or layer_type_name(call.layer)
        self.captured.sources[name] = f"layer '{call.path}' ({type(call.layer).__name__})"
        self.captured.quantized.add(name)
        level = self.levels[name] = max((v.level for v in inputs), default=0)
        return Value(name, tuple(keras_shape), perm, call.path, level)

    def add_input(self, name: str, keras_shape: tuple[int, ...], what: str, level: int) -> Value:
        """A graph input node (a model input, or an output of a recurrent layer)."""
        self.graph.add(name, "input", [], shape=torch_shape(keras_shape))
        self.captured.layer_types[name] = "input"
        self.captured.sources[name] = what
        self.captured.quantized.add(name)
        self.levels[name] = level
        return Value(name, keras_shape, None, what, level)

    def read_once(self, call: LayerCall, index: int = 0) -> bool:
        """True when input `index` of `call` is read by this call only and is no model output
        (so a producer may absorb this layer, e.g. BatchNorm folding)."""
        key = self.roots.get(call.inputs[index], call.inputs[index])
        return self.consumers.get(key, 0) == 1 and key not in self.model_outputs

    def fail(self, call: LayerCall, detail: str) -> NndctError:
        return error("CNN_UNSUPPORTED_OP", layer=call.path, layer_type=type(call.layer).__name__, detail=detail)


@dataclass(frozen=True)
class Rule:
    """The capture rule of a layer class: `fn(ctx, call, inputs) -> outputs`; `keeps_order`:
    elementwise per feature, so a flattened tensor in channels-first order may pass through
    (the output keeps the input's order); `takes_permuted`: the rule handles such inputs itself."""

    fn: Callable[[CaptureContext, LayerCall, list[Value]], list[Value]]
    keeps_order: bool = False
    takes_permuted: bool = False


RULES: dict[type, Rule] = {}


def capture_rule(*classes: type, keeps_order: bool = False, takes_permuted: bool = False):
    """Register `fn` as the capture rule of the exact layer `classes` (a subclass may compute
    something else, so it is refused rather than captured as its base)."""
    def decorate(fn):
        for cls in classes:
            if cls in RULES:
                raise ValueError(f"{cls.__name__} has two capture rules")
            RULES[cls] = Rule(fn, keeps_order, takes_permuted)
        return fn
    return decorate


class _Capture:
    def __init__(self, model: keras.Model, ctx: CaptureContext, is_boundary: Callable[[Any], bool]) -> None:
        from . import rules  # noqa: F401  (registers the capture rules)

        self.model = model
        self.ctx = ctx
        self.is_boundary = is_boundary
        self.calls = flatten_model(model)
        self.env: dict[TensorKey, Ref] = {}
        self.boundaries: list[BoundaryCall] = []
        self.feeds: list[str] = []
        self.input_nodes: dict[int, str] = {}

    # --- pre-pass: who reads what ------------------------------------------------------------

    def _kind(self, call: LayerCall) -> str:
        layer = call.layer
        if self.is_boundary(layer):
            return "boundary"
        if type(layer) in ALIAS_LAYERS or (type(layer) is keras.layers.Activation
                                           and layer.activation is keras.activations.linear):
            return "alias"
        return "capture"

    def _prepass(self) -> set[TensorKey]:
        """Count the readers of every tensor (through aliases) and return the tensors that
        captured layers read."""
        root = self.ctx.roots
        read: set[TensorKey] = set()
        counts = self.ctx.consumers
        for call in self.calls.calls:
            keys = [root.get(k, k) for k in call.inputs]
            kind = self._kind(call)
            if kind == "alias":
                for out in call.outputs:
                    root[out] = keys[0]
                continue
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
            if kind == "capture":
                read.update(keys)
        outputs = {root.get(k, k) for k in self.calls.outputs}
        self.ctx.model_outputs.update(outputs)
        for k in outputs:
            counts[k] = counts.get(k, 0) + 1
        return read

    # --- the walk ----------------------------------------------------------------------------------

    def run(self) -> KerasCapture:
        read = self._prepass()
        self._name_calls()
        for k, key in enumerate(self.calls.inputs):
            self.env[key] = ExternalRef("input", k)
            if key in read:
                name = f"{self.ctx.model_name}::input_{k}"
                self.input_nodes[k] = name
                self.env[key] = self._input_node(name, key, f"input {k} of the model", 0)
        for call in self.calls.calls:
            kind = self._kind(call)
            if kind == "alias":
                self.env[call.outputs[0]] = self.env[call.inputs[0]]
            elif kind == "boundary":
                self._boundary(call, read)
            else:
                self._capture(call)
        outputs = [self._external_use(self.env[k], "an output of the model") for k in self.calls.outputs]
        graph_outputs = [v.tensor for v in outputs if isinstance(v, Value)] + self.feeds
        self.ctx.graph.set_outputs(list(dict.fromkeys(graph_outputs)))
        self.ctx.captured.output_names = [n.name for n in self.ctx.graph.outputs]
        return KerasCapture(self.ctx.captured, self.calls, self.input_nodes, self.boundaries, outputs,
                            self.ctx.levels)

    def _name_calls(self) -> None:
        counts: dict[int, int] = {}
        for call in self.calls.calls:
            n = counts.get(id(call.layer), 0)
            counts[id(call.layer)] = n + 1
            if n and call.layer.weights and not self.is_boundary(call.layer):
                raise self.ctx.fail(call, " (a layer with weights called more than once; the CNN graph "
                                          "gives every call its own parameters: use one layer per call)")
            self.ctx.call_names[id(call.node)] = call.path if n == 0 else f"{call.path}_{n}"

    def _input_node(self, name: str, key: TensorKey, what: str, level: int) -> Value:
        shape = tuple(self.calls.tensors[key].shape)
        if any(d is None for d in shape[1:]):
            raise error("INPUT_SIGNATURE", problem=f"leaves {what} with the partly unknown shape "
                                                   f"{list(shape)}; the CNN flow needs every dimension but "
                                                   "the batch")
        return self.ctx.add_input(name, self.ctx.keras_shape(shape), what, level)

    def _level(self, ref: Ref) -> int:
        if isinstance(ref, Value):
            return ref.level
        return 0 if ref.kind == "input" else self.boundaries[ref.index].level + 1

    def _external_use(self, ref: Ref, what: str) -> Ref:
        """A value leaving the graph (model output, recurrent input) must be in Keras order."""
        if isinstance(ref, Value) and ref.perm is not None:
            raise error("CNN_UNSUPPORTED_OP", layer=ref.source, layer_type="flattened feature map",
                        detail=f" (its output reaches {what}; a flattened feature map is kept in "
                               "channels-first order inside the CNN graph and may only be read by Dense "
                               "layers)")
        return ref

    def _boundary(self, call: LayerCall, read: set[TensorKey]) -> None:
        index = len(self.boundaries)
        inputs = [self._external_use(self.env[k], f"an input of recurrent layer '{call.path}'")
                  for k in call.inputs]
        self.feeds += [v.tensor for v in inputs if isinstance(v, Value)]
        boundary = BoundaryCall(call, inputs, max((self._level(r) for r in inputs), default=0))
        self.boundaries.append(boundary)
        for j, key in enumerate(call.outputs):
            self.env[key] = ExternalRef("boundary", index, j)
            if key in read:
                name = f"{self.ctx.model_name}::{self.ctx.call_name(call)}/output_{j}"
                boundary.input_nodes[j] = name
                self.env[key] = self._input_node(name, key, f"output {j} of recurrent layer '{call.path}'",
                                                 boundary.level + 1)

    def _capture(self, call: LayerCall) -> None:
        rule = RULES.get(type(call.layer))
        if rule is None:
            raise self.ctx.fail(call, "")
        inputs = [self.env[k] for k in call.inputs]
        if not inputs or not all(isinstance(v, Value) for v in inputs):
            raise self.ctx.fail(call, " (its inputs are not tensors the CNN graph holds)")
        permuted = [v for v in inputs if v.perm is not None]
        if permuted and not (rule.keeps_order or rule.takes_permuted):
            raise self.ctx.fail(call, f" (it reads the flattened feature map of '{permuted[0].source}', "
                                      "which the CNN graph keeps in channels-first order; only Dense "
                                      "layers, elementwise activations and BatchNormalization may read it)")
        outputs = rule.fn(self.ctx, call, inputs)
        if rule.keeps_order and permuted:
            # the order comes from the flatten: messages about it name that layer
            outputs = [Value(v.tensor, v.keras_shape, permuted[0].perm, permuted[0].source, v.level)
                       for v in outputs]
        for key, value in zip(call.outputs, outputs):
            self.env[key] = value


def capture_keras_model(model: keras.Model, input_shapes: list[tuple[int, ...]] | None = None, *,
                        convert_relu6_to_relu: bool = False, convert_silu_to_hswish: bool = False,
                        is_boundary: Callable[[Any], bool] = is_recurrent_layer) -> KerasCapture:
    """Capture `model` (see the module docstring). `input_shapes` (an input_signature's shapes)
    fix input sizes the model leaves open; shapes are recorded with their batch (1 without)."""
    batch = int(input_shapes[0][0]) if input_shapes and input_shapes[0] else 1
    ctx = CaptureContext(model.name, batch, convert_relu6_to_relu, convert_silu_to_hswish)
    return _Capture(with_static_shapes(model, input_shapes), ctx, is_boundary).run()

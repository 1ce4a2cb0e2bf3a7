"""The calls of a functional or Sequential Keras model, flattened into one ordered list.

Why a list of calls: the capture maps each call of a layer (one Keras `Node`) to neutral graph
nodes, and the neutral graph's topological order follows insertion order. The list is a
depth-first post-order from the model outputs, inputs of a call visited in argument order: the
order in which a forward function written in the same order as the model runs its layers, which
is the order torch.fx records for the same network written in PyTorch, so both front ends build
the same graph. Nested functional / Sequential models are inlined (their layers get the path
`<model>/<layer>`).

Tensors are identified by a `TensorKey` (the id of the outermost KerasTensor that stands for
them), so that a nested model's inputs and outputs are the tensors of the enclosing model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from nndct_shared.messages import error

__all__ = ["LayerCall", "ModelCalls", "TensorKey", "flatten_model", "model_tensors", "with_static_shapes"]

TensorKey = int


@dataclass
class LayerCall:
    """One call of a layer: `path` is its name with the names of enclosing nested models,
    `inputs` / `outputs` the keys of its input / output KerasTensors (in Keras' flattened
    argument order), `node` the Keras Node (arguments, shapes)."""

    layer: Any
    node: Any
    path: str
    inputs: list[TensorKey]
    outputs: list[TensorKey]

    def output_shape(self, index: int = 0) -> tuple[int | None, ...]:
        return tuple(self.node.output_tensors[index].shape)


@dataclass
class ModelCalls:
    """The flattened model: its input and output tensor keys and its layer calls in order,
    with the KerasTensor of every key (for shapes and dtypes)."""

    inputs: list[TensorKey]
    outputs: list[TensorKey]
    calls: list[LayerCall]
    tensors: dict[TensorKey, Any] = field(default_factory=dict)


def model_tensors(model: keras.Model, what: str) -> list[Any]:
    """`model.inputs` / `model.outputs` of a built functional or Sequential model; a subclassed
    model has no graph to capture (MODULE_TYPE, as in the recurrent flow)."""
    try:
        tensors = list(getattr(model, what) or [])
    except (AttributeError, ValueError):
        tensors = []
    if not tensors:
        raise error("MODULE_TYPE", got=f"{type(model).__name__} '{model.name}' (a subclassed or unbuilt "
                                       "keras.Model; only functional and Sequential models with known "
                                       "inputs can be captured)")
    return tensors


def with_static_shapes(model: keras.Model, shapes: list[tuple[int, ...]] | None) -> keras.Model:
    """`model` itself when its inputs have fixed sizes (or no `shapes` are given); otherwise a
    clone on inputs of `shapes` (an input_signature's shapes, batch left free) that calls the
    same layer objects, so every layer's output shape is known for the capture."""
    inputs = model_tensors(model, "inputs")
    if shapes is None or all(None not in tuple(t.shape)[1:] for t in inputs):
        return model
    fresh = iter([keras.Input(shape=tuple(shape[1:]), dtype=t.dtype, name=t.name) for t, shape in zip(inputs, shapes)])
    structure = keras.tree.map_structure(lambda t: next(fresh), model.input)
    return keras.models.clone_model(model, input_tensors=structure, clone_function=lambda layer: layer)


def _is_graph_model(op: Any) -> bool:
    return isinstance(op, keras.Model) and (isinstance(op, keras.Sequential) or type(op).__name__ == "Functional")


class _Walk:
    def __init__(self) -> None:
        self.alias: dict[int, TensorKey] = {}
        self.seen: set[int] = set()
        self.expanded: set[int] = set()
        self.calls: list[LayerCall] = []
        self.tensors: dict[TensorKey, Any] = {}

    def key(self, tensor: Any) -> TensorKey:
        k = id(tensor)
        while k in self.alias:
            k = self.alias[k]
        self.tensors.setdefault(k, tensor)
        return k

    def visit(self, tensor: Any, prefix: str) -> None:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise error("MODULE_TYPE", got="a model with a tensor that no layer produced")
        op, node_index, _ = history
        node = op._inbound_nodes[node_index]
        if node.is_input or id(node) in self.seen:
            return
        self.seen.add(id(node))
        for x in node.input_tensors:
            self.visit(x, prefix)
        if _is_graph_model(op):
            self.inline(op, node, prefix)
            return
        self.calls.append(LayerCall(op, node, f"{prefix}{op.name}", [self.key(x) for x in node.input_tensors],
                                    [self.key(o) for o in node.output_tensors]))

    def inline(self, model: keras.Model, node: Any, prefix: str) -> None:
        if id(model) in self.expanded:
            raise error("CNN_UNSUPPORTED_OP", layer=f"{prefix}{model.name}", layer_type=type(model).__name__,
                        detail=" (a nested model called more than once; call a separate copy per use)")
        self.expanded.add(id(model))
        inner_inputs, inner_outputs = model_tensors(model, "inputs"), model_tensors(model, "outputs")
        for inner, outer in zip(inner_inputs, node.input_tensors):
            self.alias[id(inner)] = self.key(outer)
        for inner in inner_outputs:
            self.visit(inner, f"{prefix}{model.name}/")
        for outer, inner in zip(node.output_tensors, inner_outputs):
            self.alias[id(outer)] = self.key(inner)


def flatten_model(model: keras.Model) -> ModelCalls:
    """The layer calls of `model` in capture order (see the module docstring)."""
    inputs, outputs = model_tensors(model, "inputs"), model_tensors(model, "outputs")
    walk = _Walk()
    input_keys = [walk.key(t) for t in inputs]
    for tensor in outputs:
        walk.visit(tensor, "")
    return ModelCalls(input_keys, [walk.key(t) for t in outputs], walk.calls, walk.tensors)


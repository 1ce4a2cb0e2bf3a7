"""A short eager call path for the rebuilt quant model.

Why: at batch 1 a quantized LSTM step loop over 100 steps takes about 0.1-0.3 ms, and a Keras 3
functional model call adds 0.3-0.4 ms around it (`Model.__call__`'s argument handling, name and
autocast scopes, then `Layer.__call__` again for the quantized layer): more than float
`nn.LSTM`'s whole forward. For the common case (an eager call on arrays or eager tensors,
inference, float32 policy) the model's graph is run directly: inputs are standardized as
`Functional.call` does (numpy arrays are only cast to the Inputs' dtypes), every `QuantLSTM` / `QuantGRU` runs its `call`, every other layer runs
through its normal `__call__`. Outputs are the same tensors, bit for bit (tested); anything else
(symbolic inputs, `tf.function`, `training=True`, masks, extra arguments, mixed-precision
policies) takes Keras' own path.

`NNDCT_KERAS_FAST_CALL=0` turns the short path off.

This relies on two methods of Keras 3's functional models (`_standardize_inputs`,
`_run_through_graph`); when a Keras version lacks them the model keeps Keras' own path.
"""
from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ..layers.quant_rnn import QuantRNN

_CLASSES: dict[type, type] = {}


def _graph_of(model: keras.Model) -> Any:
    """The functional graph a model runs (a Sequential's inner functional model)."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_run_through_graph") or not hasattr(graph, "_standardize_inputs"):
        return None
    return graph


def _is_eager_value(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (isinstance(value, tf.Tensor) and hasattr(value, "numpy"))


def _array_inputs(graph: Any, value: Any) -> list[np.ndarray] | None:
    """Numpy inputs as the graph's flat input list, cast to each Input's dtype, without the
    round trip through tensors (a quantized layer reads numpy, and other layers convert as they
    would anyway); None where Keras' standardization is needed (dicts, other ranks, sparse)."""
    flat = list(value) if isinstance(value, (list, tuple)) else [value]
    expected = list(graph.inputs)
    if isinstance(getattr(graph, "_inputs_struct", None), dict) or len(flat) != len(expected):
        return None
    arrays = []
    for array, spec in zip(flat, expected):
        if not isinstance(array, np.ndarray) or array.ndim != len(spec.shape) or getattr(spec, "sparse", False):
            return None
        arrays.append(np.asarray(array, dtype=spec.dtype))
    return arrays


def _op_for(operation: Any) -> Any:
    return operation.call if isinstance(operation, QuantRNN) else operation


def _unpack_singleton(outputs: Any) -> Any:
    if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
        return outputs[0]
    return outputs


class EagerQuantModel:
    """Mixin placed before the rebuilt model's own class (see `with_eager_call`)."""

    def _nndct_short_path(self, args: tuple, kwargs: dict) -> Any:
        if len(args) != 1 or set(kwargs) - {"training"} or kwargs.get("training") not in (None, False):
            return None
        if not self.built or not tf.executing_eagerly() or os.environ.get("NNDCT_KERAS_FAST_CALL") == "0":
            return None
        policy = getattr(self, "dtype_policy", None)
        if policy is not None and getattr(policy, "compute_dtype", "float32") != "float32":
            return None
        flat = tf.nest.flatten(args[0])
        if not flat or not all(_is_eager_value(v) for v in flat):
            return None
        return _graph_of(self)

    def __call__(self, *args, **kwargs):
        graph = self._nndct_short_path(args, kwargs)
        if graph is None:
            return super().__call__(*args, **kwargs)
        inputs = _array_inputs(graph, args[0])
        if inputs is None:
            inputs = graph._standardize_inputs(args[0])
        return _unpack_singleton(graph._run_through_graph(inputs, operation_fn=_op_for))


def with_eager_call(model: keras.Model) -> keras.Model:
    """Give `model` (a functional or Sequential model just built by the quantizer) the short eager
    call path, in place; its class keeps its name and module, so its saved config is unchanged."""
    base = type(model)
    if issubclass(base, EagerQuantModel):
        return model
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (EagerQuantModel, base), {"__module__": base.__module__,
                                                            "__qualname__": base.__qualname__})
        _CLASSES[base] = cls
    model.__class__ = cls
    return model

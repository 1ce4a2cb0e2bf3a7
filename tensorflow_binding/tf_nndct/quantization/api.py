"""`tf_quantizer`: the Keras 3 flows, with the reference's name and signature.

A model with recurrent layers runs the recurrent flow (the reference RNN quantizer's): every
`keras.layers.LSTM`, `keras.layers.GRU` and `Bidirectional` of them in a functional or
Sequential model is quantized to 16- (or 8-) bit fixed point through the same StandardLstmCell /
StandardGruCell, calibration and C++ kernels as `torch_quantizer(..., lstm=True)`; every other
layer runs float. A model without recurrent layers, or any model with `cnn=True`, runs the CNN
flow (`tf_nndct.cnn`): its layers are captured into the neutral CNN graph and quantized as
`torch_quantizer(..., lstm=False)` does, and its recurrent layers (with cnn=True) by the
recurrent flow, files in output_dir/recurrent/.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from nndct_shared.messages import error, use_frontend, warn
from nndct_shared.quant_mode import parse_quant_mode

from ..cnn.inspector import Inspector
from .quantizer import TFQuantizer

__all__ = ["Inspector", "tf_quantizer"]

def _load_model(model: Any) -> keras.Model:
    """A keras.Model as is; a `.keras` or legacy `.h5` file path is loaded (compile=False)."""
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise error("MODULE_TYPE", got=f"the path {str(path)!r}, which is not an existing .keras/.h5 file")
        return keras.models.load_model(path, compile=False)
    if not isinstance(model, keras.Model):
        raise error("MODULE_TYPE", got=type(model).__name__)
    return model


def _spec_shapes(input_signature: Any) -> list[tuple]:
    specs = input_signature if isinstance(input_signature, (list, tuple)) else [input_signature]
    shapes = []
    for spec in specs:
        if not isinstance(spec, tf.TensorSpec):
            raise error("INPUT_SIGNATURE", problem=f"contains {type(spec).__name__}, not a tf.TensorSpec")
        if spec.shape.rank is None:
            raise error("INPUT_SIGNATURE", problem="has an unknown rank; give the input's shape")
        dims = tuple(spec.shape.as_list())
        if any(d is None for d in dims[1:]):
            raise error("INPUT_SIGNATURE", problem=f"has the partly unknown shape {list(dims)}; give every "
                                                   "dimension but the batch")
        shapes.append(dims)
    return shapes


def _batchless(spec_shape: tuple, model_shape: tuple) -> bool:
    """True if `spec_shape` is the model input's shape without its batch dimension."""
    return len(spec_shape) == len(model_shape) - 1 and all(
        m is None or s == m for s, m in zip(spec_shape, model_shape[1:]))


def _check_signature(model: keras.Model, input_signature: Any) -> None:
    """The signature must match the model's inputs: every dimension but the batch, or the shape
    without the batch dimension as the RNN quantizer's README writes it
    (`tf.TensorSpec(x[:1].shape[1:], tf.int32)`). Its dtype is not checked: it is the model's
    business (integer token ids for an Embedding, floats otherwise)."""
    if input_signature is None:
        return
    shapes = _spec_shapes(input_signature)
    try:
        model_inputs = [tuple(t.shape) for t in model.inputs]
    except (AttributeError, ValueError):
        model_inputs = None
    if not model_inputs:
        return
    if len(shapes) != len(model_inputs):
        raise error("INPUT_SIGNATURE", problem=f"describes {len(shapes)} input(s) but the model has "
                                               f"{len(model_inputs)}")
    for spec_shape, model_shape in zip(shapes, model_inputs):
        if _batchless(spec_shape, model_shape):
            continue
        mismatch = len(spec_shape) != len(model_shape) or any(
            m is not None and s != m for s, m in zip(spec_shape[1:], model_shape[1:]))
        if mismatch:
            raise error("INPUT_SIGNATURE", problem=f"has shape {list(spec_shape)} but the model input is "
                                                   f"{[d for d in model_shape]}")


def _signature_shapes(model: keras.Model, input_signature: Any) -> list[tuple] | None:
    """The input_signature's shapes for the CNN capture, each with a batch dimension (a shape
    given without it, as the RNN README writes signatures, gets batch 1); None without one."""
    if input_signature is None:
        return None
    shapes = _spec_shapes(input_signature)
    try:
        model_inputs = [tuple(t.shape) for t in model.inputs]
    except (AttributeError, ValueError):
        return shapes
    if len(model_inputs) != len(shapes):
        return shapes
    return [(1,) + s if _batchless(s, m) else s for s, m in zip(shapes, model_inputs)]


def _has_recurrent_layers(model: keras.Model) -> bool:
    from ..cnn.capture import is_recurrent_layer
    from .model_rewrite import walk_layers

    return any(is_recurrent_layer(layer) for _, layer in walk_layers(model))


def tf_quantizer(model: Any, input_signature: Any = None, quant_mode: str = "calib",
                 output_dir: str = "quantize_result", bitwidth: int | None = None,
                 quant_config_file: str | None = None, target: str | None = None,
                 cnn: bool | None = None):
    """Creates the quantizer of a Keras model (or a `.keras` / `.h5` file) in mode 'calib' or
    'test'. `input_signature` is a `tf.TensorSpec` (or a list) with the input shape, with or
    without the batch dimension and of any dtype (the RNN README passes
    `tf.TensorSpec(x[:1].shape[1:], tf.int32)` for a model of token ids); it is checked against
    the model's inputs.

    Flow: `cnn=None` picks the recurrent flow for a model with recurrent layers (the other layers
    stay float, as in the reference) and the CNN flow otherwise; `cnn=True` runs the CNN flow on
    every non-recurrent layer (and the recurrent flow on the recurrent ones); `cnn=False` forces
    the recurrent flow. `bitwidth` defaults to 16 for recurrent layers and 8 for CNN layers;
    `quant_config_file` and `target` configure the CNN flow (as in `torch_quantizer`); in the
    recurrent flow `quant_config_file` (a path or a dict; not in the reference's tf_quantizer,
    read as torch_quantizer's in LSTM mode) sets per-tensor bit widths (README "Mixed bit widths
    in the recurrent flow"; pass the same file in calib and test mode) and `target` is ignored
    with a warning.

    Calibrate by calling `quant_model` on representative data, then `export_quant_config()`; in
    test mode call `export_xmodel()` / `dump_xmodel()` (and `dump_rnn_outputs_by_timestep(x[:1])`
    for recurrent layers).
    """
    with use_frontend("tf"):
        mode = parse_quant_mode(quant_mode)
        if bitwidth is not None and (isinstance(bitwidth, bool) or not isinstance(bitwidth, int)
                                     or not 2 <= bitwidth <= 16):
            raise error("ILLEGAL_BITWIDTH", value=bitwidth, path="bitwidth", low=2, high=16)
        keras_model = _load_model(model)
        _check_signature(keras_model, input_signature)
        if cnn or (cnn is None and not _has_recurrent_layers(keras_model)):
            from ..cnn.quantizer import KerasCnnQuantizer

            return KerasCnnQuantizer(keras_model, mode, output_dir, bitwidth, quant_config_file, target,
                                     _signature_shapes(keras_model, input_signature))
        if target is not None:
            warn("LSTM_ARG_IGNORED", argument="target")
        return TFQuantizer(keras_model, mode, output_dir, 16 if bitwidth is None else bitwidth, quant_config_file)

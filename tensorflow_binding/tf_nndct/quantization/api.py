"""`tf_quantizer`: the Keras 3 flows, with the reference's name and signature.

A model with recurrent layers runs the recurrent flow (the reference RNN quantizer's): every
`keras.layers.LSTM` and `Bidirectional(LSTM)` of a functional or Sequential model is quantized
to 16- (or 8-) bit fixed point through the same StandardLstmCell, calibration and C++ kernels as
`torch_quantizer(..., lstm=True)`; every other layer runs float. A model without recurrent
layers, or any model with `cnn=True`, runs the CNN flow (`tf_nndct.cnn`): its layers are
captured into the neutral CNN graph and quantized as `torch_quantizer(..., lstm=False)` does,
and its recurrent layers (with cnn=True) by the recurrent flow, files in output_dir/recurrent/.
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
        dims = tuple(spec.shape.as_list())
        if any(d is None for d in dims):
            raise error("INPUT_SIGNATURE", problem=f"has the partly unknown shape {list(dims)}; give every "
                                                   "dimension, with batch 1")
        shapes.append(dims)
    return shapes


def _check_signature(model: keras.Model, input_signature: Any) -> None:
    """The signature must match the model's inputs (every dimension but the batch)."""
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
        mismatch = len(spec_shape) != len(model_shape) or any(
            m is not None and s != m for s, m in zip(spec_shape[1:], model_shape[1:]))
        if mismatch:
            raise error("INPUT_SIGNATURE", problem=f"has shape {list(spec_shape)} but the model input is "
                                                   f"{[d for d in model_shape]}")


def _signature_shapes(input_signature: Any) -> list[tuple] | None:
    """The input_signature's shapes for the CNN capture (None without a signature)."""
    return None if input_signature is None else _spec_shapes(input_signature)


def _has_recurrent_layers(model: keras.Model) -> bool:
    from ..cnn.capture import is_recurrent_layer
    from .model_rewrite import walk_layers

    return any(is_recurrent_layer(layer) for _, layer in walk_layers(model))


def tf_quantizer(model: Any, input_signature: Any = None, quant_mode: str = "calib",
                 output_dir: str = "quantize_result", bitwidth: int | None = None,
                 quant_config_file: str | None = None, target: str | None = None,
                 cnn: bool | None = None):
    """Creates the quantizer of a Keras model (or a `.keras` / `.h5` file) in mode 'calib' or
    'test'. `input_signature` is a `tf.TensorSpec` (or a list) with the input shape and batch
    1, as in the reference; it is checked against the model's inputs.

    Flow: `cnn=None` picks the recurrent flow for a model with recurrent layers (the other layers
    stay float, as in the reference) and the CNN flow otherwise; `cnn=True` runs the CNN flow on
    every non-recurrent layer (and the recurrent flow on the recurrent ones); `cnn=False` forces
    the recurrent flow. `bitwidth` defaults to 16 for recurrent layers and 8 for CNN layers;
    `quant_config_file` and `target` configure the CNN flow (as in `torch_quantizer`).

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
                                     _signature_shapes(input_signature))
        for argument, given in (("quant_config_file", quant_config_file), ("target", target)):
            if given is not None:
                warn("LSTM_ARG_IGNORED", argument=argument)
        return TFQuantizer(keras_model, mode, output_dir, 16 if bitwidth is None else bitwidth)

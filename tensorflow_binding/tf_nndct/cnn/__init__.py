"""The Keras CNN flow: capture into the neutral CNN graph, the NumPy quantized datapath behind
quant_model, bias correction, and the Keras `Inspector` (see README.md, "Keras CNN").

`tf_quantizer` (tf_nndct.quantization.api) picks this flow for models without recurrent layers,
or for any model with `cnn=True`."""
from .capture import KerasCapture, capture_keras_model
from .inspector import Inspector
from .quantizer import KerasCnnQuantizer

__all__ = ["Inspector", "KerasCapture", "KerasCnnQuantizer", "capture_keras_model"]

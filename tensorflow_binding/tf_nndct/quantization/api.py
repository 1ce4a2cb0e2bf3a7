"""`tf_quantizer`: the Keras LSTM flow (not implemented yet).

The neutral part it will use exists and is shared with PyTorch (`nndct_shared.lstm`: the C++
cell, calibration, quant_info.json, xmodel and dump writers); what is missing is the Keras side:
finding `keras.layers.LSTM` / `Bidirectional` layers, mapping their kernels onto the cell, and
rebuilding the model around the quantized layers.
"""
from __future__ import annotations


def tf_quantizer(model, input_signature=None, quant_mode: str = "calib", output_dir: str = "quantize_result",
                 bitwidth: int = 16):
    """Would quantize the LSTM layers of a Keras model; raises NotImplementedError for now."""
    raise NotImplementedError(
        "tf_quantizer: the Keras LSTM flow is not implemented yet (missing: Keras layer discovery, "
        "weight mapping onto StandardLstmCell and the rebuilt quant_model). Use the PyTorch flow, "
        "pytorch_nndct.apis.torch_quantizer(..., lstm=True), meanwhile.")

"""Framework-neutral (numpy) math of the post-training optimisations of the CNN flow.

- ``cle``: cross-layer equalization scales as the reference computes them (Nagel et al.,
  "Data-Free Quantization", 2019, with vai_q_pytorch's bias-aware ranges).
- ``bias_correction``: the per-channel expected output error of a quantized layer, accumulated
  over calibration batches in bounded memory, and the bias that cancels it.

The torch side (``pytorch_nndct.optim``) finds the layers and runs the models; this package only
does the arithmetic, so the Keras front end can reuse it.
"""
from __future__ import annotations

from .bias_correction import BiasCorrection, ChannelMeanError, corrected_bias
from .cle import (
    bias_shrink_factor,
    equalization_scales,
    first_layer_ranges,
    input_channel_ranges,
    output_channel_ranges,
    output_channel_rows,
    scale_input_channels,
    scale_output_channels,
)

__all__ = [
    "BiasCorrection",
    "ChannelMeanError",
    "bias_shrink_factor",
    "corrected_bias",
    "equalization_scales",
    "first_layer_ranges",
    "input_channel_ranges",
    "output_channel_ranges",
    "output_channel_rows",
    "scale_input_channels",
    "scale_output_channels",
]

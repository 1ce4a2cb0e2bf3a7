"""Framework-neutral (numpy) math of the post-training optimisations of the CNN flow.

- ``cle``: cross-layer equalization scales (Nagel et al., "Data-Free Quantization", 2019).
- ``bias_correction``: the per-channel expected output error of a quantized layer, accumulated
  over calibration batches in bounded memory, and the bias that cancels it.

The torch side (``pytorch_nndct.optim``) finds the layers and runs the models; this package only
does the arithmetic, so the Keras front end can reuse it.
"""
from __future__ import annotations

from .bias_correction import BiasCorrection, ChannelMeanError, corrected_bias
from .cle import equalization_scales, input_channel_ranges, output_channel_ranges, scale_pair

__all__ = [
    "BiasCorrection",
    "ChannelMeanError",
    "corrected_bias",
    "equalization_scales",
    "input_channel_ranges",
    "output_channel_ranges",
    "scale_pair",
]

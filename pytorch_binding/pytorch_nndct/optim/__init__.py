"""Post-training optimisations of the CNN flow: fast finetune (AdaQuant), bias correction and
cross-layer equalization. Each works on the converted model / captured graph of a
`TorchQuantizer`; the numpy math lives in `nndct_shared.algorithms`."""
from __future__ import annotations

from .bias_correction import BIAS_CORR_FILE, BiasCorrection, correct_bias, load_bias_corr
from nndct_shared.cnn.cle import ClePair, equalize_graph, find_cle_pairs

from .equalize import equalize_quantizer
from .fast_finetune import FT_PARAM_FILE, FinetuneOptions, LayerResult, fast_finetune, load_ft_param

__all__ = ["BIAS_CORR_FILE", "BiasCorrection", "ClePair", "correct_bias", "equalize_quantizer", "load_bias_corr", "FT_PARAM_FILE", "FinetuneOptions", "LayerResult", "equalize_graph", "fast_finetune",
           "find_cle_pairs", "load_ft_param"]

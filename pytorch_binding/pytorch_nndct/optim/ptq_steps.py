"""The config-driven post-training steps of the CNN flow: `include_cle` and `include_bias_corr`.

Why a separate object: both steps hook into different moments of the quantizer's life, and calib
and test mode must agree on them, or test mode would quantize other weights than calibration saw:

* cross-layer equalization rewrites the captured graph's weights right after capture, before the
  converted model is built, in both modes (it is deterministic, so both get identical weights);
* bias correction needs calibration samples: in calib mode the model inputs of the first
  `BIAS_CORR_SAMPLES` samples are recorded while the user's loop calibrates, and the biases are
  corrected once, when `export_quant_config()` is called, before the fix positions are written
  (the corrected biases get their own fix positions). They are saved to `bias_corr.pth`, written
  together with quant_info.json, which test mode loads; a missing file there is a missing
  calibration result.

Fast finetune (AdaQuant) already fits every bias to the float outputs, so after
`fast_finetune()` bias correction is skipped, with a note, and test mode expects `param.pth`
(loaded by `load_ft_param()`) instead of `bias_corr.pth`. The guide's defaults turn both steps on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Collection

from torch import nn

from nndct_shared.config import QuantConfig
from nndct_shared.graph import Graph
from nndct_shared.messages import error, note

from .bias_correction import BIAS_CORR_FILE, bias_corr_bytes, correct_bias, load_bias_corr
from .cle import ClePair, equalize_graph
from .fast_finetune import FT_PARAM_FILE
from .layer_data import InputRecorder

__all__ = ["BIAS_CORR_SAMPLES", "PostTrainingSteps"]

#: Calibration samples whose inputs are kept for bias correction (memory bound).
BIAS_CORR_SAMPLES = 512


class PostTrainingSteps:
    """CLE and bias correction of one quantizer, as its config says."""

    def __init__(self, config: QuantConfig, mode: str) -> None:
        self.cle = bool(config.include_cle)
        self.bias_corr = bool(config.include_bias_corr)
        self.mode = mode
        self.cle_pairs: list[ClePair] = []
        self.finetuned = False
        self._bias_corr_file: bytes | None = None
        self._recorder: InputRecorder | None = None

    def equalize(self, graph: Graph, quantized: Collection[str]) -> list[ClePair]:
        """Cross-layer equalization of the captured graph (before the model is built), on the
        pairs whose both layers are in `quantized` (the layers with quantized weights)."""
        if self.cle:
            self.cle_pairs = equalize_graph(graph, eligible=quantized)
            if self.cle_pairs:
                note(f"=>Cross-layer equalization: {len(self.cle_pairs)} layer pair(s) equalized.")
        return self.cle_pairs

    def attach(self, model: nn.Module) -> None:
        """Calib mode: start keeping calibration inputs for bias correction."""
        if self.bias_corr and self.mode == "calib":
            self._recorder = InputRecorder(BIAS_CORR_SAMPLES).attach(model)

    def mark_finetuned(self) -> None:
        """Fast finetune fitted the biases: bias correction is skipped, and the calibration inputs
        kept for it are released now rather than at export."""
        self.finetuned = True
        if self._recorder is not None:
            self._recorder.detach()
            self._recorder.batches.clear()

    def before_export(self, quantizer: Any) -> dict[str, bytes]:
        """Calib mode, in export_quant_config(): correct the biases once (see the module doc).

        Returns the files to write with quant_info.json ({file name: content}): the two are
        staged together, so a failure never leaves a new one beside an old one.
        """
        if self._recorder is None:
            return {}
        if self.finetuned:
            note("=>Bias correction skipped: fast finetune already fitted the biases.")
            return {}
        if self._bias_corr_file is None:
            self._recorder.detach()
            results = correct_bias(quantizer, self._recorder.batches, measure_after=False)
            self._bias_corr_file = bias_corr_bytes(quantizer, results)
            note(f"=>Bias correction: {len(results)} bias(es) corrected on {self._recorder.count} "
                 "calibration sample(s).")
        return {BIAS_CORR_FILE: self._bias_corr_file}

    def load(self, quantizer: Any) -> None:
        """Test mode: load the corrected biases that calibration saved."""
        if not self.bias_corr:
            return
        out = Path(quantizer.output_dir)
        if (out / BIAS_CORR_FILE).is_file():
            load_bias_corr(quantizer)
        elif (out / FT_PARAM_FILE).is_file():
            note(f"=>No '{BIAS_CORR_FILE}': calibration used fast finetune; call load_ft_param().")
        else:
            raise error("NO_CALIB_RESULT", path=str(out / BIAS_CORR_FILE))

"""The config-driven post-training steps of the CNN flow: `include_cle` and `include_bias_corr`.

Why a separate object: both steps hook into different moments of the quantizer's life, and calib
and test mode must agree on them, or test mode would quantize other weights than calibration saw:

* cross-layer equalization rewrites the captured graph's weights right after capture, before the
  converted model is built, in both modes (it is deterministic, so both get identical weights;
  the neutral session plans and runs it, `CnnQuantSession.equalize`);
* bias correction needs calibration samples: in calib mode the model inputs of the first
  `BIAS_CORR_SAMPLES` samples are recorded while the user's loop calibrates, and the biases are
  corrected once, when `export_quant_config()` is called, before the fix positions are written
  (the corrected biases get their own fix positions). The corrections are saved to
  `bias_corr.pth` in the reference's layout (node name -> per-output-channel corrections),
  written together with quant_info.json (whose `bias_corrected` says so), which test mode loads;
  a missing file there is a missing calibration result.

Fast finetune (AdaQuant) already fits every bias to the float outputs, so after
`fast_finetune()` bias correction is skipped, with a note, and test mode expects `param.pth`
(loaded by `load_ft_param()`) instead of `bias_corr.pth`. The guide's defaults turn both steps on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from nndct_shared.cnn.cle import ClePair
from nndct_shared.cnn.session import CnnQuantSession
from nndct_shared.config import QuantConfig
from nndct_shared.messages import error, note
from nndct_shared.quant_mode import RunMode

from ..distributed import bias_correction_inputs
from .bias_correction import BIAS_CORR_FILE, bias_corr_bytes, bias_corr_data, correct_bias, load_bias_corr
from .fast_finetune import FT_PARAM_FILE
from .layer_data import InputRecorder

__all__ = ["BIAS_CORR_SAMPLES", "PostTrainingSteps"]

#: Calibration samples whose inputs are kept for bias correction (memory bound).
BIAS_CORR_SAMPLES = 512


class PostTrainingSteps:
    """CLE and bias correction of one quantizer, as its config says."""

    def __init__(self, config: QuantConfig, mode: RunMode) -> None:
        self.cle = bool(config.include_cle)
        self.bias_corr = bool(config.include_bias_corr)
        self.mode = mode
        self.cle_pairs: list[ClePair] = []
        self.finetuned = False
        self._bias_corr_file: bytes | None = None
        self._recorder: InputRecorder | None = None

    def equalize(self, session: CnnQuantSession) -> list[ClePair]:
        """Cross-layer equalization of the captured graph (before the model is built), on the
        pairs whose both layers have quantized weights (`CnnQuantSession.equalize`)."""
        self.cle_pairs = session.equalize()
        return self.cle_pairs

    def attach(self, model: nn.Module) -> None:
        """Calib mode: start keeping calibration inputs for bias correction."""
        if self.bias_corr and self.mode == RunMode.CALIB:
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
            # under torch.distributed: the first samples of all ranks together (a collective)
            batches, count, merge = bias_correction_inputs(self._recorder.batches, self._recorder.count,
                                                           self._recorder.max_samples)
            results = correct_bias(quantizer, batches, merge, measure_after=False)
            self._bias_corr_file = bias_corr_bytes(quantizer, results)
            note(f"=>Bias correction: {len(results)} bias(es) corrected on {count} "
                 "calibration sample(s).")
        return {BIAS_CORR_FILE: self._bias_corr_file}

    def load(self, quantizer: Any) -> None:
        """Test mode: load the bias corrections that calibration saved. A 3.x quant_info.json
        says whether it has them (`bias_corrected`) or used fast finetune (`fast_finetuned`); an
        older single-pair file does not, so the config and the files present decide."""
        out = Path(quantizer.output_dir)
        record = quantizer.session.calib_record
        if record is not None and record.bias_corrected is not None:
            if record.bias_corrected:
                load_bias_corr(quantizer)  # NO_CALIB_RESULT when bias_corr.pth is missing
            elif record.fast_finetuned:
                note(f"=>No '{BIAS_CORR_FILE}': calibration used fast finetune; call load_ft_param().")
            return
        if not self.bias_corr:
            return
        if bias_corr_data(quantizer) is not None:  # in the version quant_info.json came from
            load_bias_corr(quantizer)
        elif (out / FT_PARAM_FILE).is_file():
            note(f"=>No '{BIAS_CORR_FILE}': calibration used fast finetune; call load_ft_param().")
        else:
            raise error("NO_CALIB_RESULT", path=str(out / BIAS_CORR_FILE))

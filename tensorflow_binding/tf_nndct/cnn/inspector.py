"""`Inspector` for Keras models: which layers a DPU target runs, and why the others fall back
to the CPU.

The Keras counterpart of `pytorch_nndct.apis.Inspector`, with the same target lookup and
messages: the model is captured by the CNN flow's capture (so node names are the quantizer's),
and the target database, the partition, `inspect_<target>.txt` and the pictures are the
framework-neutral `nndct_shared.inspector`. Recurrent layers are not CNN operators: their
outputs appear as graph inputs, and the report covers the layers around them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nndct_shared.inspector import DpuTarget, InspectResult, inspector_target, run_inspection
from nndct_shared.messages import note, use_frontend

__all__ = ["Inspector"]


class Inspector:
    """`Inspector(name_or_fingerprint)`: a DPU target by name (`DPUCZDX8G_ISA1_B4096`) or
    fingerprint; an unknown name is UNKNOWN_TARGET, an unknown fingerprint INSPECTOR_INPUT_FORMAT."""

    def __init__(self, name_or_fingerprint: str | int) -> None:
        with use_frontend("tf"):
            self.target: DpuTarget = inspector_target(name_or_fingerprint)
        self.result: InspectResult | None = None

    def inspect(self, model: Any, input_signature: Any = None,
                output_dir: str | os.PathLike[str] = "quantize_result", verbose_level: int = 1,
                image_format: str | None = None) -> InspectResult:
        """Captures the float Keras `model` (or a `.keras` / `.h5` path; `input_signature` as
        in `tf_quantizer`) and writes `output_dir/inspect_<target>.txt`, plus the `.gv` and the
        picture with `image_format` 'svg' or 'png'. Returns the device of every node, each with
        its reason (`assignment.why`). The model is not changed."""
        from ..quantization.api import _check_signature, _load_model, _signature_shapes
        from .capture import capture_keras_model

        with use_frontend("tf"):
            keras_model = _load_model(model)
            _check_signature(keras_model, input_signature)
            capture = capture_keras_model(keras_model, _signature_shapes(keras_model, input_signature))
            if capture.boundaries:
                names = ", ".join(b.call.path for b in capture.boundaries)
                note(f"Recurrent layers ({names}) are not CNN operators: the inspection covers the "
                     "layers around them.")
            self.result, _ = run_inspection(capture.graph, self.target, Path(output_dir), verbose_level,
                                            image_format)
            return self.result


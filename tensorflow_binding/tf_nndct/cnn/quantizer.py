"""`KerasCnnQuantizer`: what `tf_quantizer` returns for a Keras CNN (and for cnn=True).

The Keras side of the neutral CNN session (`nndct_shared.cnn.session`), the counterpart of the
PyTorch `TorchQuantizer`: the model is captured into the neutral graph (`capture.py`), the
session plans the fixes, resolves the config and `target=`, runs cross-layer equalization and
owns quant_info.json and every export; this front end runs the quantized datapath
(`runtime.py`, through the Keras layers of `quant_model.py`) and bias correction
(`bias_correction.py`).

A model with recurrent layers (LSTM, GRU, Bidirectional) runs both flows: the CNN layers
through this session, the recurrent layers through the recurrent flow's `TFQuantizer` (same
calls, same quant_model). Its files go to `output_dir/recurrent/` (`RECURRENT_DIR`:
quant_info.json, the cell code, xmodel/, deploy_check_data_int/), the CNN part's to
`output_dir` itself (quant_info.json, bias_corr.npz, `<Model>_int.xmodel`,
deploy_check_data_int/<Model>/), so neither overwrites the other.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from nndct_shared.cnn.session import CnnQuantSession, load_session_config
from nndct_shared.cnn.session_views import SessionViews
from nndct_shared.cnn_export.validate import validate_cnn_graph
from nndct_shared.messages import error, note, use_frontend, warn_once
from nndct_shared.output_dir import checked_output_dir
from nndct_shared.quant_mode import RunMode, require_mode

from .bias_correction import BIAS_CORR_FILE, correct_biases, load_bias_corrections, npz_bytes
from ..quantization.model_rewrite import walk_layers
from .capture import KerasCapture, capture_keras_model, is_recurrent_layer
from .quant_model import CnnEngine, build_quant_model
from .runtime import QuantRuntime

__all__ = ["BIAS_CORR_SAMPLES", "KerasCnnQuantizer", "RECURRENT_DIR"]

#: Calibration samples whose graph inputs are kept for bias correction (the PyTorch flow's bound).
BIAS_CORR_SAMPLES = 512
#: Where the recurrent flow of a mixed model writes its files, inside output_dir.
RECURRENT_DIR = "recurrent"


class KerasCnnQuantizer(SessionViews):
    """The quantizer of a Keras model's CNN layers (and, through the recurrent flow, its
    recurrent layers); see the module docstring. `input_shapes`: the input_signature's shapes
    (their batch is the one shapes are recorded with; they fix input sizes the model leaves
    open)."""

    def __init__(self, model: keras.Model, mode: RunMode, output_dir: str | os.PathLike[str],
                 bitwidth: int | None = None, quant_config_file: str | None = None, target: str | None = None,
                 input_shapes: list[tuple[int, ...]] | None = None) -> None:
        self.quant_mode = RunMode(mode)
        self.output_dir = checked_output_dir(output_dir)
        self.target = target
        config = load_session_config(quant_config_file, 8 if bitwidth is None else bitwidth)
        self.recurrent = self._recurrent_part(model, bitwidth)
        source = model if self.recurrent is None else self.recurrent.quant_model
        # the recurrent flow's clone keeps every other layer object: the layers it created are
        # its quantized recurrent layers, whatever their class
        originals = {id(layer) for _, layer in walk_layers(model)}
        self.capture: KerasCapture = capture_keras_model(
            source, input_shapes, convert_relu6_to_relu=config.convert_relu6_to_relu,
            convert_silu_to_hswish=config.convert_silu_to_hswish,
            is_boundary=lambda layer: id(layer) not in originals or is_recurrent_layer(layer))
        validate_cnn_graph(self.capture.graph)  # a capture bug surfaces here, naming the node
        captured_graph = self.capture.graph  # the session renames nodes to the reference 3.x names
        self.session = CnnQuantSession(self.capture.captured, config, self.quant_mode, self.output_dir, target,
                                       config_file=quant_config_file)
        self.capture = self.capture.follow(self.session.captured, captured_graph)
        self.session.equalize()
        self.runtime = QuantRuntime(self.session.settings, self.quant_mode)
        if self.quant_mode == RunMode.TEST:  # checked before anything runs
            # bias_corr.npz is read with quant_info.json, from the same version of output_dir
            self.runtime.load(self.session.read_fix_positions(companions=[BIAS_CORR_FILE]))
            self._load_bias_corrections()
        record = BIAS_CORR_SAMPLES if config.include_bias_corr and self.quant_mode == RunMode.CALIB else 0
        self.engine = CnnEngine(self.capture.graph, self.runtime, self.capture.levels, record)
        self._bias_corr_file: bytes | None = None
        self._model = build_quant_model(self.capture, self.engine)
        if self.recurrent is not None:
            self.recurrent.run_inside(self._model)

    def _recurrent_part(self, model: keras.Model, bitwidth: int | None) -> Any:
        """The recurrent flow's quantizer of `model` (its quantizable recurrent layers), or None.
        Recurrent layers it does not quantize stay float, with the FLOAT_OP warning."""
        from ..quantization.model_rewrite import count_quantizable
        from ..quantization.quantizer import TFQuantizer

        if count_quantizable(model):
            return TFQuantizer(model, self.quant_mode, self.output_dir / RECURRENT_DIR,
                               16 if bitwidth is None else bitwidth)
        for path, layer in walk_layers(model):
            if is_recurrent_layer(layer):
                warn_once("FLOAT_OP", once_key=path, ops=f"{path} ({type(layer).__name__}: not quantized)")
        return None

    # --- state (graph, plan, settings...: SessionViews) ----------------------------------------

    @property
    def quant_model(self) -> keras.Model:
        """The quantized model: call it eagerly or through predict(), any batch size."""
        return self._model

    # --- calibration result -------------------------------------------------------------------

    def export_quant_config(self) -> Path:
        """Calib mode: writes `<output_dir>/quant_info.json` (+ bias_corr.npz), and the
        recurrent layers' result to `<output_dir>/recurrent/` in a mixed model."""
        with use_frontend("tf"):
            require_mode(self.quant_mode, RunMode.CALIB, "export_quant_config()")
            if self.engine.forwards == 0:
                raise error("NO_CALIBRATION", action="export_quant_config()")
            extra = self._bias_correction()
            fix_pos = self.runtime.calibrated()  # everything that can fail is computed first
            if self.recurrent is not None:
                self.recurrent.export_quant_config()
            return self.session.export_quant_config(fix_pos, extra, owns=[BIAS_CORR_FILE],
                                                    bias_corrected=BIAS_CORR_FILE in extra)

    def _load_bias_corrections(self) -> None:
        """Test mode: the bias corrections calibration saved. A 3.x quant_info.json says whether
        there are any (`bias_corrected`); an older single-pair one does not, so the config
        decides (as in the PyTorch flow, `ptq_steps.PostTrainingSteps.load`)."""
        record = self.session.calib_record
        if record is not None and record.bias_corrected is not None:
            wanted = record.bias_corrected
        else:
            wanted = self.config.include_bias_corr
        if wanted:
            load_bias_corrections(self.session, self.output_dir,  # missing: NO_CALIB_RESULT
                                  (self.session.calib_data or {}).get(BIAS_CORR_FILE))

    def _bias_correction(self) -> dict[str, bytes]:
        if not self.config.include_bias_corr:
            return {}
        if self._bias_corr_file is None:
            results, corrected = correct_biases(self.session, self.runtime, self.engine.recorded)
            self.engine.stop_recording()  # after: a refused calibration (NaN/inf only) may go on
            self._bias_corr_file = npz_bytes(corrected)
            note(f"=>Bias correction: {len(results)} bias(es) corrected on {self.engine.recorded_count} "
                 "calibration sample(s).")
        return {BIAS_CORR_FILE: self._bias_corr_file}

    # --- exports ------------------------------------------------------------------------------

    def _require_test_forward(self, action: str) -> None:
        require_mode(self.quant_mode, RunMode.TEST, action)
        if self.engine.forwards == 0:
            raise error("NO_FORWARD", action=action)

    def export_graph(self) -> Any:
        """The graph the exporters read: quantized params, fix attrs, shapes of the last forward."""
        shapes = {name: tuple(v.shape) for name, v in self.engine.last_outputs.items()}
        return self.session.export_graph(self.runtime.fix_pos, shapes)

    def export_xmodel(self, output_dir: str | os.PathLike[str] | None = None,
                      deploy_check: bool = False) -> Path | None:
        """Test mode: `<output_dir>/<Model>_int.xmodel` (XIR, NHWC) and, with deploy_check=True,
        `deploy_check_data_int/<Model>/` of the last forward (batch 1). output_dir defaults to
        the quantizer's. None, with the XMODEL_DEVICE warning, for a config file whose
        target_device is not a DPU (`CnnQuantSession.xmodel_wanted`)."""
        with use_frontend("tf"):
            self._require_test_forward("export_xmodel()")
            if not self.session.xmodel_wanted():  # a CPU/GPU config file: XMODEL_DEVICE
                return None
            if self.engine.last_batch_size != 1:
                raise error("XMODEL_BATCHSIZE", batch_size=self.engine.last_batch_size)
            values = dict(self.engine.last_outputs) if deploy_check else None
            return self.session.export_xmodel(self.export_graph(), values, output_dir or self.output_dir)

    def dump_xmodel(self, deploy_check: bool = False) -> list[Path]:
        """The recurrent flow's name: the CNN xmodel in output_dir and, in a mixed model, the
        recurrent cells' xmodels in output_dir/recurrent/xmodel/."""
        cnn = self.export_xmodel(self.output_dir, deploy_check)
        paths = [] if cnn is None else [cnn]
        if self.recurrent is not None:
            paths += self.recurrent.dump_xmodel()
        return paths

    def dump_rnn_outputs_by_timestep(self, inputs: Any) -> list[Path]:
        """Mixed models: the recurrent cells' per-time-step dumps of `inputs` (batch 1), run
        through the whole quantized model (so the cells see the quantized CNN outputs)."""
        if self.recurrent is None:
            with use_frontend("tf"):
                raise error("NO_LSTM", module=self.graph.name)
        return self.recurrent.dump_rnn_outputs_by_timestep(inputs)

    def export_onnx_model(self, output_dir: str | os.PathLike[str] | None = None, verbose: bool = False) -> Path:
        """Test mode: `<output_dir>/<Model>_int.onnx` with QuantizeLinear/DequantizeLinear pairs
        (channels-first, as the neutral graph)."""
        with use_frontend("tf"):
            self._require_test_forward("export_onnx_model()")
            path = self.session.export_onnx(self.export_graph(), output_dir or self.output_dir)
            if verbose:
                note(f"=>Exported ONNX model '{path}'")
            return path

    # --- what the PyTorch CNN flow has and this one does not (yet) ---------------------------

    def report(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("report() is not implemented for the Keras CNN flow yet (the PyTorch "
                                  "CNN flow and the recurrent flows have it).")

    def fast_finetune(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("fast_finetune() is not implemented for the Keras CNN flow (use "
                                  "include_cle / include_bias_corr, or the PyTorch flow).")

    def load_ft_param(self) -> Any:
        raise NotImplementedError("load_ft_param() is not implemented for the Keras CNN flow.")

    def export_torch_script(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("export_torch_script() has no Keras counterpart; use export_xmodel() "
                                  "or export_onnx_model().")


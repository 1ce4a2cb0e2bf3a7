"""`TFQuantizer`: what `tf_quantizer` returns; the Keras side of the shared RNN session.

The Keras front end only finds the LSTM and GRU layers, maps their weights onto
StandardLstmCells / StandardGruCells and rebuilds the model; calibration, quant_info.json, the xmodels and the dumps are the neutral
`LstmQuantSession`'s, the very code the PyTorch flow runs, which is why both frameworks write
the same files for the same weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from nndct_shared.lstm.session import FirstBatch, LstmQuantSession
from nndct_shared.lstm.width_config import load_width_config
from nndct_shared.messages import error, use_frontend
from nndct_shared.output_dir import checked_output_dir
from nndct_shared.quant_mode import RunMode

from ..layers.quant_rnn import QuantRNN
from .eager_call import with_eager_call
from .model_rewrite import count_quantizable, rebuild_with_quantized_rnns


class TFQuantizer:
    """All quantized LSTM and GRU layers of one Keras model and the files of one output directory."""

    def __init__(self, model: keras.Model, mode: RunMode, output_dir: str | Path, bitwidth: int,
                 quant_config_file: str | Path | dict | None = None) -> None:
        if not count_quantizable(model):
            raise error("NO_LSTM", module=model.name)
        self.quant_mode = mode
        self.output_dir = checked_output_dir(output_dir)
        widths = load_width_config(quant_config_file, bitwidth)  # per-tensor widths, as the PyTorch flow's
        quant_model, layers = rebuild_with_quantized_rnns(model, bitwidth)
        self.session = LstmQuantSession(self.output_dir, mode, bitwidth, widths=widths)
        self.quant_layers: list[QuantRNN] = layers
        for layer in layers:
            layer.mode = mode
            layer.stack.module_path = layer.layer_path  # what a config entry's "module" may name
            self.session.add_stack(layer.stack)
        self.session.check_widths_used()
        self._model = with_eager_call(quant_model)
        self._dumped: dict[int, FirstBatch] | None = None  # the batches of this quantizer's last dump
        if mode == RunMode.TEST:
            self.session.load_quant_config()
        self.session.write_cell_modules()

    @property
    def quant_model(self) -> keras.Model:
        """The float model with every LSTM / GRU / Bidirectional layer of them quantized; call it eagerly
        (or through predict) on any batch size."""
        return self._model

    def export_quant_config(self) -> Path:
        """Calib mode: writes `<output_dir>/quant_info.json` (aligned fix positions)."""
        with use_frontend("tf"):
            return self.session.export_quant_config()

    def report(self, inputs: Any, output_dir: str | None = None, eval_fn=None, **options):
        """Write quant_report.html / .json and the suggested per-cell-node config for `inputs`
        after calibration; `eval_fn(quant_model) -> float` (higher is better) adds the user's
        metric (see `nndct_shared.report`)."""
        from .report import keras_report

        return keras_report(self, inputs, output_dir, eval_fn, **options)

    def dump_xmodel(self) -> list[Path]:
        """Test mode: writes `<output_dir>/xmodel/<graph>_int.xmodel`, one per cell.

        The xmodels and the deploy-check dumps are one export: dumps this quantizer wrote with
        `dump_rnn_outputs_by_timestep` are written again with the xmodels, and dumps of another
        run are removed, so the directory never pairs a new xmodel with old dumps."""
        with use_frontend("tf"):
            return self.session.export_xmodel(self.output_dir, self._dumped, self._dumped is not None,
                                              action="dump_xmodel()")[:len(self.session.cells)]

    def dump_rnn_outputs_by_timestep(self, inputs: Any) -> list[Path]:
        """Test mode: runs `inputs` (batch 1) through the quantized model and writes every
        cell's node values per time step to `<output_dir>/deploy_check_data_int/<graph>/
        frame_<t>/` (frame t = time step t; Keras' shape inference adds no frame).

        The dumps are committed as one export together with the xmodels of this quantizer
        (`dump_xmodel`'s files), which are written again, so that a run killed between the two
        calls leaves either the old pair or the new one. Returns the frame directories."""
        action = "dump_rnn_outputs_by_timestep()"
        with use_frontend("tf"):
            if self.quant_mode != RunMode.TEST:
                raise error("EXPORT_MODE", action=action, required="test", mode=self.quant_mode.value)
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            batch = int(np.shape(first)[0]) if np.ndim(first) else 0
            if batch != 1:
                raise error("DUMP_BATCHSIZE", action=action, batch_size=batch)
            for layer in self.quant_layers:
                layer.capture_next, layer.captured = True, None
            try:
                self._model(inputs, training=False)
            finally:
                for layer in self.quant_layers:
                    layer.capture_next = False
            batches = {k: FirstBatch(*layer.captured) for k, layer in enumerate(self.quant_layers)
                       if layer.captured is not None}
            written = self.session.export_xmodel(self.output_dir, batches, True, action=action)
            self._dumped = batches
            return written[len(self.session.cells):]

    def run_inside(self, model: keras.Model) -> None:
        """Run these quantized layers inside `model` from now on: a larger quantized model that
        calls them (the CNN flow's quant_model of a model mixing CNN and recurrent layers,
        `tf_nndct.cnn`), so quant_model, the per-time-step dumps and the report see the
        quantized CNN layers around them instead of the float ones of the clone."""
        self._model = model

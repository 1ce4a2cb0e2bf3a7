"""`torch_quantizer(..., lstm=True)`: every `nn.LSTM` of the module becomes a `QuantLSTM`.

Only the LSTMs are quantized (as in the reference RNN quantizer); embeddings, heads and
activations around them stay float. The flow is the reference's: calib mode records the fix
positions and `export_quant_config()` writes quant_info.json; test mode reads it, runs the
integer datapath and `export_xmodel()` writes the xmodels and the deploy-check dumps.

One LSTM registered under several attribute names is one module (one set of weights): it is
quantized once and every name gets the same QuantLSTM, with the LSTM_SHARED warning, rather than
leaving the second name float.
"""
from __future__ import annotations

import copy
from pathlib import Path

from torch import nn

from nndct_shared.lstm.naming import prefix_from_module_path
from nndct_shared.lstm.session import FirstBatch, LstmQuantSession
from nndct_shared.messages import error, note, warn
from nndct_shared.output_dir import checked_output_dir
from nndct_shared.quant_mode import RunMode

from ..distributed import current_collective, skips_writing
from ..nn.quant_lstm import QuantLSTM


def find_lstms(module: nn.Module) -> list[tuple[str, nn.LSTM]]:
    """Every `nn.LSTM` in the module tree with its attribute path, in registration order (an
    LSTM registered twice is listed once, under its first path)."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, nn.LSTM)]


def _other_paths(module: nn.Module, lstm: nn.LSTM, path: str) -> list[str]:
    """The attribute paths other than `path` under which the same LSTM object is registered."""
    return [p for p, m in module.named_modules(remove_duplicate=False) if m is lstm and p != path]


def _check_supported(path: str, lstm: nn.LSTM) -> None:
    if lstm.proj_size:
        raise error("UNSUPPORTED_RNN", module=path or "top module", feature=f"proj_size={lstm.proj_size}")
    if lstm.dropout and lstm.num_layers > 1:
        note(f"LSTM '{path or 'top module'}' has dropout={lstm.dropout} between layers; the quantized "
             "model is an inference model, so dropout is not applied (as in eval mode).")


def _replace_module(root: nn.Module, path: str, new: nn.Module) -> nn.Module:
    """setattr on the parent; a root that is itself the LSTM is replaced whole."""
    if not path:
        return new
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, new)
    return root


class LstmTorchQuantizer:
    """The object `torch_quantizer` returns in LSTM mode."""

    def __init__(self, quant_mode: RunMode, module: nn.Module, output_dir: str, bitwidth: int) -> None:
        lstms = find_lstms(module)
        if not lstms:
            raise error("NO_LSTM", module=type(module).__name__)
        self.quant_mode = quant_mode
        self.output_dir = checked_output_dir(output_dir)
        self.session = LstmQuantSession(self.output_dir, quant_mode, bitwidth, current_collective())
        model = copy.deepcopy(module).cpu().eval()
        self.quant_lstms: list[QuantLSTM] = []
        for path, lstm in find_lstms(model):
            _check_supported(path, lstm)
            qlstm = QuantLSTM(lstm, prefix_from_module_path(path, type(lstm).__name__), path, bitwidth)
            qlstm.mode = quant_mode
            self.session.add_stack(qlstm.stack)
            self.quant_lstms.append(qlstm)
            aliases = _other_paths(model, lstm, path)
            for alias in [path, *aliases]:
                model = _replace_module(model, alias, qlstm)
            if aliases:
                warn("LSTM_SHARED", names=[repr(p) for p in [path, *aliases]], first=path)
        self._model = model
        if quant_mode == RunMode.TEST:
            self.session.load_quant_config()
        self.session.write_cell_modules()

    @property
    def quant_model(self) -> nn.Module:
        """The user's model with every LSTM replaced (float everywhere else)."""
        return self._model

    def export_quant_config(self) -> Path:
        return self.session.export_quant_config()

    def export_xmodel(self, output_dir: str = "quantize_result", deploy_check: bool = False) -> list[Path]:
        if self.quant_mode == RunMode.TEST and skips_writing("export_xmodel()"):  # rank 0 exports
            return []
        batches = {k: FirstBatch(*q.first_batch) for k, q in enumerate(self.quant_lstms) if q.first_batch is not None}
        if self.quant_mode == RunMode.TEST and len(batches) < len(self.quant_lstms):
            unused = [q.module_path or "top module" for q in self.quant_lstms if q.first_batch is None]
            raise error("NO_FORWARD", action=f"export_xmodel() (no input seen by {', '.join(unused)})")
        return self.session.export_xmodel(checked_output_dir(output_dir), batches, deploy_check)

    def report(self, inputs, output_dir: str | None = None, eval_fn=None, **options):
        """Write quant_report.html / .json and the suggested config for `inputs` (a batch, or the
        forward's arguments as a tuple) after calibration; `eval_fn(quant_model) -> float`
        (higher is better) adds the user's metric. Options: target_error, max_metric_drop,
        high_bit_width, sensitivity (see `nndct_shared.report`)."""
        from ..report import lstm_report

        return lstm_report(self, inputs, output_dir, eval_fn, **options)

    def _cnn_only(self, what: str):
        raise NotImplementedError(
            f"{what} belongs to the CNN flow (torch_quantizer with lstm=False), which is not "
            "implemented yet; in LSTM mode use export_quant_config() and export_xmodel().")

    def export_onnx_model(self, output_dir: str = "quantize_result", verbose: bool = False):
        self._cnn_only("export_onnx_model()")

    def export_torch_script(self, output_dir: str = "quantize_result", verbose: bool = False):
        self._cnn_only("export_torch_script()")

    def fast_finetune(self, run_fn, run_args):
        self._cnn_only("fast_finetune()")

    def load_ft_param(self):
        self._cnn_only("load_ft_param()")


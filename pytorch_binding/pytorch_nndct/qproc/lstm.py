"""`torch_quantizer(..., lstm=True)`: every `nn.LSTM` of the module becomes a `QuantLSTM` and
every `nn.GRU` a `QuantGRU`.

Only the RNNs are quantized (as in the reference RNN quantizer); embeddings, heads and
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
from nndct_shared.lstm.width_config import load_width_config
from nndct_shared.messages import error, note, warn
from nndct_shared.output_dir import checked_output_dir
from nndct_shared.quant_mode import RunMode

from ..distributed import current_collective, skips_writing
from ..nn.quant_gru import QuantGRU
from ..nn.quant_lstm import QuantLSTM
from ..nn.quant_rnn import QuantRnnBase


def find_rnns(module: nn.Module) -> list[tuple[str, nn.LSTM | nn.GRU]]:
    """Every `nn.LSTM` and `nn.GRU` in the module tree with its attribute path, in registration
    order (a module registered twice is listed once, under its first path)."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, (nn.LSTM, nn.GRU))]


def _other_paths(module: nn.Module, rnn: nn.Module, path: str) -> list[str]:
    """The attribute paths other than `path` under which the same RNN object is registered."""
    return [p for p, m in module.named_modules(remove_duplicate=False) if m is rnn and p != path]


def _check_supported(path: str, rnn: nn.LSTM | nn.GRU) -> None:
    kind = "LSTM" if isinstance(rnn, nn.LSTM) else "GRU"
    if kind == "LSTM" and rnn.proj_size:
        raise error("UNSUPPORTED_RNN", module=path or "top module", feature=f"proj_size={rnn.proj_size}")
    if rnn.dropout and rnn.num_layers > 1:
        note(f"{kind} '{path or 'top module'}' has dropout={rnn.dropout} between layers; the quantized "
             "model is an inference model, so dropout is not applied (as in eval mode).")


def _quantized(path: str, rnn: nn.LSTM | nn.GRU, bitwidth: int) -> QuantRnnBase:
    """The QuantLSTM / QuantGRU of one module, its graphs named from its attribute path."""
    _check_supported(path, rnn)
    cls = QuantLSTM if isinstance(rnn, nn.LSTM) else QuantGRU
    return cls(rnn, prefix_from_module_path(path, type(rnn).__name__), path, bitwidth)


def _replace_module(root: nn.Module, path: str, new: nn.Module) -> nn.Module:
    """setattr on the parent; a root that is itself the LSTM is replaced whole."""
    if not path:
        return new
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, new)
    return root


class LstmTorchQuantizer:
    """The object `torch_quantizer` returns in LSTM mode (which quantizes LSTMs and GRUs)."""

    def __init__(self, quant_mode: RunMode, module: nn.Module, output_dir: str, bitwidth: int,
                 quant_config_file: str | None = None) -> None:
        if not find_rnns(module):
            raise error("NO_LSTM", module=type(module).__name__)
        self.quant_mode = quant_mode
        self.output_dir = checked_output_dir(output_dir)
        widths = load_width_config(quant_config_file, bitwidth)
        self.session = LstmQuantSession(self.output_dir, quant_mode, bitwidth, current_collective(), widths)
        model = copy.deepcopy(module).cpu().eval()
        self.quant_rnns: list[QuantRnnBase] = []
        for path, rnn in find_rnns(model):
            qrnn = _quantized(path, rnn, bitwidth)
            qrnn.mode = quant_mode
            qrnn.stack.module_path = path
            self.session.add_stack(qrnn.stack)
            self.quant_rnns.append(qrnn)
            aliases = _other_paths(model, rnn, path)
            for alias in [path, *aliases]:
                model = _replace_module(model, alias, qrnn)
            if aliases:
                warn("LSTM_SHARED", names=[repr(p) for p in [path, *aliases]], first=path)
        self._model = model
        self.session.check_widths_used()
        if quant_mode == RunMode.TEST:
            self.session.load_quant_config()
        self.session.write_cell_modules()

    @property
    def quant_model(self) -> nn.Module:
        """The user's model with every LSTM and GRU replaced (float everywhere else)."""
        return self._model

    def export_quant_config(self) -> Path:
        return self.session.export_quant_config()

    def export_xmodel(self, output_dir: str = "quantize_result", deploy_check: bool = False) -> list[Path]:
        if self.quant_mode == RunMode.TEST and skips_writing("export_xmodel()"):  # rank 0 exports
            return []
        batches = {k: FirstBatch(*q.first_batch) for k, q in enumerate(self.quant_rnns) if q.first_batch is not None}
        if self.quant_mode == RunMode.TEST and len(batches) < len(self.quant_rnns):
            unused = [q.module_path or "top module" for q in self.quant_rnns if q.first_batch is None]
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


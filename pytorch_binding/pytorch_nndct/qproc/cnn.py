"""`torch_quantizer(..., lstm=False)`: the CNN flow (MLPs, 1-D/2-D CNNs, residual nets).

The reference flow: the float model is captured (torch.fx) into the neutral graph, written as
`<Model>.py` to output_dir and loaded back as `quant_model`. In calib mode, forwarding
`quant_model` calibrates every tensor the fix plan quantizes and `export_quant_config()` writes
quant_info.json (with bias_corr.pth when bias correction is on; cross-layer equalization runs on
the captured graph in both modes, see `optim/ptq_steps.py`); in test mode quant_info.json is
read back, the model runs fake-quantized, and the exports (xmodel with deploy-check dumps, ONNX,
TorchScript) are written from one forward.

This module keeps what needs torch: the capture, the generated module and its runtime (torch
tensors). The plan, the settings, `target=`, CLE planning, quant_info.json /
quant_info_float.json and the export graphs are the neutral `nndct_shared.cnn.session`'s.

Every export is one unit committed at once (`nndct_shared.output_dir.staged_export`); the
generated `<Model>.py` is written as one and the model is built from its source in memory,
never re-imported from output_dir.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.cnn.session import CnnQuantSession, load_session_config
from nndct_shared.collective import write_dir
from nndct_shared.cnn.session_views import SessionViews
from nndct_shared.export_commit import ExportUnit, Snapshot, StagedView
from nndct_shared.messages import error, note
from nndct_shared.output_dir import checked_output_dir
from nndct_shared.quant_info_store import FLOAT_QUANT_INFO_FILE, QUANT_INFO_FILE
from nndct_shared.quant_mode import RunMode, require_mode

from ..distributed import current_collective, merge_calibration, skips_writing
from ..optim.bias_correction import BIAS_CORR_FILE
from ..optim.ptq_steps import PostTrainingSteps
from ..parse import capture_model
from ..quantization.runtime import InputGuard, QuantRuntime
from .codegen import class_name_for, generate_source, load_source, state_dict_of, write_source

__all__ = ["TorchQuantizer", "QUANT_INFO_FILE", "FLOAT_QUANT_INFO_FILE"]


def _as_tuple(input_args: Any) -> tuple[Any, ...]:
    if isinstance(input_args, torch.Tensor):
        return (input_args,)
    if isinstance(input_args, (list, tuple)):
        return tuple(input_args)
    return (input_args,)


class TorchQuantizer(SessionViews):
    """The object `torch_quantizer` returns for `lstm=False` (the reference's methods)."""

    def __init__(self, quant_mode: RunMode | str, module: nn.Module, input_args: Any, output_dir: str,
                 bitwidth: int = 8, device: torch.device = torch.device("cpu"),
                 quant_config_file: str | None = None, target: str | None = None,
                 mix_bit: bool = False, *, pinned: Snapshot | StagedView | None = None,
                 unit: ExportUnit | None = None) -> None:
        """`pinned` and `unit` are for flows built on this one (QAT): test mode reads its
        calibration result from `pinned` (a version of output_dir, default: the one current
        then) and, with `unit` (an export unit into output_dir that the caller commits), from
        what that unit stages, and the generated `<Model>.py` is staged in `unit` instead of
        being committed on its own."""
        if input_args is None:
            raise error("CNN_NO_INPUT_ARGS", module=type(module).__name__)
        self.quant_mode = RunMode(quant_mode)
        self.output_dir = checked_output_dir(output_dir)
        self.device = device
        self.target = target
        config = load_session_config(quant_config_file, bitwidth, mix_bit)
        inputs = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in _as_tuple(input_args))
        float_model = copy.deepcopy(module).to(device).eval()
        captured = capture_model(float_model, inputs, convert_relu6_to_relu=config.convert_relu6_to_relu,
                                 convert_silu_to_hswish=config.convert_silu_to_hswish)
        self._unit = unit
        if unit is not None and pinned is None:
            pinned = unit.view()
        self.session = CnnQuantSession(captured, config, self.quant_mode, self.output_dir, target,
                                       config_file=quant_config_file, pinned=pinned)
        self.post_training = PostTrainingSteps(config, self.quant_mode)
        self.post_training.equalize(self.session)
        self.runtime = QuantRuntime(self.settings, self.quant_mode)
        if self.quant_mode == RunMode.TEST:  # checked before the first file is written
            self.runtime.load(self.session.read_fix_positions(companions=[BIAS_CORR_FILE]))
        self._model = self._build_model()
        self.post_training.attach(self._model)
        if self.quant_mode == RunMode.TEST:
            self.post_training.load(self)
        self._unit = None  # committed by its owner from here on

    # --- construction -----------------------------------------------------------------------

    def _build_model(self) -> nn.Module:
        name = class_name_for(self.graph.name)  # also the file name: stays in output_dir
        source, order = generate_source(self.graph, name, self.captured.traced_names)
        if self._unit is not None:
            path = self._unit.write_bytes(self._unit.root / f"{name}.py", source.encode("utf-8"))
        else:
            path = write_source(write_dir(current_collective(), self.output_dir), name, source)
        note(f"=>Quantizable module is generated: '{path}'")
        model = load_source(source, name, path)()
        model.load_state_dict(state_dict_of(order), strict=True)
        for i, node in enumerate(order):
            sub = getattr(model, f"module_{i}")
            sub.node_name = node.name
            sub.param_names = {role: t.name for role, t in node.params.items()}
            sub.quant_runtime = self.runtime
        inputs = [(n.name, self.graph.tensor(n.outputs[0]).shape) for n in order if n.op_type == "input"]
        model.register_forward_pre_hook(
            InputGuard(inputs, on_nonfinite=self.runtime.skip_batch if self.quant_mode == RunMode.CALIB else None))
        model.register_forward_pre_hook(self.runtime.on_forward)
        return model.to(self.device).eval()

    @property
    def quant_model(self) -> nn.Module:
        """The converted model (`<Model>.py`), quantized as the mode says."""
        return self._model

    # --- calibration result ---------------------------------------------------------------

    def export_quant_config(self) -> Path | None:
        """Write quant_info.json (param, output and input sections) to output_dir. Under
        torch.distributed every rank calls it: the ranks' statistics are merged (every rank then
        has the same fix positions) and only rank 0 writes (the others return None)."""
        require_mode(self.quant_mode, RunMode.CALIB, "export_quant_config()")
        merge_calibration(self)
        if self.runtime.forwards == 0:
            raise error("NO_CALIBRATION", action="export_quant_config()")
        extra_files = self.post_training.before_export(self)
        fix_pos = self.runtime.calibrated()
        if skips_writing("export_quant_config()"):
            self.session.quant_info(fix_pos)  # the writer's checks, on every rank
            return None
        return self.session.export_quant_config(fix_pos, extra_files, owns=[BIAS_CORR_FILE],
                                                fast_finetuned=self.post_training.finetuned,
                                                bias_corrected=BIAS_CORR_FILE in extra_files)

    # --- exports --------------------------------------------------------------------------

    def _require_test_forward(self, action: str) -> None:
        require_mode(self.quant_mode, RunMode.TEST, action)
        if self.runtime.forwards == 0 or self.runtime.last_inputs is None:
            raise error("NO_FORWARD", action=action)

    def export_graph(self) -> Any:
        """The graph the exporters read: quantized params, fix attrs, shapes of the last forward."""
        shapes = {name: tuple(t.shape) for name, t in self.runtime.last_outputs.items()}
        return self.session.export_graph(self.runtime.fix_pos, shapes)

    def export_xmodel(self, output_dir: str = "quantize_result", deploy_check: bool = False) -> Path | None:
        """`<output_dir>/<Model>_int.xmodel` (+ deploy_check_data_int/ with deploy_check=True);
        None, with the XMODEL_DEVICE warning, for a config file whose target_device is not a DPU
        (`CnnQuantSession.xmodel_wanted`)."""
        return self.export_xmodel_with(output_dir, deploy_check)

    def export_xmodel_with(self, output_dir: str = "quantize_result", deploy_check: bool = False,
                           extra_files: dict[str, bytes] | None = None) -> Path | None:
        """`export_xmodel`, with `extra_files` (name relative to output_dir -> bytes) committed
        in the same unit as the xmodel and its dumps (QAT: the deployable model's files)."""
        if self.quant_mode == RunMode.TEST and skips_writing("export_xmodel()"):  # torch.distributed: rank 0
            return None
        self._require_test_forward("export_xmodel()")
        if not self.session.xmodel_wanted():
            return None
        if self.runtime.last_batch_size != 1:
            raise error("XMODEL_BATCHSIZE", batch_size=self.runtime.last_batch_size)
        # xmodel and dumps are built first and swapped in together: a failure keeps the old ones
        values = self.runtime.quantized_values() if deploy_check else None
        return self.session.export_xmodel(self.export_graph(), values, output_dir, extra_files)

    def export_onnx_model(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path | None:
        """`<output_dir>/<Model>_int.onnx` with QuantizeLinear/DequantizeLinear pairs."""
        if self.quant_mode == RunMode.TEST and skips_writing("export_onnx_model()"):
            return None
        self._require_test_forward("export_onnx_model()")
        path = self.session.export_onnx(self.export_graph(), output_dir)
        if verbose:
            note(f"=>Exported ONNX model '{path}'")
        return path

    def export_torch_script(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path | None:
        """`<output_dir>/<Model>_int.pt`: quant_model traced with its fix ops (pure torch)."""
        if self.quant_mode == RunMode.TEST and skips_writing("export_torch_script()"):
            return None
        self._require_test_forward("export_torch_script()")
        from nndct_shared.cnn_export import export_file_name

        from .torchscript import trace_quant_model

        data = trace_quant_model(self._model, self.runtime)  # before any file is touched
        path = self.session.write_export(output_dir, export_file_name(self.graph.name, ".pt"), data)
        if verbose:
            note(f"=>Exported TorchScript model '{path}'")
        return path

    def export_quant_model(self, output_dir: str | None = None) -> Path | None:
        """`<output_dir>/<Model>.pth`: the converted model's parameters as quantized (the
        tutorial's call; `qproc/quant_params.py`)."""
        from .quant_params import write_quant_params

        return write_quant_params(self, output_dir)

    def report(self, inputs, output_dir: str | None = None, eval_fn=None, **options):
        """Write quant_report.html / .json and the suggested config (pass it back as
        quant_config_file) for `inputs` after calibration; see `pytorch_nndct.report`."""
        from ..report import cnn_report

        return cnn_report(self, inputs, output_dir, eval_fn, **options)

    # --- reference methods this flow does not have -----------------------------------------

    def fast_finetune(self, run_fn, run_args):
        """AdaQuant (pytorch_nndct.optim.fast_finetune): calibrate with `run_fn(*run_args)`,
        finetune each layer, re-calibrate, save output_dir/param.pth (calib mode only)."""
        from ..optim.fast_finetune import fast_finetune

        return fast_finetune(self, run_fn, run_args)

    def load_ft_param(self):
        """Load output_dir/param.pth written by fast_finetune() (FAST_FINETUNE if missing)."""
        from ..optim.fast_finetune import load_ft_param

        return load_ft_param(self)

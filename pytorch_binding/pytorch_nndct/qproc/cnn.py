"""`torch_quantizer(..., lstm=False)`: the CNN flow (MLPs, 1-D/2-D CNNs, residual nets).

The reference flow: the float model is captured (torch.fx) into the neutral graph, written as
`<Model>.py` to output_dir and loaded back as `quant_model`. In calib mode, forwarding
`quant_model` calibrates every tensor the fix plan quantizes and `export_quant_config()` writes
quant_info.json (with bias_corr.pth when bias correction is on; cross-layer equalization runs on
the captured graph in both modes, see `optim/ptq_steps.py`); in test mode quant_info.json is read back, the model runs fake-quantized, and
the exports (xmodel with deploy-check dumps, ONNX, TorchScript) are written from one forward.

Float-scale tensors (`scale_type: "float"` in the config) are omitted from quant_info.json,
which keeps the reference's power-of-two format; their scale and zero point go to
quant_info_float.json (`nndct_shared.quant_info_float`), written in the same atomic batch and
only when the model has such tensors. Test mode reads both strictly.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.cnn import plan_fixes
from nndct_shared.cnn.deploy_target import warn_narrow_activations, xmodel_wanted
from nndct_shared.cnn.float_result import float_entries, float_entry_names, read_float_qparams
from nndct_shared.cnn.keep_float import keep_layers_in_float
from nndct_shared.config.api_config import quantizer_config
from nndct_shared.config.report import report_config
from nndct_shared.messages import error, note
from nndct_shared.output_dir import staged_export
from nndct_shared.quant_info import QuantInfo, check_against, read_quant_info, to_json_text
from nndct_shared.quant_info_float import (
    FLOAT_QUANT_INFO_FILE,
    FloatEntry,
    FloatQuantInfo,
    check_float_against,
    read_float_quant_info,
    to_float_json_text,
)

from ..optim.ptq_steps import PostTrainingSteps
from ..parse import capture_model
from ..quantization.runtime import InputGuard, QuantRuntime
from ..quantization.settings import resolve_settings
from .codegen import class_name_for, generate_source, load_generated, state_dict_of, write_source
from .cnn_export import export_graph
from .hardware_aware import apply_target

__all__ = ["TorchQuantizer", "QUANT_INFO_FILE", "FLOAT_QUANT_INFO_FILE"]

QUANT_INFO_FILE = "quant_info.json"


def _as_tuple(input_args: Any) -> tuple[Any, ...]:
    if isinstance(input_args, torch.Tensor):
        return (input_args,)
    if isinstance(input_args, (list, tuple)):
        return tuple(input_args)
    return (input_args,)


def _channel_names(name: str, count: int) -> list[str]:
    return [f"{name}[{c}]" for c in range(count)]


class TorchQuantizer:
    """The object `torch_quantizer` returns for `lstm=False` (the reference's methods)."""

    def __init__(self, quant_mode: str, module: nn.Module, input_args: Any, output_dir: str,
                 bitwidth: int = 8, device: torch.device = torch.device("cpu"),
                 quant_config_file: str | None = None, target: str | None = None,
                 mix_bit: bool = False) -> None:
        if input_args is None:
            raise error("CNN_NO_INPUT_ARGS", module=type(module).__name__)
        self.quant_mode = quant_mode
        self.output_dir = Path(output_dir)
        self.device = device
        self.target = target
        self.config = quantizer_config(quant_config_file, bitwidth, mix_bit)
        self.config_file = quant_config_file
        inputs = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in _as_tuple(input_args))
        float_model = copy.deepcopy(module).to(device).eval()
        self.captured = capture_model(float_model, inputs,
                                      convert_relu6_to_relu=self.config.convert_relu6_to_relu,
                                      convert_silu_to_hswish=self.config.convert_silu_to_hswish)
        graph = self.captured.graph
        report_config(self.config, self.captured.layer_types)
        self.captured.quantized, self.captured.quant_inputs, kept_outputs = keep_layers_in_float(
            graph, self.captured.quantized, self.captured.quant_inputs, self.config)
        self.plan = plan_fixes(graph, self.captured.quantized, self.captured.quant_inputs, kept_outputs)
        self.settings = resolve_settings(self.plan, self.config, self.captured.layer_types,
                                         {n.name: n.op_type for n in graph})
        self.plan, self.settings = apply_target(target, self.captured, self.config, self.plan, self.settings)
        # CLE after the plan (which depends on the graph's structure only): it equalizes pairs of
        # layers whose weights are quantized, so with a target never a DPU layer with a CPU one.
        self.post_training = PostTrainingSteps(self.config, quant_mode)
        self.post_training.equalize(graph, {t.node for name, t in self.plan.params.items() if name in self.settings})
        self.runtime = QuantRuntime(self.settings, quant_mode)
        if quant_mode == "test":  # checked before the first file is written
            self.runtime.load(self._read_fix_positions())
        self._model = self._build_model()
        self.post_training.attach(self._model)
        if quant_mode == "test":
            self.post_training.load(self)

    # --- construction -----------------------------------------------------------------------

    def _build_model(self) -> nn.Module:
        name = class_name_for(self.captured.graph.name)  # also the file name: stays in output_dir
        source, order = generate_source(self.captured.graph, name)
        path = write_source(self.output_dir, name, source)
        note(f"=>Quantizable module is generated: '{path}'")
        model = load_generated(path, name)()
        model.load_state_dict(state_dict_of(order), strict=True)
        for i, node in enumerate(order):
            sub = getattr(model, f"module_{i}")
            sub.node_name = node.name
            sub.param_names = {role: t.name for role, t in node.params.items()}
            sub.quant_runtime = self.runtime
        inputs = [(n.name, self.captured.graph.tensor(n.outputs[0]).shape) for n in order if n.op_type == "input"]
        model.register_forward_pre_hook(
            InputGuard(inputs, on_nonfinite=self.runtime.skip_batch if self.quant_mode == "calib" else None))
        model.register_forward_pre_hook(self.runtime.on_forward)
        return model.to(self.device).eval()

    @property
    def quant_model(self) -> nn.Module:
        """The converted model (`<Model>.py`), quantized as the mode says."""
        return self._model

    @property
    def graph(self):
        """The captured float graph (neutral IR; params float, BatchNorm folded)."""
        return self.captured.graph

    # --- calibration result ---------------------------------------------------------------

    def _sections(self, float_scale: bool = False) -> tuple[list[str], list[str]]:
        """Power-of-two tensors (quant_info.json), or float-scale ones with float_scale=True."""
        def wanted(n: str) -> bool:
            return n in self.settings and self.settings[n].is_float == float_scale
        params = [n for n in self.plan.params if wanted(n)]
        outputs = [n for n in self.plan.outputs if wanted(n)]
        return params, outputs

    def _float_entries(self, names: list[str], fix_pos: dict[str, Any]) -> dict[str, FloatEntry]:
        return float_entries(names, self.settings, fix_pos)

    def _entries(self, names: list[str], fix_pos: dict[str, Any]) -> dict[str, tuple[int, Any]]:
        entries: dict[str, tuple[int, Any]] = {}
        for name in names:
            bw, fp = self.settings[name].bit_width, fix_pos.get(name)
            if isinstance(fp, tuple):
                for key, value in zip(_channel_names(name, len(fp)), fp):
                    entries[key] = (bw, int(value))
            else:
                entries[name] = (bw, None if fp is None else int(fp))
        return entries

    def export_quant_config(self) -> Path:
        """Write quant_info.json (param, output and input sections) to output_dir."""
        if self.quant_mode != "calib":
            raise error("EXPORT_MODE", action="export_quant_config()", required="calib", mode=self.quant_mode)
        if self.runtime.forwards == 0:
            raise error("NO_CALIBRATION", action="export_quant_config()")
        extra_files = self.post_training.before_export(self)
        fix_pos = self.runtime.calibrated()
        params, outputs = self._sections()
        info = QuantInfo(param=self._entries(params, fix_pos), output=self._entries(outputs, fix_pos))
        float_params, float_outputs = self._sections(float_scale=True)
        float_text = None
        if float_params or float_outputs:
            float_text = to_float_json_text(FloatQuantInfo(param=self._float_entries(float_params, fix_pos),
                                                           output=self._float_entries(float_outputs, fix_pos)))
        # quant_info.json, quant_info_float.json and bias_corr.pth: all or none
        with staged_export(self.output_dir) as batch:
            path = batch.write_bytes(self.output_dir / QUANT_INFO_FILE, to_json_text(info).encode("utf-8"))
            if float_text is not None:
                batch.write_bytes(self.output_dir / FLOAT_QUANT_INFO_FILE, float_text.encode("utf-8"))
            for name, data in extra_files.items():
                batch.write_bytes(self.output_dir / name, data)
        note(f"=>Exported quantization steps to '{path}'")
        return path

    def _read_fix_positions(self) -> dict[str, Any]:
        path = self.output_dir / QUANT_INFO_FILE
        if not path.is_file():
            raise error("NO_CALIB_RESULT", path=str(path))
        info = read_quant_info(path)
        params, outputs = self._sections()
        expected: dict[str, list[str]] = {"param": [], "output": []}
        for section, names in (("param", params), ("output", outputs)):
            for name in names:
                s = self.settings[name]
                if s.axis is not None:
                    count = self._channel_count(name, s.axis)
                    expected[section] += _channel_names(name, count)
                else:
                    expected[section].append(name)
        check_against(info, expected["param"], expected["output"], [])
        fix_pos: dict[str, Any] = {}
        changed: list[str] = []  # bit widths that differ from calibration (another config)
        for section, names in (("param", params), ("output", outputs)):
            table = info.param if section == "param" else info.output
            for name in names:
                s = self.settings[name]
                if s.axis is not None:
                    keys = _channel_names(name, self._channel_count(name, s.axis))
                    values = [table[k][1] for k in keys]
                    fix_pos[name] = None if None in values else tuple(values)
                else:
                    keys = [name]
                    fix_pos[name] = table[name][1]
                recorded = sorted({table[k][0] for k in keys})
                if recorded != [s.bit_width]:
                    changed.append(f"bit width of '{name}' ({s.bit_width} now, "
                                   f"{'/'.join(map(str, recorded))} at calibration)")
        fix_pos.update(self._read_float_qparams(changed))
        if changed:
            more = f", ... ({len(changed) - 3} more)" if len(changed) > 3 else ""
            raise error("QUANT_CONFIG_MISMATCH", current="this quantizer's bitwidth / quant_config_file",
                        recorded=f"recorded in '{path}'", differences=", ".join(changed[:3]) + more)
        return fix_pos

    def _read_float_qparams(self, changed: list[str]) -> dict[str, Any]:
        """Scale and zero point of the float-scale tensors from quant_info_float.json (strict);
        grid differences from the current settings are appended to `changed`."""
        params, outputs = self._sections(float_scale=True)
        if not params and not outputs:
            return {}
        path = self.output_dir / FLOAT_QUANT_INFO_FILE
        if not path.is_file():
            raise error("NO_CALIB_RESULT", path=str(path))
        info = read_float_quant_info(path)
        check_float_against(info, float_entry_names(params, self.settings, self._channel_count),
                            float_entry_names(outputs, self.settings, self._channel_count))
        return read_float_qparams(info, params, outputs, self.settings, self._channel_count, changed)

    def _channel_count(self, param_name: str, axis: int) -> int:
        for node in self.captured.graph:
            for tensor in node.params.values():
                if tensor.name == param_name:
                    return int(tensor.shape[axis])
        raise KeyError(param_name)

    # --- exports --------------------------------------------------------------------------

    def _require_test_forward(self, action: str) -> None:
        if self.quant_mode != "test":
            raise error("EXPORT_MODE", action=action, required="test", mode=self.quant_mode)
        if self.runtime.forwards == 0 or self.runtime.last_inputs is None:
            raise error("NO_FORWARD", action=action)

    def export_graph(self) -> Any:
        """The graph the exporters read: quantized params, fix attrs, shapes of the last forward."""
        shapes = {name: tuple(t.shape) for name, t in self.runtime.last_outputs.items()}
        return export_graph(self.captured.graph, self.settings, self.runtime.fix_pos, shapes)

    def export_xmodel(self, output_dir: str = "quantize_result", deploy_check: bool = False) -> Path | None:
        """`<output_dir>/<Model>_int.xmodel` (+ deploy_check_data_int/ with deploy_check=True);
        None, with the XMODEL_DEVICE warning, for a config file whose target_device is not a DPU."""
        self._require_test_forward("export_xmodel()")
        if not xmodel_wanted(self.config.target_device if self.config_file else None, self.target):
            return None
        warn_narrow_activations(self.settings)
        if self.runtime.last_batch_size != 1:
            raise error("XMODEL_BATCHSIZE", batch_size=self.runtime.last_batch_size)
        from nndct_shared.cnn_export.bundle import write_xmodel_bundle

        graph = self.export_graph()
        # xmodel and dumps are built first and swapped in together: a failure keeps the old ones
        values = self.runtime.quantized_values() if deploy_check else None
        path, dump = write_xmodel_bundle(graph, values, output_dir)
        note(f"=>Successfully converted '{graph.name}' to xmodel '{path}'")
        if dump is not None:
            note(f"=>Deploy-check data written to '{dump}'")
        return path

    def export_onnx_model(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path:
        """`<output_dir>/<Model>_int.onnx` with QuantizeLinear/DequantizeLinear pairs."""
        self._require_test_forward("export_onnx_model()")
        from nndct_shared.cnn_export import build_onnx_model, export_file_name

        graph = self.export_graph()
        data = build_onnx_model(graph).SerializeToString()  # before any file is touched
        with staged_export(output_dir) as batch:
            path = batch.write_bytes(Path(output_dir) / export_file_name(graph.name, ".onnx"), data)
        if verbose:
            note(f"=>Exported ONNX model '{path}'")
        return path

    def export_torch_script(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path:
        """`<output_dir>/<Model>_int.pt`: quant_model traced with its fix ops (pure torch)."""
        self._require_test_forward("export_torch_script()")
        from nndct_shared.cnn_export import export_file_name

        from .torchscript import trace_quant_model

        data = trace_quant_model(self._model, self.runtime)  # before any file is touched
        with staged_export(output_dir) as batch:
            path = batch.write_bytes(Path(output_dir) / export_file_name(self.captured.graph.name, ".pt"), data)
        if verbose:
            note(f"=>Exported TorchScript model '{path}'")
        return path

    def export_quant_model(self, output_dir: str | None = None) -> Path:
        """`<output_dir>/<Model>.pth`: the converted model's parameters as quantized (the
        tutorial's call; `qproc/quant_params.py`)."""
        from .quant_params import write_quant_params

        return write_quant_params(self, output_dir)

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

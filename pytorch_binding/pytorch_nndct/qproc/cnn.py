"""`torch_quantizer(..., lstm=False)`: the CNN flow (MLPs, 1-D/2-D CNNs, residual nets).

The reference flow: the float model is captured (torch.fx) into the neutral graph, written as
`<Model>.py` to output_dir and loaded back as `quant_model`. In calib mode, forwarding
`quant_model` calibrates every tensor the fix plan quantizes and `export_quant_config()` writes
quant_info.json; in test mode quant_info.json is read back, the model runs fake-quantized, and
the exports (xmodel with deploy-check dumps, ONNX, TorchScript) are written from one forward.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.cnn import plan_fixes
from nndct_shared.config import QuantConfig, default_config, load_config
from nndct_shared.messages import error, note
from nndct_shared.quant_info import QuantInfo, check_against, read_quant_info, write_quant_info

from ..optim.ptq_steps import PostTrainingSteps
from ..parse import capture_model
from ..quantization.runtime import QuantRuntime
from ..quantization.settings import check_supported, resolve_settings
from .codegen import generate_source, load_generated, state_dict_of, write_source
from .cnn_export import export_graph

__all__ = ["TorchQuantizer", "QUANT_INFO_FILE"]

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
                 quant_config_file: str | None = None, target: str | None = None) -> None:
        if input_args is None:
            raise error("CNN_NO_INPUT_ARGS", module=type(module).__name__)
        self.quant_mode = quant_mode
        self.output_dir = Path(output_dir)
        self.device = device
        self.target = target
        if target is not None:
            note(f"target '{target}' is recorded, but hardware-aware partitioning (the Inspector) is not "
                 "implemented: every captured op is quantized as the config says.")
        self.config = self._load_config(quant_config_file, bitwidth)
        check_supported(self.config)
        inputs = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in _as_tuple(input_args))
        float_model = copy.deepcopy(module).to(device).eval()
        self.captured = capture_model(float_model, inputs,
                                      convert_relu6_to_relu=self.config.convert_relu6_to_relu,
                                      convert_silu_to_hswish=self.config.convert_silu_to_hswish)
        graph = self.captured.graph
        self.post_training = PostTrainingSteps(self.config, quant_mode)
        self.post_training.equalize(graph, self.captured.quantized)
        self.plan = plan_fixes(graph, self.captured.quantized, self.captured.quant_inputs)
        self.settings = resolve_settings(self.plan, self.config, self.captured.layer_types,
                                         {n.name: n.op_type for n in graph})
        self.runtime = QuantRuntime(self.settings, quant_mode)
        self._model = self._build_model()
        self.post_training.attach(self._model)
        if quant_mode == "test":
            self.runtime.load(self._read_fix_positions())
            self.post_training.load(self)

    # --- construction -----------------------------------------------------------------------

    @staticmethod
    def _load_config(path: str | None, bitwidth: int) -> QuantConfig:
        if path is not None:
            config = load_config(path)
            note(f"Quantization config loaded from '{path}'.")
            return config
        target = "DPU" if bitwidth == 8 else "CPU"
        return default_config(bitwidth, target)

    def _build_model(self) -> nn.Module:
        name = self.captured.graph.name
        source, order = generate_source(self.captured.graph, name)
        path = write_source(self.output_dir / f"{name}.py", source)
        note(f"=>Quantizable module is generated: '{path}'")
        model = load_generated(path, name)()
        model.load_state_dict(state_dict_of(order), strict=True)
        for i, node in enumerate(order):
            sub = getattr(model, f"module_{i}")
            sub.node_name = node.name
            sub.param_names = {role: t.name for role, t in node.params.items()}
            sub.quant_runtime = self.runtime
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

    def _sections(self) -> tuple[list[str], list[str]]:
        params = [n for n in self.plan.params if n in self.settings]
        outputs = [n for n in self.plan.outputs if n in self.settings]
        return params, outputs

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
        self.post_training.before_export(self)
        fix_pos = self.runtime.calibrated()
        params, outputs = self._sections()
        info = QuantInfo(param=self._entries(params, fix_pos), output=self._entries(outputs, fix_pos))
        path = write_quant_info(info, self.output_dir / QUANT_INFO_FILE)
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
        for section, names in (("param", params), ("output", outputs)):
            table = info.param if section == "param" else info.output
            for name in names:
                s = self.settings[name]
                if s.axis is not None:
                    keys = _channel_names(name, self._channel_count(name, s.axis))
                    values = [table[k][1] for k in keys]
                    fix_pos[name] = None if None in values else tuple(values)
                else:
                    fix_pos[name] = table[name][1]
        return fix_pos

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

    def export_xmodel(self, output_dir: str = "quantize_result", deploy_check: bool = False) -> Path:
        """`<output_dir>/<Model>_int.xmodel` (+ deploy_check_data_int/ with deploy_check=True)."""
        self._require_test_forward("export_xmodel()")
        if self.runtime.last_batch_size != 1:
            raise error("XMODEL_BATCHSIZE", batch_size=self.runtime.last_batch_size)
        from nndct_shared.cnn_export.xmodel import write_cnn_xmodel

        graph = self.export_graph()
        out_dir = Path(output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = write_cnn_xmodel(graph, out_dir / f"{graph.name}_int.xmodel")
        note(f"=>Successfully converted '{graph.name}' to xmodel '{path}'")
        if deploy_check:
            from nndct_shared.cnn_export.deploy_dump import write_cnn_deploy_check

            dump = write_cnn_deploy_check(graph, self.runtime.quantized_values(), out_dir)
            note(f"=>Deploy-check data written to '{dump}'")
        return path

    def export_onnx_model(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path:
        """`<output_dir>/<Model>_int.onnx` with QuantizeLinear/DequantizeLinear pairs."""
        self._require_test_forward("export_onnx_model()")
        from nndct_shared.cnn_export.onnx_qdq import write_onnx

        graph = self.export_graph()
        out_dir = Path(output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = write_onnx(graph, out_dir / f"{graph.name}_int.onnx")
        if verbose:
            note(f"=>Exported ONNX model '{path}'")
        return path

    def export_torch_script(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path:
        """`<output_dir>/<Model>_int.pt`: quant_model traced with its fix ops (pure torch)."""
        self._require_test_forward("export_torch_script()")
        from .torchscript import trace_quant_model

        name = self.captured.graph.name
        out_dir = Path(output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = trace_quant_model(self._model, self.runtime, out_dir / f"{name}_int.pt")
        if verbose:
            note(f"=>Exported TorchScript model '{path}'")
        return path

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

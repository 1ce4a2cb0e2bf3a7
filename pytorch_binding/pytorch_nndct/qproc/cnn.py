"""`torch_quantizer(..., lstm=False)`: the CNN flow (MLPs, 1-D/2-D CNNs, residual nets).

The reference flow: the float model is captured (torch.fx) into the neutral graph, written as
`<Model>.py` to output_dir and loaded back as `quant_model`. In calib mode, forwarding
`quant_model` calibrates every tensor the fix plan quantizes and `export_quant_config()` writes
quant_info.json (with bias_corr.pth when bias correction is on; cross-layer equalization runs on
the captured graph in both modes, see `optim/ptq_steps.py`); in test mode quant_info.json is read back, the model runs fake-quantized, and
the exports (xmodel with deploy-check dumps, ONNX, TorchScript) are written from one forward.

Float-scale tensors (`scale_type: "float"` in the config) are omitted from quant_info.json,
which keeps the reference's power-of-two format; their scale and zero point go to
quant_info_float.json (`nndct_shared.quant_info_float`), written in the same export unit and
only when the model has such tensors. Test mode reads both strictly, from one pinned version of
output_dir (`nndct_shared.export_commit.snapshot`). Every export is one unit committed at once
(`nndct_shared.output_dir.staged_export`); the generated `<Model>.py` is written as one and the
model is built from its source in memory, never re-imported from output_dir.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.cnn import plan_fixes
from nndct_shared.config import QuantConfig, default_config, load_config
from nndct_shared.messages import error, note, warn
from nndct_shared.export_commit import snapshot
from nndct_shared.output_dir import checked_output_dir, staged_export
from nndct_shared.calibration import FloatQParams
from nndct_shared.quant_info import QuantInfo, check_against, read_quant_info, to_json_text
from nndct_shared.quant_info_float import (
    FLOAT_QUANT_INFO_FILE,
    FloatEntry,
    FloatQuantInfo,
    check_float_against,
    read_float_quant_info,
    to_float_json_text,
)

from ..optim.bias_correction import BIAS_CORR_FILE
from ..optim.ptq_steps import PostTrainingSteps
from ..parse import capture_model
from ..quantization.runtime import InputGuard, QuantRuntime
from ..quantization.settings import check_supported, resolve_settings
from .codegen import class_name_for, generate_source, load_source, state_dict_of, write_source
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


def _warn_bitwidth_conflict(config: QuantConfig, bitwidth: int) -> None:
    """BITWIDTH_MISMATCH when the config file's bit widths differ from the `bitwidth` argument
    (the file wins, as in the reference)."""
    kinds: dict[int, list[str]] = {}
    for kind in config.quantizable_data_type:
        width = config.for_tensor(kind).bit_width
        if width != bitwidth:
            kinds.setdefault(width, []).append(kind.value)
    for width, names in kinds.items():
        warn("BITWIDTH_MISMATCH", tensor=f"{', '.join(names)} tensors", config_bit_width=width,
             api_bit_width=bitwidth)


class TorchQuantizer:
    """The object `torch_quantizer` returns for `lstm=False` (the reference's methods)."""

    def __init__(self, quant_mode: str, module: nn.Module, input_args: Any, output_dir: str,
                 bitwidth: int = 8, device: torch.device = torch.device("cpu"),
                 quant_config_file: str | None = None, target: str | None = None) -> None:
        if input_args is None:
            raise error("CNN_NO_INPUT_ARGS", module=type(module).__name__)
        self.quant_mode = quant_mode
        self.output_dir = checked_output_dir(output_dir)
        self.device = device
        self.target = target
        self.config = self._load_config(quant_config_file, bitwidth)
        check_supported(self.config)
        inputs = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in _as_tuple(input_args))
        float_model = copy.deepcopy(module).to(device).eval()
        self.captured = capture_model(float_model, inputs,
                                      convert_relu6_to_relu=self.config.convert_relu6_to_relu,
                                      convert_silu_to_hswish=self.config.convert_silu_to_hswish)
        graph = self.captured.graph
        self.plan = plan_fixes(graph, self.captured.quantized, self.captured.quant_inputs)
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

    @staticmethod
    def _load_config(path: str | None, bitwidth: int) -> QuantConfig:
        if path is not None:
            config = load_config(path)
            note(f"Quantization config loaded from '{path}'.")
            _warn_bitwidth_conflict(config, bitwidth)
            return config
        target = "DPU" if bitwidth == 8 else "CPU"
        return default_config(bitwidth, target)

    def _build_model(self) -> nn.Module:
        name = class_name_for(self.captured.graph.name)  # also the file name: stays in output_dir
        source, order = generate_source(self.captured.graph, name)
        path = write_source(self.output_dir, name, source)
        note(f"=>Quantizable module is generated: '{path}'")
        model = load_source(source, name, path)()
        model.load_state_dict(state_dict_of(order), strict=True)
        for i, node in enumerate(order):
            sub = getattr(model, f"module_{i}")
            sub.node_name = node.name
            sub.param_names = {role: t.name for role, t in node.params.items()}
            sub.quant_runtime = self.runtime
        inputs = [(n.name, self.captured.graph.tensor(n.outputs[0]).shape) for n in order if n.op_type == "input"]
        model.register_forward_pre_hook(InputGuard(inputs, finite=self.quant_mode == "calib"))
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
        entries: dict[str, FloatEntry] = {}
        for name in names:
            s, qp = self.settings[name], fix_pos.get(name)
            if not isinstance(qp, FloatQParams):
                raise error("PARAM_NOT_QUANTIZED", name=name, path=FLOAT_QUANT_INFO_FILE)
            entries[name] = FloatEntry(s.bit_width, s.signed, s.narrow_range, s.symmetric,
                                       float(qp.scale), int(qp.zero_point))
        return entries

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
        # quant_info.json, quant_info_float.json and bias_corr.pth: one unit (a file this
        # calibration does not write is removed with the others' old versions)
        with staged_export(self.output_dir, owns=[FLOAT_QUANT_INFO_FILE, BIAS_CORR_FILE]) as batch:
            path = batch.write_bytes(self.output_dir / QUANT_INFO_FILE, to_json_text(info).encode("utf-8"))
            if float_text is not None:
                batch.write_bytes(self.output_dir / FLOAT_QUANT_INFO_FILE, float_text.encode("utf-8"))
            for name, data in extra_files.items():
                batch.write_bytes(self.output_dir / name, data)
        note(f"=>Exported quantization steps to '{path}'")
        return path

    def _read_fix_positions(self) -> dict[str, Any]:
        path = self.output_dir / QUANT_INFO_FILE
        pinned = snapshot(self.output_dir)  # quant_info.json and quant_info_float.json of one export
        if not pinned.path(QUANT_INFO_FILE).exists():
            raise error("NO_CALIB_RESULT", path=str(path))
        info = read_quant_info(pinned.path(QUANT_INFO_FILE), shown_as=path)
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
        fix_pos.update(self._read_float_qparams(changed, pinned.path(FLOAT_QUANT_INFO_FILE)))
        if changed:
            more = f", ... ({len(changed) - 3} more)" if len(changed) > 3 else ""
            raise error("QUANT_CONFIG_MISMATCH", current="this quantizer's bitwidth / quant_config_file",
                        recorded=f"recorded in '{path}'", differences=", ".join(changed[:3]) + more)
        return fix_pos

    def _read_float_qparams(self, changed: list[str], pinned: Path) -> dict[str, FloatQParams]:
        """Scale and zero point of the float-scale tensors from quant_info_float.json (strict,
        read at `pinned`); grid differences from the current settings are appended to `changed`."""
        params, outputs = self._sections(float_scale=True)
        if not params and not outputs:
            return {}
        path = self.output_dir / FLOAT_QUANT_INFO_FILE
        if not pinned.exists():
            raise error("NO_CALIB_RESULT", path=str(path))
        info = read_float_quant_info(pinned, shown_as=path)
        check_float_against(info, params, outputs)
        result: dict[str, FloatQParams] = {}
        for table, names in ((info.param, params), (info.output, outputs)):
            for name in names:
                e, s = table[name], self.settings[name]
                now = (s.bit_width, s.signed, s.narrow_range, s.symmetric)
                then = (e.bit_width, e.signed, e.narrow_range, e.symmetric)
                if now != then:
                    changed.append(f"grid of '{name}' ((bit_width, signed, narrow_range, symmetric) = "
                                   f"{now} now, {then} at calibration)")
                result[name] = FloatQParams(e.scale, e.zero_point)
        return result

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
        with staged_export(output_dir) as unit:
            path = unit.write_bytes(unit.root / export_file_name(graph.name, ".onnx"), data)
        if verbose:
            note(f"=>Exported ONNX model '{path}'")
        return path

    def export_torch_script(self, output_dir: str = "quantize_result", verbose: bool = False) -> Path:
        """`<output_dir>/<Model>_int.pt`: quant_model traced with its fix ops (pure torch)."""
        self._require_test_forward("export_torch_script()")
        from nndct_shared.cnn_export import export_file_name

        from .torchscript import trace_quant_model

        data = trace_quant_model(self._model, self.runtime)  # before any file is touched
        with staged_export(output_dir) as unit:
            path = unit.write_bytes(unit.root / export_file_name(self.captured.graph.name, ".pt"), data)
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

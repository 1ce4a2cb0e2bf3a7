"""The CNN quantization flow shared by every front end: captured graph -> fix plan and settings
-> calibration result (quant_info.json) -> export graphs (xmodel, dumps, ONNX).

The counterpart of `nndct_shared.lstm.session`: a front end captures the user's float model
into a neutral `Graph` (`CapturedModel`), builds and runs its quantized model with the tensors of
its framework, and hands everything else to this session, which is why every front end plans,
names and writes the same things for the same model:

- node names: the capture's nodes are renamed `<Model>::nndct_<op>_<index>`, the reference 3.x
  names (`CapturedModel.apply_nndct_names`), before anything else reads them;
- the config: `load_session_config` (`config.api_config.quantizer_config`: the `bitwidth` /
  `mix_bit` arguments' default config, or a config file whose bit widths win over the arguments
  with BITWIDTH_MISMATCH), reported against the model once it is captured
  (`config.report.report_config`: DPU_ACTIVATION_ROUND, QUANT_CONFIG_LAYER_UNMATCHED);
- the layers the config keeps in float (`keep_float.keep_layers_in_float`:
  keep_first_last_layer_accuracy, keep_add_layer_accuracy), the fix plan (`plan_fixes`), the
  per-tensor settings (`settings.resolve_settings`) and the `target=` adjustments
  (`hardware_aware.apply_target`, which may change LeakyReLU slopes in the captured graph), all
  before anything is written;
- cross-layer equalization of the captured graph on the layers whose weights are quantized
  (`equalize`), and the layers bias correction adjusts (`bias_correction_nodes`);
- quant_info.json / quant_info_float.json through the shared `QuantInfoStore`: the entries of a
  calibration result in the reference's 3.x format (`export_quant_config`: `[[bw, fix]]` per
  entry, per-channel tensors as `<name>[<c>]`, and `fast_finetuned`, `bias_corrected`, `version`,
  `graph_md5` = `graph.fingerprint.graph_md5` of the captured graph) and, in test mode, the fix
  positions read back strictly from a 3.x or an older single-pair file (`calib_result`: traced
  names matched, the graph hash and version checked), with every bit width and float grid
  checked against the current settings (`read_fix_positions`);
- the export graph (`export_graph`): the captured graph with quantized params and fix facts, the
  input of the neutral xmodel / deploy-check / ONNX writers (`export_xmodel`, `export_onnx`;
  `xmodel_wanted`: no xmodel for a config file that targets CPU/GPU, `deploy_target`).

Float-scale tensors (`scale_type: "float"`) are omitted from quant_info.json, which keeps the
reference's power-of-two format; their scale and zero point (one entry per channel for
per-channel weights, `float_result`) go to quant_info_float.json, written in the same export
unit and only when the model has such tensors. So do power-of-two tensors on an asymmetric or
unsigned grid (a power-of-two scale with a zero point, `TensorSettings.is_float`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import QuantConfig
from ..config.api_config import quantizer_config
from ..config.report import report_config
from ..export_commit import Snapshot, StagedView
from ..graph import Graph
from ..graph.fingerprint import graph_md5
from ..graph.ops import get_op
from ..messages import note
from ..output_dir import staged_export
from ..quant_info import QuantInfo, check_against
from ..quant_info_float import FloatEntry, FloatQuantInfo
from ..quant_info_store import FLOAT_QUANT_INFO_FILE, QuantInfoStore, bit_width_changes, check_recorded_config
from ..quant_info_v3 import QuantRecord
from ..quant_mode import RunMode, require_mode
from .calib_result import check_provenance, match_traced_names, refuse_multi_output
from .capture import CapturedModel
from .cle import ClePair, equalize_graph
from .deploy_target import warn_narrow_activations, xmodel_wanted
from .export_graph import export_graph
from .fix_plan import plan_fixes
from .float_ops import keep_float_ops
from .float_result import channel_names, float_entries, float_entry_names, read_float_qparams
from .hardware_aware import apply_target
from .keep_float import keep_layers_in_float
from .settings import resolve_settings

__all__ = ["CnnQuantSession", "channel_names", "load_session_config"]


def load_session_config(path: str | os.PathLike[str] | None, bitwidth: int, mix_bit: bool = False) -> QuantConfig:
    """The quantization config of a CNN quantizer: the file at `path` (its bit widths win over
    `bitwidth` / `mix_bit`, with BITWIDTH_MISMATCH), else the default config of `bitwidth` (DPU
    for 8 bits, CPU otherwise), or with `mix_bit` 16-bit inputs and activations
    (`config.api_config.quantizer_config`)."""
    return quantizer_config(path, bitwidth, mix_bit)


class CnnQuantSession:
    """The neutral state of one CNN quantizer: plan, settings and the files of `output_dir`.

    Built after capture and before the front end's quantized model; everything here is a
    deterministic function of the captured model, the config and the target, so calib and test
    mode derive the same plan and quant_info.json lines up between them."""

    def __init__(self, captured: CapturedModel, config: QuantConfig, mode: RunMode,
                 output_dir: str | os.PathLike[str], target: Any = None,
                 config_file: str | os.PathLike[str] | None = None,
                 pinned: Snapshot | StagedView | None = None) -> None:
        """`config_file`: the user's config file (None: the default config, see `xmodel_wanted`).
        `pinned`: the version of output_dir test mode reads its calibration result from (a
        `snapshot`, or the `view` of an export unit not yet committed); by default the version
        current when `read_fix_positions` runs."""
        self.captured = captured
        self.config = config
        self.config_file = config_file  # None: the default config (see `xmodel_wanted`)
        self.mode = RunMode(mode)
        self.output_dir = Path(output_dir)
        self.target = target
        self.store = QuantInfoStore(self.output_dir, pinned)
        captured.apply_nndct_names()
        graph = captured.graph
        self.float_nodes = keep_float_ops(captured)     # ops with no quantized form (FLOAT_OP)
        report_config(config, captured.layer_types, aliases=captured.traced_names)
        captured.quantized, captured.quant_inputs, kept_outputs = keep_layers_in_float(
            graph, captured.quantized, captured.quant_inputs, config)
        plan = plan_fixes(graph, captured.quantized, captured.quant_inputs, kept_outputs)
        settings = resolve_settings(plan, config, captured.layer_types, {n.name: n.op_type for n in graph},
                                    captured.traced_names)
        self.plan, self.settings = apply_target(target, captured, config, plan, settings, kept_outputs)
        self.graph_md5 = graph_md5(captured.graph)  # before CLE: structure only, as in both modes
        self.cle_pairs: list[ClePair] = []
        self.calib_record: QuantRecord | None = None
        self.calib_data: dict[str, bytes] | None = None
        """Test mode, after `read_fix_positions`: the content of its `companions` (files of the
        calibration result such as bias_corr.pth; a missing one is absent), read from the
        version of output_dir quant_info.json was read from, so that a concurrent export
        cannot pair this quant_info.json with another calibration's files."""

    @property
    def graph(self) -> Graph:
        """The captured float graph (neutral IR; params float, BatchNorm folded)."""
        return self.captured.graph

    # --- post-training steps planned on the graph ---------------------------------------------

    def quantized_weight_nodes(self) -> set[str]:
        """Nodes whose params are quantized in the final plan (so, with a target, DPU nodes)."""
        return {t.node for name, t in self.plan.params.items() if name in self.settings}

    def equalize(self) -> list[ClePair]:
        """Cross-layer equalization of the captured graph (config `include_cle`, the reference's;
        `cle_extensions` adds this project's extensions, see `nndct_shared.cnn.cle`), before the
        quantized model is built, in both modes (it is deterministic, so both get the same
        weights). Only pairs of layers whose weights are quantized in the final plan are
        equalized: with a target never a DPU layer with a CPU one."""
        if self.config.include_cle:
            self.cle_pairs = equalize_graph(self.graph, eligible=self.quantized_weight_nodes(),
                                            extensions=self.config.cle_extensions)
            if self.cle_pairs:
                note(f"=>Cross-layer equalization: {len(self.cle_pairs)} layer pair(s) equalized.")
        return self.cle_pairs

    def bias_correction_nodes(self) -> list[str]:
        """The layers bias correction adjusts (when config `include_bias_corr` is on), in order:
        weighted ops (conv / linear) with a bias whose weight is quantized. A layer that stays
        float has no quantization error of its own to correct, and adding a bias where there is
        none would change the exported graph."""
        return [n.name for n in self.graph.topological_order()
                if get_op(n.op_type).weight_axis is not None and "bias" in n.params
                and "weight" in n.params and n.params["weight"].name in self.settings]

    # --- calibration result -------------------------------------------------------------------

    def sections(self, float_scale: bool = False) -> tuple[list[str], list[str]]:
        """Power-of-two tensors (quant_info.json), or float-scale ones with float_scale=True."""
        def wanted(n: str) -> bool:
            return n in self.settings and self.settings[n].is_float == float_scale
        params = [n for n in self.plan.params if wanted(n)]
        outputs = [n for n in self.plan.outputs if wanted(n)]
        return params, outputs

    def _float_entries(self, names: list[str], fix_pos: Mapping[str, Any]) -> dict[str, FloatEntry]:
        return float_entries(names, self.settings, fix_pos)

    def _entries(self, names: list[str], fix_pos: Mapping[str, Any]) -> dict[str, tuple[int, Any]]:
        entries: dict[str, tuple[int, Any]] = {}
        for name in names:
            bw, fp = self.settings[name].bit_width, fix_pos.get(name)
            if isinstance(fp, tuple):
                for key, value in zip(channel_names(name, len(fp)), fp):
                    entries[key] = (bw, int(value))
            else:
                entries[name] = (bw, None if fp is None else int(fp))
        return entries

    def quant_info(self, fix_pos: Mapping[str, Any]) -> tuple[QuantInfo, FloatQuantInfo | None]:
        """The calibration result of `fix_pos` (the front end's calibrated fix positions and
        float qparams): quant_info.json's tables, and quant_info_float.json's when the model has
        float-scale tensors (None otherwise)."""
        params, outputs = self.sections()
        info = QuantInfo(param=self._entries(params, fix_pos), output=self._entries(outputs, fix_pos))
        float_params, float_outputs = self.sections(float_scale=True)
        float_info = None
        if float_params or float_outputs:
            float_info = FloatQuantInfo(param=self._float_entries(float_params, fix_pos),
                                        output=self._float_entries(float_outputs, fix_pos))
        return info, float_info

    def export_quant_config(self, fix_pos: Mapping[str, Any], extra_files: Mapping[str, bytes], *,
                            fast_finetuned: bool = False, bias_corrected: bool = False,
                            owns: Sequence[str] = ()) -> Path:
        """Calib mode: write quant_info.json (3.x: param, output and input sections and the four
        keys; `fast_finetuned` / `bias_corrected` say whether param.pth / bias_corr.pth come
        with it), with quant_info_float.json and `extra_files` (e.g. bias_corr.pth): one export
        unit, which also owns the files named in `owns` (a file of the unit this calibration does
        not write, such as a stale bias_corr.pth, is removed with it)."""
        require_mode(self.mode, RunMode.CALIB, "export_quant_config()")
        info, float_info = self.quant_info(fix_pos)
        record = QuantRecord(info, fast_finetuned=fast_finetuned, bias_corrected=bias_corrected,
                             graph_md5=self.graph_md5)
        with staged_export(self.output_dir, owns=[FLOAT_QUANT_INFO_FILE, *owns]) as batch:
            path = self.store.stage_record(batch, record, float_info)
            for name, data in extra_files.items():
                batch.write_bytes(self.output_dir / name, data)
        note(f"=>Exported quantization steps to '{path}'")
        return path

    def read_fix_positions(self, companions: Sequence[str] = ()) -> dict[str, Any]:
        """Test mode: every quantized tensor's fix position (a tuple per channel) or float
        qparams, read strictly from the calibration result (3.x or single-pair, see
        `calib_result`; the record is kept as `calib_record`). The files named in `companions`
        are read from the same version of output_dir, right after quant_info.json, before the
        front end commits anything itself (`calib_data`): a pinned version stays on disk until
        two more commits, so a reader that finishes early never pairs files of two exports."""
        params, outputs = self.sections()
        expected: dict[str, list[str]] = {"param": [], "output": []}
        for section, names in (("param", params), ("output", outputs)):
            for name in names:
                s = self.settings[name]
                if s.axis is not None:
                    count = self.channel_count(name, s.axis)
                    expected[section] += channel_names(name, count)
                else:
                    expected[section].append(name)
        store = self.store.pinned()  # quant_info.json, quant_info_float.json, companions of one export
        record = store.load_record()
        refuse_multi_output(record, expected["param"] + expected["output"])
        info = match_traced_names(record, expected["output"], self.captured.traced_names)
        check_against(info, expected["param"], expected["output"], [])
        check_provenance(record, self.graph_md5)
        self.calib_record = record
        self.calib_data = {name: path.read_bytes() for name in companions
                           if (path := store.source(name)).is_file()}
        fix_pos: dict[str, Any] = {}
        recorded: dict[str, list[int]] = {}
        for section, names in (("param", params), ("output", outputs)):
            table = info.param if section == "param" else info.output
            for name in names:
                s = self.settings[name]
                if s.axis is not None:
                    keys = channel_names(name, self.channel_count(name, s.axis))
                    values = [table[k][1] for k in keys]
                    fix_pos[name] = None if None in values else tuple(values)
                else:
                    keys = [name]
                    fix_pos[name] = table[name][1]
                recorded[name] = [table[k][0] for k in keys]
        # bit widths that differ from calibration (another config), then float grids
        changed = bit_width_changes({n: self.settings[n].bit_width for n in (*params, *outputs)}, recorded)
        fix_pos.update(self._read_float_qparams(store, changed))
        check_recorded_config(store.path, changed)
        return fix_pos

    def _read_float_qparams(self, store: QuantInfoStore, changed: list[str]) -> dict[str, Any]:
        """Scale and zero point (a tuple of them per channel) of the float-scale tensors from
        quant_info_float.json (strict); grid differences from the current settings are appended
        to `changed`."""
        params, outputs = self.sections(float_scale=True)
        if not params and not outputs:
            return {}
        info = store.read_float(float_entry_names(params, self.settings, self.channel_count),
                                float_entry_names(outputs, self.settings, self.channel_count))
        return read_float_qparams(info, params, outputs, self.settings, self.channel_count, changed)

    def channel_count(self, param_name: str, axis: int) -> int:
        """Channels of param `param_name` along `axis` (its per-channel entries)."""
        for node in self.graph:
            for tensor in node.params.values():
                if tensor.name == param_name:
                    return int(tensor.shape[axis])
        raise KeyError(param_name)

    # --- exports ------------------------------------------------------------------------------

    def export_graph(self, fix_pos: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]] | None) -> Graph:
        """The graph the exporters read: quantized params, fix attrs, shapes of the last forward."""
        return export_graph(self.graph, self.settings, fix_pos, shapes)

    def xmodel_wanted(self) -> bool:
        """Whether `export_xmodel` writes anything: False, with the XMODEL_DEVICE warning, for a
        config file whose target_device is not a DPU (and no `target=`); True otherwise, with
        XMODEL_NARROW_RANGE naming the narrow-range activations the xmodel cannot express
        (`deploy_target`)."""
        if not xmodel_wanted(self.config.target_device if self.config_file is not None else None, self.target):
            return False
        warn_narrow_activations(self.settings)
        return True

    def export_xmodel(self, graph: Graph, values: Mapping[str, np.ndarray] | None,
                      output_dir: str | os.PathLike[str], extra_files: Mapping[str, bytes] | None = None) -> Path:
        """`<output_dir>/<Model>_int.xmodel` of export graph `graph` and, with `values` (node
        outputs of the exported forward), its deploy-check dumps, all or nothing; `extra_files`
        (name relative to output_dir -> bytes) join the same unit."""
        from ..cnn_export.bundle import write_xmodel_bundle

        path, dump = write_xmodel_bundle(graph, values, output_dir, extra_files)
        note(f"=>Successfully converted '{graph.name}' to xmodel '{path}'")
        if dump is not None:
            note(f"=>Deploy-check data written to '{dump}'")
        return path

    def export_onnx(self, graph: Graph, output_dir: str | os.PathLike[str]) -> Path:
        """`<output_dir>/<Model>_int.onnx` (QDQ) of export graph `graph`, built before any file
        is touched."""
        from ..cnn_export import build_onnx_model, export_file_name

        data = build_onnx_model(graph).SerializeToString()
        return self.write_export(output_dir, export_file_name(graph.name, ".onnx"), data)

    @staticmethod
    def write_export(output_dir: str | os.PathLike[str], file_name: str, data: bytes) -> Path:
        """Write one export file into `output_dir` as one export unit (OUTPUT_DIR on failure)."""
        with staged_export(output_dir) as unit:
            return unit.write_bytes(unit.root / file_name, data)

"""The recurrent flow's `quant_config_file`: bit widths per cell tensor, in the CNN flow's JSON
config format with one small extension (README "Mixed bit widths in the recurrent flow").

Every setting but ``bit_width`` is fixed by the reference RNN quantizer (diffs calibration,
floor for activations, std_round for parameters, power-of-two, symmetric, per tensor); a config
may repeat those settings (the report's suggestion writes them all), and a value that differs
is refused. Widths are resolved per tensor, later rules winning:

1. ``overall_quantize_config.bit_width``: every tensor (it must equal the quantizer's
   ``bitwidth``, the default of a config that leaves it out);
2. ``tensor_quantize_config.<kind>.bit_width`` for the reference's kinds: ``input``
   (``input_0``), ``weights``, ``bias``, ``activation`` (every other node);
3. the extension ``rnn_quantize_config``: a list of entries ``{"module": ..., "layer": ...,
   "direction": ..., "node_class": [...], "bit_width": N}``; ``module`` (an attribute path such
   as ``"encoder.lstm"``, or a graph prefix such as ``"EncoderLstm"``), ``layer`` (int) and
   ``direction`` (``"forward"`` / ``"backward"``) select cells (absent: every cell),
   ``node_class`` selects tensors by class (`widths.NODE_CLASSES`; absent: every tensor);
4. ``layer_quantize_config`` entries selecting ONE tensor by ``layer_name``
   ``"<cell graph>::<node or parameter>"`` (its quant_info.json key), with
   ``quantizable_data_type`` its kind and ``overall_quantize_config.bit_width`` its width: the
   format of the report's suggestion (`report.recurrent_config`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..messages import NndctError, error
from .cell_definition import CellDefinition
from .naming import prefix_from_module_path
from .widths import MAX_BIT_WIDTH, MIN_BIT_WIDTH, NODE_CLASSES, CellWidths, tensor_class, tensor_kind

__all__ = ["RNN_SECTION", "WidthConfig", "flow_settings", "load_width_config", "read_config"]

RNN_SECTION = "rnn_quantize_config"
KINDS = ("input", "weights", "bias", "activation")
_ENTRY_KEYS = {"module", "layer", "direction", "node_class", "bit_width"}


def flow_settings(bit_width: int) -> dict[str, Any]:
    """The recurrent flow's settings in the config format (only bit_width is the user's)."""
    return {
        "convert_relu6_to_relu": False, "convert_silu_to_hswish": False, "include_cle": False,
        "keep_first_last_layer_accuracy": False, "keep_add_layer_accuracy": False, "include_bias_corr": False,
        "target_device": "DPU_RNN" if bit_width == 16 else "CPU",
        "quantizable_data_type": ["input", "weights", "bias", "activation"],
        "overall_quantize_config": {"bit_width": bit_width, "method": "diffs", "round_mode": "floor",
                                    "symmetry": True, "per_channel": False, "signed": True, "narrow_range": False,
                                    "scale_type": "poweroftwo", "calib_statistic_method": "modal"},
        "tensor_quantize_config": {"input": {"diffs_search_range": 1}, "weights": {"round_mode": "std_round"},
                                   "bias": {"round_mode": "std_round"}},
    }


def _invalid(source: str, problem: str) -> NndctError:
    return error("RECURRENT_CONFIG_INVALID", source=source, problem=problem)


def _width(source: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_BIT_WIDTH <= value <= MAX_BIT_WIDTH:
        raise error("RNN_WIDTH_RANGE", source=source, where=where, value=value, low=MIN_BIT_WIDTH,
                    high=MAX_BIT_WIDTH)
    return value


@dataclass
class _Rule:
    """Sets `bit_width` on the tensors it selects (None: no constraint)."""

    bit_width: int
    where: str
    module: str | None = None
    layer: int | None = None
    direction: str | None = None
    classes: tuple[str, ...] | None = None
    kind: str | None = None
    tensor: str | None = None
    used: bool = False

    def selects_cell(self, prefix: str, module_path: str | None, layer: int, reverse: bool) -> bool:
        if self.module is not None and self.module not in (prefix, module_path) \
                and prefix_from_module_path(self.module) != prefix:
            return False
        if self.layer is not None and self.layer != layer:
            return False
        return self.direction is None or self.direction == ("backward" if reverse else "forward")


@dataclass
class WidthConfig:
    """The width rules of one config file, resolved per cell by `cell_widths`."""

    bit_width: int
    source: str = "(default)"
    rules: list[_Rule] = field(default_factory=list)

    @property
    def is_default(self) -> bool:
        return not self.rules

    def cell_widths(self, definition: CellDefinition, graph_name: str, prefix: str, module_path: str | None,
                    layer: int, reverse: bool) -> CellWidths:
        """Every tensor's width in the cell `graph_name` (layer `layer`, direction `reverse`)."""
        widths = {n: self.bit_width for n in (*definition.node_names, *definition.param_names)}
        for rule in self.rules:
            if rule.tensor is not None:
                graph, _, local = rule.tensor.partition("::")
                if graph != graph_name or local not in widths:
                    continue
                if rule.kind != tensor_kind(definition, local):
                    raise _invalid(self.source, f"{rule.where}: quantizable_data_type is ['{rule.kind}'], the "
                                                f"tensor is of kind ['{tensor_kind(definition, local)}']")
                widths[local] = rule.bit_width
                rule.used = True
                continue
            if not rule.selects_cell(prefix, module_path, layer, reverse):
                continue
            rule.used = True
            for name in widths:
                if rule.kind is not None and tensor_kind(definition, name) != rule.kind:
                    continue
                if rule.classes is not None and tensor_class(definition, name) not in rule.classes:
                    continue
                widths[name] = rule.bit_width
        return CellWidths(tuple(widths[n] for n in definition.node_names),
                          {n: widths[n] for n in definition.param_names})

    def sections(self) -> dict[str, Any]:
        """The user's width rules as config sections again (what the report's suggestion writes
        back, `report.recurrent_config`): ``tensor_quantize_config`` kind -> width, the
        ``rnn_quantize_config`` entries, and the single-tensor rules as (layer_name, kind, width),
        each in the order the file gave them."""
        kinds, entries, tensors = {}, [], []
        for rule in self.rules:
            if rule.tensor is not None:
                tensors.append((rule.tensor, rule.kind, rule.bit_width))
            elif rule.kind is not None:
                kinds[rule.kind] = rule.bit_width
            else:
                entry = {"module": rule.module, "layer": rule.layer, "direction": rule.direction,
                         "node_class": None if rule.classes is None else list(rule.classes)}
                entries.append({**{k: v for k, v in entry.items() if v is not None}, "bit_width": rule.bit_width})
        return {"tensor_quantize_config": kinds, RNN_SECTION: entries, "layer_quantize_config": tensors}

    def check_all_used(self) -> None:
        """After every cell was resolved: a rule that selected no cell names a cell, layer or
        tensor the model does not have."""
        for rule in self.rules:
            if not rule.used:
                what = f"tensor '{rule.tensor}'" if rule.tensor else "cell"
                raise error("RNN_WIDTH_NO_CELL", source=self.source, where=rule.where, what=what)


def _check_settings(source: str, where: str, given: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    for key, value in given.items():
        if key == "bit_width":
            continue
        if key not in expected:
            raise _invalid(source, f"{where}.{key} is not a setting of the recurrent flow")
        if value != expected[key]:
            raise _invalid(source, f"{where}.{key} is {value!r}; the recurrent flow computes with "
                                   f"{expected[key]!r} (only bit_width may differ from the flow's settings)")


def _tensor_settings(kind: str, flow: Mapping[str, Any]) -> dict[str, Any]:
    return {**flow["overall_quantize_config"], **flow["tensor_quantize_config"].get(kind, {})}


def _parse_entry(source: str, i: int, entry: Any) -> _Rule:
    where = f"{RNN_SECTION}[{i}]"
    if not isinstance(entry, Mapping):
        raise _invalid(source, f"{where} must be an object")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise _invalid(source, f"{where} has unknown keys {unknown} (allowed: {sorted(_ENTRY_KEYS)})")
    if "bit_width" not in entry:
        raise _invalid(source, f"{where} has no bit_width")
    classes = entry.get("node_class")
    if classes is not None:
        classes = (classes,) if isinstance(classes, str) else tuple(classes)
        bad = [c for c in classes if c not in NODE_CLASSES]
        if bad or not classes:
            raise error("RNN_WIDTH_CLASS", source=source, where=where, classes=bad or "[]",
                        known=", ".join(NODE_CLASSES))
    layer = entry.get("layer")
    if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
        raise _invalid(source, f"{where}.layer is {layer!r}, not a layer index (0, 1, ...)")
    direction = entry.get("direction")
    if direction not in (None, "forward", "backward"):
        raise _invalid(source, f"{where}.direction is {direction!r}, not 'forward' or 'backward'")
    module = entry.get("module")
    if module is not None and not isinstance(module, str):
        raise _invalid(source, f"{where}.module is {module!r}, not a module path")
    return _Rule(_width(source, f"{where}.bit_width", entry["bit_width"]), where, module, layer, direction, classes)


def read_config(config: Mapping[str, Any] | str | Path) -> tuple[str, Any]:
    """(source, the parsed JSON) of a config path or dict; RECURRENT_CONFIG_INVALID when the
    file cannot be read as JSON."""
    if not isinstance(config, (str, Path)):
        return "(dict)", config
    try:
        return str(config), json.loads(Path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _invalid(str(config), f"it cannot be read as JSON ({exc})") from None


def load_width_config(config: Mapping[str, Any] | str | Path | None, bit_width: int) -> WidthConfig:
    """The width rules of a recurrent-flow config (a path or a dict; None: every tensor at
    `bit_width`, the reference's behaviour). Raises RECURRENT_CONFIG_INVALID, RNN_WIDTH_RANGE or
    RNN_WIDTH_CLASS naming the problem."""
    if config is None:
        return WidthConfig(bit_width)
    source, config = read_config(config)
    if not isinstance(config, Mapping):
        raise _invalid(source, "the top level must be a JSON object")
    flow = flow_settings(bit_width)
    out = WidthConfig(bit_width, source)
    sections = {"overall_quantize_config", "tensor_quantize_config", "layer_quantize_config", RNN_SECTION}
    for key, value in config.items():
        if key in sections:
            continue
        if key not in flow:
            raise _invalid(source, f"'{key}' is not a setting of the recurrent flow")
        if key != "target_device" and value != flow[key]:
            raise _invalid(source, f"'{key}' is {value!r}; the recurrent flow has {flow[key]!r}")
    overall = config.get("overall_quantize_config", {})
    _check_settings(source, "overall_quantize_config", overall, flow["overall_quantize_config"])
    if "bit_width" in overall and _width(source, "overall_quantize_config.bit_width", overall["bit_width"]) != bit_width:
        raise _invalid(source, f"overall_quantize_config.bit_width is {overall['bit_width']}, the quantizer's "
                               f"bitwidth is {bit_width}: give the quantizer the config's default width")
    for kind, settings in config.get("tensor_quantize_config", {}).items():
        if kind not in KINDS:
            raise _invalid(source, f"tensor_quantize_config.{kind}: the kinds are {list(KINDS)}")
        _check_settings(source, f"tensor_quantize_config.{kind}", settings, _tensor_settings(kind, flow))
        if "bit_width" in settings:
            out.rules.append(_Rule(_width(source, f"tensor_quantize_config.{kind}.bit_width", settings["bit_width"]),
                                   f"tensor_quantize_config.{kind}", kind=kind, used=True))
    entries = config.get(RNN_SECTION, [])
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise _invalid(source, f"{RNN_SECTION} must be a list of entries")
    out.rules += [_parse_entry(source, i, e) for i, e in enumerate(entries)]
    seen = set()
    for i, layer in enumerate(config.get("layer_quantize_config", [])):
        where = f"layer_quantize_config[{i}]"
        if layer.get("layer_type") is not None or not layer.get("layer_name"):
            raise _invalid(source, f"{where} must select one tensor by layer_name, not by layer_type")
        name = layer["layer_name"]
        if "::" not in name:
            raise _invalid(source, f"{where}: '{name}' is no '<cell graph>::<node or parameter>' name")
        if name in seen:
            raise _invalid(source, f"{where}: '{name}' is configured twice")
        seen.add(name)
        kinds = layer.get("quantizable_data_type")
        if not isinstance(kinds, list) or len(kinds) != 1 or kinds[0] not in KINDS:
            raise _invalid(source, f"{where}: quantizable_data_type must name the tensor's one kind, got {kinds!r}")
        kind = kinds[0]
        expected = _tensor_settings(kind, flow)
        entry_overall = layer.get("overall_quantize_config", {})
        _check_settings(source, f"{where}.overall_quantize_config", entry_overall, flow["overall_quantize_config"])
        per_kind = layer.get("tensor_quantize_config", {})
        for k, settings in per_kind.items():
            if k != kind:
                raise _invalid(source, f"{where}.tensor_quantize_config.{k}: the entry's tensor is of kind {kind}")
            _check_settings(source, f"{where}.tensor_quantize_config.{k}", settings, expected)
        width = per_kind.get(kind, {}).get("bit_width", entry_overall.get("bit_width"))
        if width is None:
            raise _invalid(source, f"{where} sets no bit_width")
        out.rules.append(_Rule(_width(source, f"{where}.bit_width", width), where, kind=kind, tensor=name))
    return out

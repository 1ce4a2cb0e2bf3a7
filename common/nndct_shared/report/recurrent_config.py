"""The suggestion of a recurrent flow as a config file: per-cell-node bit widths in the CNN flow's
JSON config format, the format the recurrent flow reads as `quant_config_file`
(`lstm.width_config`, README "Mixed bit widths in the recurrent flow"), and its schema check.

- the top level is the recurrent flow's own settings in the config format
  (`lstm.width_config.flow_settings`): ``overall_quantize_config`` with the flow's bit width,
  method ``diffs``, ``round_mode`` ``floor``, power-of-two, symmetric, signed, per tensor;
  ``tensor_quantize_config`` with ``round_mode`` ``std_round`` for ``weights`` and ``bias`` and
  ``diffs_search_range`` 1 for ``input``; ``target_device`` ``DPU_RNN`` at 16 bits, else ``CPU``;
- on a model that is itself mixed-width, the user's width rules are kept: their per-kind
  ``bit_width`` in ``tensor_quantize_config``, their ``rnn_quantize_config`` entries, and their
  single-tensor entries (but for the tensors the suggestion keeps at the high width);
- each ``layer_quantize_config`` entry selects ONE tensor of one cell: ``layer_name`` is
  ``"<cell graph>::<node or parameter>"`` exactly as the tensor's quant_info.json key, ``layer_type``
  is null, ``quantizable_data_type`` is the tensor's kind alone (``input`` for ``input_0``,
  ``weights`` / ``bias`` for parameters, ``activation`` for every other node), and its
  ``overall_quantize_config`` / ``tensor_quantize_config`` are the top level's with only
  ``bit_width`` changed (at most 16). The suggestion's entries come last, so they win.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Mapping

from ..config import QuantConfig
from ..lstm.width_config import RNN_SECTION, WidthConfig, flow_settings, load_width_config, read_config
from ..messages import NndctError, error
from .quant import QuantTensor

__all__ = ["check_recurrent_config", "recurrent_config"]

MAX_BIT_WIDTH = 16


def _entry(data: Mapping[str, Any], name: str, kind: str, bit_width: int) -> dict[str, Any]:
    """The layer_quantize_config entry giving tensor `name` (of `kind`) `bit_width` bits."""
    entry = {"layer_type": None, "layer_name": name, "quantizable_data_type": [kind],
             "overall_quantize_config": dict(data["overall_quantize_config"], bit_width=bit_width)}
    if kind in data["tensor_quantize_config"]:
        settings = dict(data["tensor_quantize_config"][kind])
        if "bit_width" in settings:  # the user's width for the kind: the entry's own wins
            settings["bit_width"] = bit_width
        entry["tensor_quantize_config"] = {kind: settings}
    return entry


def recurrent_config(tensors: Sequence[QuantTensor], keep: Sequence[str], bit_width: int,
                     high_bit_width: int = 16, user: WidthConfig | None = None) -> dict[str, Any]:
    """The config dict that keeps the tensors named in `keep` at `high_bit_width` bits; `user`:
    the width config the model was quantized with, whose rules the suggestion keeps."""
    data = flow_settings(bit_width)
    by_name = {t.name: t for t in tensors}
    entries = []
    if user is not None and not user.is_default:
        sections = user.sections()
        for kind, width in sections["tensor_quantize_config"].items():
            data["tensor_quantize_config"][kind] = dict(data["tensor_quantize_config"].get(kind, {}), bit_width=width)
        if sections[RNN_SECTION]:
            data[RNN_SECTION] = sections[RNN_SECTION]
        entries += [_entry(data, name, kind, width) for name, kind, width in sections["layer_quantize_config"]
                    if name not in keep]
    entries += [_entry(data, name, by_name[name].kind, high_bit_width) for name in keep]
    data["layer_quantize_config"] = entries
    return data


def _invalid(source: str, problem: str) -> NndctError:
    return error("RECURRENT_CONFIG_INVALID", source=source, problem=problem)


def check_recurrent_config(data: Mapping[str, Any] | str | Path, tensors: Sequence[QuantTensor]) -> QuantConfig:
    """Validate a per-cell-node config against the cells' tensors (see the module docstring;
    the tensors may have different widths: a mixed-width model's); returns the parsed
    `QuantConfig` of its CNN-format sections. Raises RECURRENT_CONFIG_INVALID naming the
    problem (settings other than bit_width, a tensor the cells do not have or of another kind,
    an entry twice), RNN_WIDTH_RANGE / RNN_WIDTH_CLASS for widths and classes, or the config
    parser's own error for a file that is not a valid config at all."""
    source, data = read_config(data)
    if not isinstance(data, Mapping):
        raise _invalid(source, "the top level must be a JSON object")
    widths = {t.quant.bit_width for t in tensors}
    bit_width = data.get("overall_quantize_config", {}).get("bit_width")
    if bit_width is None:
        if len(widths) != 1:
            raise _invalid(source, f"the cells mix bit widths {sorted(widths)} and the config's "
                                   "overall_quantize_config sets no bit_width")
        bit_width = next(iter(widths))
    rules = load_width_config(data, bit_width)  # the flow's own reader: settings, entries, widths
    by_name = {t.name: t for t in tensors}
    for i, (name, kind, width) in enumerate(rules.sections()["layer_quantize_config"]):
        where = f"layer_quantize_config[{i}]"
        tensor = by_name.get(name)
        if tensor is None:
            raise _invalid(source, f"{where}: '{name}' is no node or parameter of the model's cells "
                                   "('<cell graph>::<name>')")
        if kind != tensor.kind:
            raise _invalid(source, f"{where}: quantizable_data_type is ['{kind}'], the tensor is of kind "
                                   f"['{tensor.kind}']")
        if width > MAX_BIT_WIDTH:
            raise _invalid(source, f"{where}: bit_width {width} is above {MAX_BIT_WIDTH}")
    return QuantConfig.from_dict({k: v for k, v in data.items() if k != RNN_SECTION})

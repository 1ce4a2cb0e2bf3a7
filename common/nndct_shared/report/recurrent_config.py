"""The suggestion of a recurrent flow as a config file: per-cell-node bit widths in the CNN flow's
JSON config format, the format the recurrent flow reads as `quant_config_file`
(`lstm.width_config`, README "Mixed bit widths in the recurrent flow"), and its schema check.

- the top level is the recurrent flow's own settings in the config format
  (`lstm.width_config.flow_settings`): ``overall_quantize_config`` with the flow's bit width,
  method ``diffs``, ``round_mode`` ``floor``, power-of-two, symmetric, signed, per tensor;
  ``tensor_quantize_config`` with ``round_mode`` ``std_round`` for ``weights`` and ``bias`` and
  ``diffs_search_range`` 1 for ``input``; ``target_device`` ``DPU_RNN`` at 16 bits, else ``CPU``;
- each ``layer_quantize_config`` entry selects ONE tensor of one cell: ``layer_name`` is
  ``"<cell graph>::<node or parameter>"`` exactly as the tensor's quant_info.json key, ``layer_type``
  is null, ``quantizable_data_type`` is the tensor's kind alone (``input`` for ``input_0``,
  ``weights`` / ``bias`` for parameters, ``activation`` for every other node), and its
  ``overall_quantize_config`` / ``tensor_quantize_config`` are the top level's with only
  ``bit_width`` changed (at most 16).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import QuantConfig
from ..lstm.width_config import flow_settings, read_config
from ..messages import NndctError, error
from .quant import QuantTensor

__all__ = ["check_recurrent_config", "recurrent_config"]

MAX_BIT_WIDTH = 16


def recurrent_config(tensors: Sequence[QuantTensor], keep: Sequence[str], bit_width: int,
                     high_bit_width: int = 16) -> dict[str, Any]:
    """The config dict that keeps the tensors named in `keep` at `high_bit_width` bits."""
    data = flow_settings(bit_width)
    by_name = {t.name: t for t in tensors}
    entries = []
    for name in keep:
        kind = by_name[name].kind
        overall = dict(data["overall_quantize_config"], bit_width=high_bit_width)
        entry = {"layer_type": None, "layer_name": name, "quantizable_data_type": [kind],
                 "overall_quantize_config": overall}
        if kind in data["tensor_quantize_config"]:
            entry["tensor_quantize_config"] = {kind: dict(data["tensor_quantize_config"][kind])}
        entries.append(entry)
    data["layer_quantize_config"] = entries
    return data


def _invalid(source: str, problem: str) -> NndctError:
    return error("RECURRENT_CONFIG_INVALID", source=source, problem=problem)


def check_recurrent_config(data: Mapping[str, Any] | str | Path, tensors: Sequence[QuantTensor]) -> QuantConfig:
    """Validate a per-cell-node config against the cells' tensors (see the module docstring);
    returns the parsed `QuantConfig`. Raises RECURRENT_CONFIG_INVALID naming the problem, or the
    config parser's own error for a file that is not a valid config at all."""
    source, data = read_config(data)
    config = QuantConfig.from_dict(data)
    by_name = {t.name: t for t in tensors}
    widths = {t.quant.bit_width for t in tensors}
    if len(widths) != 1:
        raise _invalid(source, f"the cells mix bit widths {sorted(widths)}")
    flow = QuantConfig.from_dict({k: v for k, v in flow_settings(widths.pop()).items()})
    top = {k: v for k, v in config.to_dict().items() if k != "layer_quantize_config"}
    if top != flow.to_dict():
        diff = sorted(k for k in set(top) | set(flow.to_dict()) if top.get(k) != flow.to_dict().get(k))
        raise _invalid(source, f"its top-level settings differ from the recurrent flow's in {diff}")
    seen = set()
    for i, layer in enumerate(config.layer_quantize_config):
        where = f"layer_quantize_config[{i}]"
        if layer.layer_type is not None or layer.layer_name is None:
            raise _invalid(source, f"{where} must select one tensor by layer_name, not by layer_type")
        tensor = by_name.get(layer.layer_name)
        if tensor is None:
            raise _invalid(source, f"{where}: '{layer.layer_name}' is no node or parameter of the model's cells "
                                   "('<cell graph>::<name>')")
        if layer.layer_name in seen:
            raise _invalid(source, f"{where}: '{layer.layer_name}' is configured twice")
        seen.add(layer.layer_name)
        kinds = [k.value for k in layer.quantizable_data_type]
        if kinds != [tensor.kind]:
            raise _invalid(source, f"{where}: quantizable_data_type is {kinds}, the tensor is of kind ['{tensor.kind}']")
        params = config.for_tensor(tensor.kind, None, layer.layer_name)
        expected = flow.for_tensor(tensor.kind)
        if params.bit_width > MAX_BIT_WIDTH:
            raise _invalid(source, f"{where}: bit_width {params.bit_width} is above {MAX_BIT_WIDTH}")
        if params.to_dict() != dict(expected.to_dict(), bit_width=params.bit_width):
            raise _invalid(source, f"{where}: only bit_width may differ from the flow's settings")
    return config

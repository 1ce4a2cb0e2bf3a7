"""The suggestion of the CNN flow as a config file the flow loads (`quant_config_file=`).

The user's configuration is kept as it is; each layer holding a tensor of the suggestion gets a
``layer_quantize_config`` entry selected by ``layer_name`` (the node name of the converted
model) that lists every tensor kind quantized in that layer with exactly the parameters it had,
except ``bit_width`` for the suggested kinds. A by-name entry wins over by-type entries, so the
other layers are unchanged. The DPU computes in int8 only, so a configuration for target_device
DPU with wider tensors is written for target_device CPU (the quantizer's default for widths
other than 8).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import QuantConfig
from ..config.enums import TargetDevice, TensorKind
from .quant import QuantTensor

__all__ = ["cnn_config"]


def cnn_config(config: QuantConfig, tensors: Sequence[QuantTensor], keep: Sequence[str],
               layer_types: Mapping[str, str | None], high_bit_width: int = 16) -> dict[str, Any]:
    """The config dict that keeps the tensors named in `keep` at `high_bit_width` bits."""
    data = config.to_dict()
    kinds_by_layer: dict[str, set[str]] = {}
    for t in tensors:
        if t.name in keep:
            kinds_by_layer.setdefault(t.group, set()).add(t.kind)
    if not kinds_by_layer:
        return data
    if config.target_device is TargetDevice.DPU and high_bit_width != 8:
        data["target_device"] = TargetDevice.CPU.value
    entries = [e for e in data.get("layer_quantize_config", []) if e.get("layer_name") not in kinds_by_layer]
    for layer, kinds in kinds_by_layer.items():
        layer_type = layer_types.get(layer)
        quantized = [k for k in TensorKind if config.quantizes(k, layer_type, layer)]
        overrides = {}
        for kind in quantized:
            params = config.for_tensor(kind, layer_type, layer).to_dict()
            if kind.value in kinds:
                params["bit_width"] = high_bit_width
            overrides[kind.value] = params
        entries.append({"layer_type": None, "layer_name": layer, "quantizable_data_type": [k.value for k in quantized],
                        "overall_quantize_config": config.overall_quantize_config.to_dict(),
                        "tensor_quantize_config": overrides})
    data["layer_quantize_config"] = entries
    QuantConfig.from_dict(data)  # the file must load: a config the checks refuse is a bug here
    return data

"""JSON object -> `QuantConfig`, checking keys and value types with the full option path.

Required keys (guide: "model configuration, including global quantizer settings and global
tensor quantization settings are required"): ``target_device`` and a complete
``overall_quantize_config`` at the top; ``quantizable_data_type`` and a complete
``overall_quantize_config`` in each layer entry. The boolean switches default to the default
configuration's values and ``quantizable_data_type`` to all four kinds when absent.
``tensor_quantize_config`` / ``layer_quantize_config`` may be absent or null (= empty); optional
parameters (``percentage``, ``diffs_search_range``) may be null (= unset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .enums import TargetDevice, TensorKind
from .schema import (
    GLOBAL_FLAGS,
    OPTIONAL_PARAMS,
    PARAM_KEYS,
    PROJECT_FLAGS,
    REQUIRED_PARAMS,
    LayerQuantConfig,
    QuantConfig,
    TensorOverrides,
    TensorQuantConfig,
    TensorQuantizeConfig,
    check_param,
    check_selector,
)
from .validate import (
    check_bool,
    check_enum,
    check_keys,
    check_kinds,
    check_object,
    check_optional_name,
    join,
    type_error,
)

#: Keys allowed at the top level, in output order.
TOP_KEYS: tuple[str, ...] = GLOBAL_FLAGS + PROJECT_FLAGS + (
    "target_device",
    "quantizable_data_type",
    "overall_quantize_config",
    "tensor_quantize_config",
    "layer_quantize_config",
)
TOP_REQUIRED: tuple[str, ...] = ("target_device", "overall_quantize_config")
#: Keys allowed in a layer entry.
LAYER_KEYS: tuple[str, ...] = (
    "layer_type",
    "layer_name",
    "quantizable_data_type",
    "overall_quantize_config",
    "tensor_quantize_config",
)
LAYER_REQUIRED: tuple[str, ...] = ("quantizable_data_type", "overall_quantize_config")
#: Keys allowed in a "tensor_quantize_config" object.
KIND_KEYS: tuple[str, ...] = tuple(k.value for k in TensorKind)


def parse_config(data: Any) -> QuantConfig:
    """The `QuantConfig` described by the JSON object `data`."""
    obj = check_object(data, "")
    check_keys(obj, "", TOP_KEYS, TOP_REQUIRED)
    kwargs: dict[str, Any] = {
        flag: check_bool(obj[flag], flag) for flag in GLOBAL_FLAGS + PROJECT_FLAGS if flag in obj
    }
    kwargs["target_device"] = check_enum(TargetDevice, obj["target_device"], "target_device")
    if "quantizable_data_type" in obj:
        kwargs["quantizable_data_type"] = check_kinds(
            obj["quantizable_data_type"], "quantizable_data_type"
        )
    kwargs["overall_quantize_config"] = parse_params(
        obj["overall_quantize_config"], "overall_quantize_config"
    )
    if obj.get("tensor_quantize_config") is not None:
        kwargs["tensor_quantize_config"] = parse_tensor_config(
            obj["tensor_quantize_config"], "tensor_quantize_config"
        )
    if obj.get("layer_quantize_config") is not None:
        layers = obj["layer_quantize_config"]
        path = "layer_quantize_config"
        if isinstance(layers, (str, bytes, Mapping)) or not isinstance(layers, (list, tuple)):
            raise type_error(path, "a list of layer configurations ([{...}, ...])", layers)
        kwargs["layer_quantize_config"] = tuple(
            parse_layer(layer, join(path, i)) for i, layer in enumerate(layers)
        )
    return QuantConfig(**kwargs)


def _typed_params(obj: Mapping[str, Any], path: str) -> dict[str, Any]:
    out = {}
    for key, value in obj.items():
        if value is None and key in OPTIONAL_PARAMS:
            continue
        out[key] = check_param(key, value, join(path, key))
    return out


def parse_params(value: Any, path: str) -> TensorQuantConfig:
    """A complete parameter set ("overall_quantize_config") at `path`."""
    obj = check_object(value, path)
    check_keys(obj, path, PARAM_KEYS, REQUIRED_PARAMS)
    return TensorQuantConfig(**_typed_params(obj, path))


def parse_overrides(value: Any, path: str) -> TensorOverrides:
    """A partial parameter set (one kind of "tensor_quantize_config") at `path`."""
    obj = check_object(value, path)
    check_keys(obj, path, PARAM_KEYS)
    return TensorOverrides(**_typed_params(obj, path))


def parse_tensor_config(value: Any, path: str) -> TensorQuantizeConfig:
    """A "tensor_quantize_config" object at `path`: kind -> partial parameters."""
    obj = check_object(value, path)
    check_keys(obj, path, KIND_KEYS)
    return TensorQuantizeConfig(
        **{kind: parse_overrides(sub, join(path, kind)) for kind, sub in obj.items()}
    )


def parse_layer(value: Any, path: str) -> LayerQuantConfig:
    """One "layer_quantize_config" entry at `path`."""
    obj = check_object(value, path)
    check_keys(obj, path, LAYER_KEYS, LAYER_REQUIRED)
    layer_type = check_optional_name(obj.get("layer_type"), join(path, "layer_type"))
    layer_name = check_optional_name(obj.get("layer_name"), join(path, "layer_name"))
    check_selector(layer_type, layer_name, path)
    tensor = obj.get("tensor_quantize_config")
    return LayerQuantConfig(
        layer_type=layer_type,
        layer_name=layer_name,
        quantizable_data_type=check_kinds(
            obj["quantizable_data_type"], join(path, "quantizable_data_type")
        ),
        overall_quantize_config=parse_params(
            obj["overall_quantize_config"], join(path, "overall_quantize_config")
        ),
        tensor_quantize_config=(
            TensorQuantizeConfig()
            if tensor is None
            else parse_tensor_config(tensor, join(path, "tensor_quantize_config"))
        ),
    )

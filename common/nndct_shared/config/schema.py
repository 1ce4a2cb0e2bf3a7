"""Typed, frozen objects for the JSON quantization-strategy configuration of the user guide.

A configuration is hierarchical (guide, "Hierarchical Configuration"):

* `QuantConfig` holds the global quantizer settings, the model-wide tensor settings
  (``overall_quantize_config``, complete), per-kind overrides (``tensor_quantize_config``) and
  per-layer configurations (``layer_quantize_config``).
* `TensorQuantConfig` is a complete set of tensor quantization parameters.
* `TensorOverrides` is a partial set, applied on top of an overall config for one tensor kind.
* `LayerQuantConfig` selects layers by type or by name and carries its own overall config and
  overrides.

Objects validate themselves on construction (values, then cross-option conflicts and the target
device's restrictions, see `checks`), so every `QuantConfig` in memory is usable as is. Strings
are accepted for enum fields and lists for tuple fields; they are stored as enums and tuples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..messages import error
from .enums import (
    CalibMethod,
    CalibStatistic,
    RoundMode,
    ScaleType,
    TargetDevice,
    TensorKind,
)
from .validate import (
    check_bit_width,
    check_bool,
    check_enum,
    check_kinds,
    check_optional_name,
    check_percentage,
    check_search_range,
    join,
    type_error,
)

#: Every tensor kind, in the guide's order; the default "quantizable_data_type".
ALL_KINDS: tuple[TensorKind, ...] = tuple(TensorKind)

#: Keys of a complete tensor parameter set that a JSON "overall_quantize_config" must contain.
REQUIRED_PARAMS: tuple[str, ...] = (
    "bit_width",
    "method",
    "round_mode",
    "symmetry",
    "per_channel",
    "signed",
    "narrow_range",
    "scale_type",
    "calib_statistic_method",
)
#: Optional parameter keys: "percentage" (reference tool), "diffs_search_range" (this project).
OPTIONAL_PARAMS: tuple[str, ...] = ("percentage", "diffs_search_range")
PARAM_KEYS: tuple[str, ...] = REQUIRED_PARAMS + OPTIONAL_PARAMS

#: Global boolean switches of the configuration file, in output order.
GLOBAL_FLAGS: tuple[str, ...] = (
    "convert_relu6_to_relu",
    "convert_silu_to_hswish",
    "include_cle",
    "keep_first_last_layer_accuracy",
    "keep_add_layer_accuracy",
    "include_bias_corr",
)
#: This project's global switches (absent from the reference's files): read like GLOBAL_FLAGS,
#: written by `to_dict` only when on, so a default config stays loadable by the reference.
PROJECT_FLAGS: tuple[str, ...] = ("cle_extensions",)

_PARAM_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "bit_width": check_bit_width,
    "method": lambda v, p: check_enum(CalibMethod, v, p),
    "round_mode": lambda v, p: check_enum(RoundMode, v, p),
    "symmetry": check_bool,
    "per_channel": check_bool,
    "signed": check_bool,
    "narrow_range": check_bool,
    "scale_type": lambda v, p: check_enum(ScaleType, v, p),
    "calib_statistic_method": lambda v, p: check_enum(CalibStatistic, v, p),
    "percentage": check_percentage,
    "diffs_search_range": check_search_range,
}


def check_param(name: str, value: Any, path: str) -> Any:
    """Validate one tensor parameter `name` at `path`; return its typed value."""
    return _PARAM_CHECKS[name](value, path)


def _param_dict(obj: Any) -> dict[str, Any]:
    """The set (non-None) parameters of `obj` in `PARAM_KEYS` order, enums as their spelling."""
    out: dict[str, Any] = {}
    for key in PARAM_KEYS:
        value = getattr(obj, key)
        if value is not None:
            out[key] = value.value if hasattr(value, "value") else value
    return out


@dataclass(frozen=True, kw_only=True)
class TensorQuantConfig:
    """A complete set of quantization parameters for one tensor (or all tensors of a scope).

    Attributes:
        bit_width: number of bits of the integer grid (2..32).
        method: how the scale is calibrated (see `CalibMethod`).
        round_mode: how scaled values are rounded to integers (see `RoundMode`).
        symmetry: symmetric quantization (zero point 0) when true; asymmetric uses a zero point.
        per_channel: one scale per output channel (weights only) instead of one per tensor.
        signed: signed integer grid when true, unsigned ([0, 2^bits - 1]) when false.
        narrow_range: for signed grids, drop the most negative value so the range is symmetric,
            e.g. [-127, 127] instead of [-128, 127].
        scale_type: "float" scales or "poweroftwo" scales (2^-fix_pos), which the DPU needs.
        calib_statistic_method: how per-batch scales are combined (input/activation only).
        percentage: the percentile used by method "percentile", in (0, 100]; None means the
            reference tool's default 99.99 when the method is percentile, unused otherwise.
        diffs_search_range: how many fix positions the diffs search tries, starting from the
            max-based one (1 = no search). None means the reference behaviour: 1 for input
            tensors, 5 otherwise. Ignored by other methods. (A project addition to the guide.)
    """

    bit_width: int
    method: CalibMethod
    round_mode: RoundMode
    symmetry: bool
    per_channel: bool
    signed: bool
    narrow_range: bool
    scale_type: ScaleType
    calib_statistic_method: CalibStatistic
    percentage: float | None = None
    diffs_search_range: int | None = None

    def __post_init__(self) -> None:
        for key in PARAM_KEYS:
            value = getattr(self, key)
            if value is None and key in OPTIONAL_PARAMS:
                continue
            object.__setattr__(self, key, check_param(key, value, key))

    def with_overrides(self, overrides: TensorOverrides | None) -> TensorQuantConfig:
        """A copy with every parameter `overrides` sets replaced."""
        if overrides is None:
            return self
        return replace(self, **overrides.set_params())

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form (optional parameters only when set)."""
        return _param_dict(self)

    @property
    def quant_min(self) -> int:
        """Smallest integer of the grid: -2^(b-1) (+1 with narrow_range) for signed symmetric
        grids, 0 otherwise (asymmetric grids are unsigned with a zero point, as the reference)."""
        if self.signed and self.symmetry:
            low = -(2 ** (self.bit_width - 1))
            return low + 1 if self.narrow_range else low
        return 0

    @property
    def quant_max(self) -> int:
        """Largest integer of the grid: 2^(b-1) - 1 for signed symmetric grids, else 2^b - 1."""
        if self.signed and self.symmetry:
            return 2 ** (self.bit_width - 1) - 1
        return 2**self.bit_width - 1


@dataclass(frozen=True, kw_only=True)
class TensorOverrides:
    """Some tensor parameters, overriding an overall config for one tensor kind.

    Fields mean the same as in `TensorQuantConfig`; None means "not overridden".
    """

    bit_width: int | None = None
    method: CalibMethod | None = None
    round_mode: RoundMode | None = None
    symmetry: bool | None = None
    per_channel: bool | None = None
    signed: bool | None = None
    narrow_range: bool | None = None
    scale_type: ScaleType | None = None
    calib_statistic_method: CalibStatistic | None = None
    percentage: float | None = None
    diffs_search_range: int | None = None

    def __post_init__(self) -> None:
        for key in PARAM_KEYS:
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, check_param(key, value, key))

    def set_params(self) -> dict[str, Any]:
        """{parameter: typed value} for the parameters this object overrides."""
        return {k: getattr(self, k) for k in PARAM_KEYS if getattr(self, k) is not None}

    def is_empty(self) -> bool:
        """True when nothing is overridden."""
        return not self.set_params()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form (only the overridden parameters)."""
        return _param_dict(self)


@dataclass(frozen=True, kw_only=True)
class TensorQuantizeConfig:
    """Per-kind overrides ("tensor_quantize_config"): None for a kind means no override."""

    input: TensorOverrides | None = None
    weights: TensorOverrides | None = None
    bias: TensorOverrides | None = None
    activation: TensorOverrides | None = None

    def __post_init__(self) -> None:
        for kind in ALL_KINDS:
            value = getattr(self, kind.value)
            if value is None:
                continue
            if not isinstance(value, TensorOverrides):
                raise type_error(kind.value, "TensorOverrides or null", value)
            object.__setattr__(self, kind.value, None if value.is_empty() else value)

    def get(self, kind: TensorKind | str) -> TensorOverrides | None:
        """The overrides for `kind`, or None."""
        return getattr(self, check_enum(TensorKind, kind, "kind").value)

    def items(self) -> Iterator[tuple[TensorKind, TensorOverrides]]:
        """(kind, overrides) for every kind that has overrides, in the guide's kind order."""
        for kind in ALL_KINDS:
            value = getattr(self, kind.value)
            if value is not None:
                yield kind, value

    def is_empty(self) -> bool:
        """True when no kind is overridden."""
        return next(self.items(), None) is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form (only kinds with overrides)."""
        return {kind.value: ov.to_dict() for kind, ov in self.items()}


def layer_type_key(layer_type: str) -> str:
    """The part of a layer type that is matched: its last dotted component.

    "torch.nn.Conv2d", "pytorch_nndct.nn.Conv2d" and "Conv2d" all match each other, as in the
    reference tool, which keyed layer types by ``layer_type.split('.')[-1]``.
    """
    return layer_type.strip().rsplit(".", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class LayerQuantConfig:
    """The configuration of some layers, selected by type or by name (not both).

    Attributes:
        layer_type: the layer class, e.g. "torch.nn.Conv2d" (matched on its last component).
        layer_name: a node name from the generated quantizable module, e.g.
            "ResNet::ResNet/Conv2d[conv1]/input.2".
        quantizable_data_type: the tensor kinds quantized in these layers; kinds not listed
            are left in float there.
        overall_quantize_config: complete parameters for these layers (replaces the model's).
        tensor_quantize_config: per-kind overrides on top of this layer's overall config.
    """

    layer_type: str | None = None
    layer_name: str | None = None
    quantizable_data_type: tuple[TensorKind, ...]
    overall_quantize_config: TensorQuantConfig
    tensor_quantize_config: TensorQuantizeConfig = field(default_factory=TensorQuantizeConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_type", check_optional_name(self.layer_type, "layer_type"))
        object.__setattr__(self, "layer_name", check_optional_name(self.layer_name, "layer_name"))
        object.__setattr__(
            self,
            "quantizable_data_type",
            check_kinds(self.quantizable_data_type, "quantizable_data_type"),
        )
        check_selector(self.layer_type, self.layer_name, "")
        _require_type(self.overall_quantize_config, TensorQuantConfig, "overall_quantize_config")
        _require_type(self.tensor_quantize_config, TensorQuantizeConfig, "tensor_quantize_config")

    @property
    def selector(self) -> str:
        """How this entry selects layers, for messages: "layer_type 'Conv2d'"."""
        if self.layer_name is not None:
            return f"layer_name '{self.layer_name}'"
        return f"layer_type '{self.layer_type}'"

    def matches_type(self, layer_type: str | None) -> bool:
        """True if this is a by-type entry for `layer_type`."""
        return (
            self.layer_name is None
            and self.layer_type is not None
            and layer_type is not None
            and layer_type_key(self.layer_type) == layer_type_key(layer_type)
        )

    def matches_name(self, layer_name: str | None) -> bool:
        """True if this is a by-name entry for `layer_name`."""
        return self.layer_name is not None and self.layer_name == layer_name

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form, with the unused selector written as null (as the guide)."""
        out: dict[str, Any] = {
            "layer_type": self.layer_type,
            "layer_name": self.layer_name,
            "quantizable_data_type": [k.value for k in self.quantizable_data_type],
            "overall_quantize_config": self.overall_quantize_config.to_dict(),
        }
        if not self.tensor_quantize_config.is_empty():
            out["tensor_quantize_config"] = self.tensor_quantize_config.to_dict()
        return out


def check_selector(layer_type: str | None, layer_name: str | None, path: str) -> None:
    """A layer configuration selects by type or by name: exactly one of them is non-null."""
    if (layer_type is None) == (layer_name is None):
        both = layer_type is not None
        raise error(
            "QUANT_CONFIG",
            path=path or "layer_quantize_config entry",
            problem=(
                "both layer_type and layer_name are set"
                if both
                else "neither layer_type nor layer_name is set"
            ),
            hint="Set layer_type (e.g. \"torch.nn.Conv2d\") to configure all layers of a type, or "
            "layer_name to configure one layer, and set the other to null.",
        )


def _require_type(value: Any, cls: type, path: str) -> None:
    if not isinstance(value, cls):
        raise type_error(path, cls.__name__, value)


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """A whole quantization-strategy configuration.

    Global quantizer settings (guide section 2 and the reference's Quant_Config.md):

    Attributes:
        convert_relu6_to_relu: replace ReLU6 by ReLU before quantization.
        convert_silu_to_hswish: replace SiLU by Hardswish before quantization.
        include_cle: run cross-layer equalization before calibration (the reference's: conv
            pairs through ReLU / ReLU6 / pooling, one pass; `nndct_shared.cnn.cle`).
        cle_extensions: (this project) extend CLE with linear-layer pairs, LeakyReLU and
            adaptive max pooling between the layers, and sweeps until the scales converge.
        keep_first_last_layer_accuracy: reserved by the reference tool (not used yet): skip
            quantizing the first and last layers.
        keep_add_layer_accuracy: reserved by the reference tool (not used yet): skip
            quantizing "add" layers.
        include_bias_corr: run bias correction after calibration.
        target_device: where the model is deployed; DPU targets restrict the parameters.
        quantizable_data_type: tensor kinds quantized in the model; others stay float.
        overall_quantize_config: the model-wide parameters for every quantized tensor.
        tensor_quantize_config: per-kind overrides of the overall parameters.
        layer_quantize_config: per-layer configurations, by type or by name.
    """

    convert_relu6_to_relu: bool = False
    convert_silu_to_hswish: bool = False
    include_cle: bool = True
    cle_extensions: bool = False
    keep_first_last_layer_accuracy: bool = False
    keep_add_layer_accuracy: bool = False
    include_bias_corr: bool = True
    target_device: TargetDevice = TargetDevice.DPU
    quantizable_data_type: tuple[TensorKind, ...] = ALL_KINDS
    overall_quantize_config: TensorQuantConfig
    tensor_quantize_config: TensorQuantizeConfig = field(default_factory=TensorQuantizeConfig)
    layer_quantize_config: tuple[LayerQuantConfig, ...] = ()

    def __post_init__(self) -> None:
        for flag in GLOBAL_FLAGS + PROJECT_FLAGS:
            check_bool(getattr(self, flag), flag)
        set_ = object.__setattr__
        set_(self, "target_device", check_enum(TargetDevice, self.target_device, "target_device"))
        set_(
            self,
            "quantizable_data_type",
            check_kinds(self.quantizable_data_type, "quantizable_data_type"),
        )
        _require_type(self.overall_quantize_config, TensorQuantConfig, "overall_quantize_config")
        _require_type(self.tensor_quantize_config, TensorQuantizeConfig, "tensor_quantize_config")
        layers = self.layer_quantize_config
        if isinstance(layers, (str, bytes, Mapping)) or not isinstance(layers, (list, tuple)):
            raise type_error("layer_quantize_config", "a list of layer configurations", layers)
        for i, layer in enumerate(layers):
            _require_type(layer, LayerQuantConfig, join("layer_quantize_config", i))
        set_(self, "layer_quantize_config", tuple(layers))

        from .checks import check_config  # the checks need the finished object

        check_config(self)

    # --- construction and serialisation ------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantConfig:
        """Parse the JSON object form; every problem raises a `QuantConfigError` naming its path."""
        from .parse import parse_config

        return parse_config(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form: global settings, then the tensor and layer configurations."""
        out: dict[str, Any] = {flag: getattr(self, flag) for flag in GLOBAL_FLAGS}
        out.update({flag: True for flag in PROJECT_FLAGS if getattr(self, flag)})
        out["target_device"] = self.target_device.value
        out["quantizable_data_type"] = [k.value for k in self.quantizable_data_type]
        out["overall_quantize_config"] = self.overall_quantize_config.to_dict()
        if not self.tensor_quantize_config.is_empty():
            out["tensor_quantize_config"] = self.tensor_quantize_config.to_dict()
        if self.layer_quantize_config:
            out["layer_quantize_config"] = [layer.to_dict() for layer in self.layer_quantize_config]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict` as JSON text (ends with a newline)."""
        return json.dumps(self.to_dict(), indent=indent) + "\n"

    # --- resolution ----------------------------------------------------------------------------

    def for_tensor(
        self,
        kind: TensorKind | str,
        layer_type: str | None = None,
        layer_name: str | None = None,
    ) -> TensorQuantConfig:
        """The parameters for a tensor of `kind` in the given layer (see `resolve.for_tensor`)."""
        from .resolve import for_tensor

        return for_tensor(self, kind, layer_type, layer_name)

    def quantizes(
        self,
        kind: TensorKind | str,
        layer_type: str | None = None,
        layer_name: str | None = None,
    ) -> bool:
        """Whether a tensor of `kind` in the given layer is quantized (see `resolve.quantizes`)."""
        from .resolve import quantizes

        return quantizes(self, kind, layer_type, layer_name)

    def layer_for(
        self, layer_type: str | None = None, layer_name: str | None = None
    ) -> LayerQuantConfig | None:
        """The layer configuration that applies to a layer: by name first, then by type."""
        from .resolve import find_layer

        found = find_layer(self, layer_type, layer_name)
        return None if found is None else found[1]

"""Which parameters apply to a tensor: overall -> tensor kind -> layer (name beats type).

Resolution for a tensor of kind K in a layer (guide, "Hierarchical Configuration"):

1. The layer entry: the ``layer_quantize_config`` entry whose ``layer_name`` equals the layer's
   name, else the one whose ``layer_type`` matches the layer's type (last dotted component).
2. If there is such an entry and it lists K in its ``quantizable_data_type``: the entry's
   ``overall_quantize_config`` with the entry's ``tensor_quantize_config[K]`` on top.
3. Otherwise: the model's ``overall_quantize_config`` with ``tensor_quantize_config[K]`` on top.
4. On a DPU target, an activation whose round_mode resolves to std_round is rounded half_up
   (the guide's default listing, see ``dpu_rounding``).
5. Optional parameters left unset get the reference defaults: ``percentage`` 99.99 when the
   method is percentile; ``diffs_search_range`` 1 for input tensors and 5 for the others.

Whether K is quantized at all: the layer entry's ``quantizable_data_type`` decides when an entry
matches (a kind it omits stays float in those layers); otherwise the model's list decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .enums import CalibMethod, TensorKind
from .validate import check_enum, join

if TYPE_CHECKING:
    from .schema import LayerQuantConfig, QuantConfig, TensorOverrides, TensorQuantConfig

#: Percentile used by method "percentile" when "percentage" is not set (reference default).
DEFAULT_PERCENTAGE = 99.99
#: Fix positions tried by diffs for weights, bias and activations (reference default).
DEFAULT_DIFFS_SEARCH_RANGE = 5
#: Fix positions tried by diffs for input tensors: the max-based one only (reference behaviour).
INPUT_DIFFS_SEARCH_RANGE = 1


@dataclass(frozen=True)
class Scope:
    """The merged parameters of one tensor kind at one level of a config, for checking.

    Attributes:
        kind: the tensor kind.
        params: overall parameters with the kind's overrides applied (optional ones unfilled).
        sources: parameter name -> the option path its value came from.
        where: the level, for messages ("the model" or "layer_quantize_config[0]").
    """

    kind: TensorKind
    params: TensorQuantConfig
    sources: Mapping[str, str]
    where: str


def merge(
    overall: TensorQuantConfig,
    overall_path: str,
    overrides: TensorOverrides | None,
    overrides_path: str,
) -> tuple[TensorQuantConfig, dict[str, str]]:
    """`overall` with `overrides` applied, and the option path of every parameter's value."""
    params = overall.with_overrides(overrides)
    sources = {key: join(overall_path, key) for key in params.to_dict()}
    if overrides is not None:
        for key in overrides.set_params():
            sources[key] = join(overrides_path, key)
    return params, sources


def complete(params: TensorQuantConfig, kind: TensorKind) -> TensorQuantConfig:
    """`params` with unset optional parameters given their reference defaults for `kind`."""
    updates: dict[str, object] = {}
    if params.diffs_search_range is None:
        updates["diffs_search_range"] = (
            INPUT_DIFFS_SEARCH_RANGE if kind is TensorKind.INPUT else DEFAULT_DIFFS_SEARCH_RANGE
        )
    if params.percentage is None and params.method is CalibMethod.PERCENTILE:
        updates["percentage"] = DEFAULT_PERCENTAGE
    return replace(params, **updates) if updates else params


def model_scope(config: QuantConfig, kind: TensorKind) -> Scope:
    """The model-level parameters of `kind`."""
    params, sources = merge(
        config.overall_quantize_config,
        "overall_quantize_config",
        config.tensor_quantize_config.get(kind),
        join("tensor_quantize_config", kind.value),
    )
    return Scope(kind, params, sources, "the model")


def layer_scope(config: QuantConfig, index: int, kind: TensorKind) -> Scope:
    """The parameters of `kind` in layer entry `index`."""
    layer = config.layer_quantize_config[index]
    base = join("layer_quantize_config", index)
    params, sources = merge(
        layer.overall_quantize_config,
        join(base, "overall_quantize_config"),
        layer.tensor_quantize_config.get(kind),
        join(join(base, "tensor_quantize_config"), kind.value),
    )
    return Scope(kind, params, sources, base)


def scopes(config: QuantConfig) -> Iterator[Scope]:
    """Every (level, kind) whose tensors are quantized: the model's kinds, then each layer's."""
    for kind in config.quantizable_data_type:
        yield model_scope(config, kind)
    for index, layer in enumerate(config.layer_quantize_config):
        for kind in layer.quantizable_data_type:
            yield layer_scope(config, index, kind)


def find_layer(
    config: QuantConfig, layer_type: str | None, layer_name: str | None
) -> tuple[int, LayerQuantConfig] | None:
    """(index, entry) of the layer configuration for a layer: by name first, then by type."""
    layers = config.layer_quantize_config
    if layer_name is not None:
        for index, layer in enumerate(layers):
            if layer.matches_name(layer_name):
                return index, layer
    if layer_type is not None:
        for index, layer in enumerate(layers):
            if layer.matches_type(layer_type):
                return index, layer
    return None


def for_tensor(
    config: QuantConfig,
    kind: TensorKind | str,
    layer_type: str | None = None,
    layer_name: str | None = None,
) -> TensorQuantConfig:
    """The complete parameters for a tensor of `kind` in the layer (see the module docstring).

    For a kind the matching layer entry leaves unquantized, the model-level parameters are
    returned; ask `quantizes` whether the tensor is quantized at all.
    """
    tensor_kind = check_enum(TensorKind, kind, "for_tensor(kind)")
    found = find_layer(config, layer_type, layer_name)
    if found is not None and tensor_kind in found[1].quantizable_data_type:
        scope = layer_scope(config, found[0], tensor_kind)
    else:
        scope = model_scope(config, tensor_kind)
    from .dpu_rounding import dpu_activation_params  # it builds on this module's scopes

    return complete(dpu_activation_params(config, tensor_kind, scope.params), tensor_kind)


def quantizes(
    config: QuantConfig,
    kind: TensorKind | str,
    layer_type: str | None = None,
    layer_name: str | None = None,
) -> bool:
    """Whether a tensor of `kind` in the layer is quantized (see the module docstring)."""
    tensor_kind = check_enum(TensorKind, kind, "quantizes(kind)")
    found = find_layer(config, layer_type, layer_name)
    if found is not None:
        return tensor_kind in found[1].quantizable_data_type
    return tensor_kind in config.quantizable_data_type

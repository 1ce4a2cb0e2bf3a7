"""Whole-config checks run when a `QuantConfig` is built: layer entries that collide, settings
that can never apply, then every quantized (level, kind) against its target device's
restrictions and the general conflicts. The first problem found is raised as a
`QuantConfigError` naming the option path and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..messages import error
from .enums import TensorKind
from .conflicts import general_conflicts
from .resolve import Scope, scopes
from .restrictions import target_violations
from .schema import layer_type_key
from .validate import join, show

if TYPE_CHECKING:
    from .schema import QuantConfig, TensorQuantizeConfig


def check_config(config: QuantConfig) -> None:
    """Raise the first inconsistency of `config`; return None when it is usable."""
    _check_layer_entries(config)
    _check_unused_overrides(config.tensor_quantize_config, config.quantizable_data_type, "")
    for index, layer in enumerate(config.layer_quantize_config):
        _check_unused_overrides(
            layer.tensor_quantize_config,
            layer.quantizable_data_type,
            join("layer_quantize_config", index),
        )
    for scope in scopes(config):
        _check_scope(config, scope)


def _check_scope(config: QuantConfig, scope: Scope) -> None:
    target = config.target_device
    for v in target_violations(target, scope, listing_rounding=True):
        raise error(
            "QUANT_CONFIG_TARGET",
            path=scope.sources[v.param],
            value=show(getattr(scope.params, v.param)),
            target=target.value,
            kind=scope.kind.value,
            requirement=v.problem,
            hint=v.hint,
        )
    for v in general_conflicts(scope):
        raise error(
            "QUANT_CONFIG_CONFLICT",
            path=scope.sources[v.param],
            value=show(getattr(scope.params, v.param)),
            kind=scope.kind.value,
            problem=v.problem,
            hint=v.hint,
        )


def _check_layer_entries(config: QuantConfig) -> None:
    """No two entries may select the same layers (the reference silently kept the last one)."""
    seen: dict[tuple[str, str], int] = {}
    for index, layer in enumerate(config.layer_quantize_config):
        if layer.layer_name is not None:
            key, field = ("layer_name", layer.layer_name), "layer_name"
        else:
            assert layer.layer_type is not None
            key, field = ("layer_type", layer_type_key(layer.layer_type)), "layer_type"
        if key in seen:
            first = seen[key]
            raise error(
                "QUANT_CONFIG",
                path=join(join("layer_quantize_config", index), field),
                problem=f"it selects the same layers as layer_quantize_config[{first}] "
                f"({config.layer_quantize_config[first].selector})",
                hint="Merge the two entries into one.",
            )
        seen[key] = index


def _check_unused_overrides(
    overrides: TensorQuantizeConfig, kinds: tuple[TensorKind, ...], base: str
) -> None:
    """Overrides for a kind that is not quantized would be silently ignored: reject them."""
    for kind, _ in overrides.items():
        if kind not in kinds:
            path = join(join(base, "tensor_quantize_config"), kind.value)
            kinds_path = join(base, "quantizable_data_type")
            raise error(
                "QUANT_CONFIG",
                path=path,
                problem=f"'{kind.value}' is not in {kinds_path}, so these settings would never "
                "be used",
                hint=f"Add '{kind.value}' to {kinds_path}, or remove {path}.",
            )

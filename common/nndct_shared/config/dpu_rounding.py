"""Activations on a DPU are rounded half_up, whatever round_mode the guide's listing gives them.

The guide's "Default Configurations" listing sets one round_mode, std_round, for every tensor,
and calls the default "adapted to DPU device"; its DPU restrictions say half_up for
activations, and the reference tool's default does exactly that. So a DPU config that leaves
activations at std_round (for instance the listing written out as a file) gets half_up for
them, the DPU's rounding, and the flow says so with the note DPU_ACTIVATION_ROUND; any other
activation round mode on a DPU is still an error (`restrictions`). Weights, bias and inputs keep
their std_round. The result is exactly `default_config()`'s.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .enums import RoundMode, TargetDevice, TensorKind
from .resolve import scopes

if TYPE_CHECKING:
    from .schema import QuantConfig, TensorQuantConfig

__all__ = ["dpu_activation_params", "listing_rounding_paths"]


def _applies(config: QuantConfig, kind: TensorKind, round_mode: RoundMode) -> bool:
    return (config.target_device is TargetDevice.DPU and kind is TensorKind.ACTIVATION
            and round_mode is RoundMode.STD_ROUND)


def dpu_activation_params(config: QuantConfig, kind: TensorKind,
                          params: TensorQuantConfig) -> TensorQuantConfig:
    """`params` of a `kind` tensor, with half_up for a DPU activation that says std_round."""
    if _applies(config, kind, params.round_mode):
        return replace(params, round_mode=RoundMode.HALF_UP)
    return params


def listing_rounding_paths(config: QuantConfig) -> list[str]:
    """The option paths whose std_round reaches DPU activations (in the order of the config)."""
    paths: list[str] = []
    for scope in scopes(config):
        if _applies(config, scope.kind, scope.params.round_mode):
            path = scope.sources["round_mode"]
            if path not in paths:
                paths.append(path)
    return paths

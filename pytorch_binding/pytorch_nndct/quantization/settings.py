"""Per-tensor quantization settings of the CNN flow, resolved from the JSON config.

The defaults are the reference's (the config's `default_config()`): diffs calibration, 8 bit,
DPU round (half_up, kernel method 2) for activations and std_round (method 3) for params and
inputs, search range 5 (1 for inputs), the modal statistic over batches, and fix positions
capped at 12 for widths up to 8 bits (15 above), as vai_q_pytorch does. A config file changes
them per tensor kind and per layer. Options the config accepts but this flow does not implement
raise NotImplementedError naming the option, instead of being silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from nndct_shared.calibration import (
    DiffsObserver,
    EntropyObserver,
    MseObserver,
    Observer,
    ParamObserver,
    PercentileObserver,
)
from nndct_shared.cnn import FixPlan
from nndct_shared.config import CalibMethod, QuantConfig, RoundMode, ScaleType
from nndct_shared.config.resolve import scopes

from .fix_torch import method_code

__all__ = ["TensorSettings", "check_supported", "make_observer", "max_fix_pos_for", "resolve_settings"]

_ROUND_METHODS = {RoundMode.STD_ROUND: "std_round", RoundMode.HALF_UP: "half_up",
                  RoundMode.HALF_EVEN: "half_even", RoundMode.HALF_DOWN: "half_down",
                  RoundMode.FLOOR: "floor"}
#: Output-channel axis of each op's weight, for per-channel quantization.
_WEIGHT_AXIS = {"linear": 0, "conv1d": 0, "conv2d": 0, "conv_transpose2d": 1}


def max_fix_pos_for(bit_width: int) -> int:
    """vai_q_pytorch's cap on fix positions: 12 up to 8 bits, 15 above."""
    return 12 if bit_width <= 8 else 15


@dataclass(frozen=True)
class TensorSettings:
    """How one tensor is calibrated and fake-quantized."""

    name: str
    kind: str
    bit_width: int
    round_method: str
    method: CalibMethod
    search_range: int
    statistic: str
    percentage: float | None
    axis: int | None
    is_param: bool

    @property
    def round_code(self) -> int:
        return method_code(self.round_method)

    @property
    def max_fix_pos(self) -> int:
        return max_fix_pos_for(self.bit_width)


def check_supported(config: QuantConfig) -> None:
    """NotImplementedError naming any config option this flow cannot honour."""
    for flag in ("keep_first_last_layer_accuracy", "keep_add_layer_accuracy"):
        if getattr(config, flag):
            raise NotImplementedError(f"quant config option {flag}=true is not implemented by the "
                                      "CNN flow (the reference tool reserves it too); set it to false.")
    for scope in scopes(config):
        p, where = scope.params, f"{scope.where}, {scope.kind.value} tensors"
        if p.scale_type is not ScaleType.POWER_OF_TWO:
            raise NotImplementedError(f"quant config scale_type='{p.scale_type.value}' ({where}) is not "
                                      "implemented: the CNN flow quantizes with power-of-two scales only.")
        if not p.symmetry:
            raise NotImplementedError(f"quant config symmetry=false ({where}) is not implemented: the "
                                      "CNN flow has no zero points (asymmetric quantization).")
        if not p.signed:
            raise NotImplementedError(f"quant config signed=false ({where}) is not implemented: the "
                                      "CNN flow uses signed integer grids only.")
        if p.narrow_range:
            raise NotImplementedError(f"quant config narrow_range=true ({where}) is not implemented.")
        if p.per_channel and scope.kind.value != "weights":
            raise NotImplementedError(f"quant config per_channel=true ({where}) is implemented for "
                                      "weights only.")
        if p.per_channel and p.method not in (CalibMethod.DIFFS, CalibMethod.MAXMIN):
            raise NotImplementedError(f"quant config per_channel=true with method '{p.method.value}' "
                                      f"({where}) is not implemented (only diffs and maxmin).")


def resolve_settings(plan: FixPlan, config: QuantConfig, layer_types: Mapping[str, str],
                     op_types: Mapping[str, str]) -> dict[str, TensorSettings]:
    """Settings of every planned tensor the config quantizes, keyed by tensor name."""
    result: dict[str, TensorSettings] = {}
    for is_param, table in ((True, plan.params), (False, plan.outputs)):
        for name, planned in table.items():
            layer_type, layer_name = layer_types.get(planned.node), planned.node
            if not config.quantizes(planned.kind, layer_type, layer_name):
                continue
            p = config.for_tensor(planned.kind, layer_type, layer_name)
            axis = None
            if p.per_channel and planned.role == "weight":
                axis = _WEIGHT_AXIS.get(op_types[planned.node])
            result[name] = TensorSettings(
                name=name, kind=planned.kind, bit_width=p.bit_width,
                round_method=_ROUND_METHODS[p.round_mode], method=p.method,
                search_range=1 if p.method is CalibMethod.MAXMIN else int(p.diffs_search_range),
                statistic=p.calib_statistic_method.value, percentage=p.percentage, axis=axis,
                is_param=is_param)
    return result


def make_observer(s: TensorSettings) -> Observer:
    """The calibration observer of one tensor (`maxmin` is diffs with search range 1, per call,
    then the statistic over calls, as the reference's `nndct_diffs_mode="maxmin"`)."""
    cap = s.max_fix_pos
    if s.method in (CalibMethod.DIFFS, CalibMethod.MAXMIN):
        if s.is_param:
            return ParamObserver(s.bit_width, s.search_range, s.round_method, cap, axis=s.axis, name=s.name)
        return DiffsObserver(s.bit_width, s.search_range, s.round_method, cap, s.statistic, name=s.name)
    if s.method is CalibMethod.PERCENTILE:
        return PercentileObserver(s.percentage, s.bit_width, max_fix_pos=cap, name=s.name)
    if s.method is CalibMethod.MSE:
        return MseObserver(s.bit_width, max_fix_pos=cap, name=s.name)
    return EntropyObserver(s.bit_width, max_fix_pos=cap, name=s.name)

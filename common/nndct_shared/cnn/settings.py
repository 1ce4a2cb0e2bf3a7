"""Per-tensor quantization settings of the CNN flow, resolved from the JSON config.

The defaults are the reference's (the config's `default_config()`): diffs calibration, 8 bit,
DPU round (half_up, kernel method 2) for activations and std_round (method 3) for params and
inputs, search range 5 (1 for inputs), the modal statistic over batches, and fix positions
capped at 12 for widths up to 8 bits (15 above), as vai_q_pytorch does. A config file changes
them per tensor kind and per layer. Options the config accepts but this flow does not implement
raise NotImplementedError naming the option, instead of being silently ignored.

`scale_type: "float"` tensors (with any `symmetry`, `signed`, `narrow_range`) are calibrated by
`FloatRangeObserver` and fake-quantized with a float scale and an integer zero point; the
semantics are in `nndct_shared.calibration.float_scale`. Still not implemented (they raise
NotImplementedError): `narrow_range: true` with power-of-two scales (the fix position grid is
signed, symmetric and full-range), and float scales with `per_channel: true` or with the methods
mse and entropy (use maxmin or percentile). The config checks (QUANT_CONFIG_CONFLICT) already
reject power-of-two with `symmetry: false` or `signed: false` (the check below keeps naming
them too), float scales with diffs or (for activations) the modal statistic, and
`narrow_range: true` with `signed: false`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from nndct_shared.calibration import (
    DiffsObserver,
    EntropyObserver,
    FloatQuantSpec,
    FloatRangeObserver,
    MseObserver,
    Observer,
    ParamObserver,
    PercentileObserver,
)
from nndct_shared.cnn import FixPlan
from nndct_shared.config import CalibMethod, QuantConfig, ScaleType
from nndct_shared.config.resolve import scopes
from nndct_shared.graph.ops import get_op

from nndct_shared.kernels.methods import method_code

__all__ = ["TensorSettings", "check_supported", "config_layer_name", "make_observer", "max_fix_pos_for",
           "resolve_settings"]



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
    scale_type: str = "poweroftwo"
    symmetric: bool = True
    signed: bool = True
    narrow_range: bool = False

    @property
    def is_float(self) -> bool:
        """True for a float-scale tensor (scale and zero point instead of a fix position)."""
        return self.scale_type == ScaleType.FLOAT.value

    @property
    def float_spec(self) -> FloatQuantSpec:
        return FloatQuantSpec(self.bit_width, self.signed, self.narrow_range, self.symmetric)

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
        if p.scale_type is ScaleType.FLOAT:
            if p.per_channel:
                raise NotImplementedError(f"quant config per_channel=true with scale_type='float' "
                                          f"({where}) is not implemented: float scales are per tensor.")
            if p.method not in (CalibMethod.MAXMIN, CalibMethod.PERCENTILE):
                raise NotImplementedError(f"quant config method '{p.method.value}' with scale_type="
                                          f"'float' ({where}) is not implemented; use method 'maxmin' "
                                          "or 'percentile'.")
            continue
        if not p.symmetry:
            raise NotImplementedError(f"quant config symmetry=false with scale_type='poweroftwo' "
                                      f"({where}) is not implemented: fix positions have no zero "
                                      "point; use scale_type 'float' for asymmetric quantization.")
        if not p.signed:
            raise NotImplementedError(f"quant config signed=false with scale_type='poweroftwo' "
                                      f"({where}) is not implemented: use scale_type 'float'.")
        if p.narrow_range:
            raise NotImplementedError(f"quant config narrow_range=true with scale_type='poweroftwo' "
                                      f"({where}) is not implemented: use scale_type 'float'.")
        if p.per_channel and scope.kind.value != "weights":
            raise NotImplementedError(f"quant config per_channel=true ({where}) is implemented for "
                                      "weights only.")
        if p.per_channel and p.method not in (CalibMethod.DIFFS, CalibMethod.MAXMIN):
            raise NotImplementedError(f"quant config per_channel=true with method '{p.method.value}' "
                                      f"({where}) is not implemented (only diffs and maxmin).")


def config_layer_name(config: QuantConfig, node: str, traced_names: Mapping[str, str]) -> str:
    """The name a config's `layer_name` selects node `node` by: its nndct name, or the name the
    front end traced (as older releases named layers, e.g. "ResNet::ResNet/Conv2d[conv1]/input.2",
    shown in `<Model>.py` beside the nndct name) when only that one is configured."""
    traced = traced_names.get(node)
    if traced is None or config.layer_for(None, node) is not None:
        return node
    return traced if config.layer_for(None, traced) is not None else node


def resolve_settings(plan: FixPlan, config: QuantConfig, layer_types: Mapping[str, str],
                     op_types: Mapping[str, str], traced_names: Mapping[str, str] | None = None,
                     ) -> dict[str, TensorSettings]:
    """Settings of every planned tensor the config quantizes, keyed by tensor name (a layer
    configured by its traced name applies too: `config_layer_name`)."""
    result: dict[str, TensorSettings] = {}
    for is_param, table in ((True, plan.params), (False, plan.outputs)):
        for name, planned in table.items():
            layer_type = layer_types.get(planned.node)
            layer_name = config_layer_name(config, planned.node, traced_names or {})
            if not config.quantizes(planned.kind, layer_type, layer_name):
                continue
            p = config.for_tensor(planned.kind, layer_type, layer_name)
            axis = None
            if p.per_channel and planned.role == "weight":
                axis = get_op(op_types[planned.node]).weight_axis  # output channels
            result[name] = TensorSettings(
                name=name, kind=planned.kind, bit_width=p.bit_width,
                round_method=p.round_mode.value, method=p.method,
                search_range=1 if p.method is CalibMethod.MAXMIN else int(p.diffs_search_range),
                statistic=p.calib_statistic_method.value, percentage=p.percentage, axis=axis,
                is_param=is_param, scale_type=p.scale_type.value, symmetric=bool(p.symmetry),
                signed=bool(p.signed), narrow_range=bool(p.narrow_range))
    return result


def make_observer(s: TensorSettings) -> Observer:
    """The calibration observer of one tensor (`maxmin` is diffs with search range 1, per call,
    then the statistic over calls, as the reference's `nndct_diffs_mode="maxmin"`)."""
    if s.is_float:
        if s.method not in (CalibMethod.MAXMIN, CalibMethod.PERCENTILE):
            raise NotImplementedError(f"method '{s.method.value}' with scale_type='float' is not "
                                      f"implemented (tensor '{s.name}').")
        return FloatRangeObserver(s.bit_width, s.signed, s.narrow_range, s.symmetric, s.statistic,
                                  s.percentage if s.method is CalibMethod.PERCENTILE else None,
                                  name=s.name)
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

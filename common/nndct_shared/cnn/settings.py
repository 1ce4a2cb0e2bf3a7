"""Per-tensor quantization settings of the CNN flow, resolved from the JSON config.

The defaults are the reference's (the config's `default_config()`): diffs calibration, 8 bit,
DPU round (half_up, kernel method 2) for activations and std_round (method 3) for params and
inputs, search range 5 (1 for inputs), the modal statistic over batches, and fix positions
capped at 12 for widths up to 8 bits (15 above), as vai_q_pytorch does. A config file changes
them per tensor kind and per layer; every combination the config checks accept is implemented:
which observer calibrates a tensor is `nndct_shared.calibration.factory`'s table, and
the front end's fake quantization (`pytorch_nndct.quantization.fake_quant`) quantizes it (power-of-two positions, narrow range included, or
float scales with any `symmetry`, `signed`, `narrow_range`; per channel for weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from nndct_shared.calibration import FloatQuantSpec, Observer
from nndct_shared.calibration import make_observer as calibration_observer
from nndct_shared.cnn import FixPlan
from nndct_shared.config import CalibMethod, QuantConfig, ScaleType
from nndct_shared.graph.ops import get_op
from nndct_shared.kernels.methods import method_code

__all__ = ["TensorSettings", "config_layer_name", "make_observer", "max_fix_pos_for", "resolve_settings"]


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
        """True for a tensor with a scale and zero point instead of a fix position: float scales,
        and power-of-two scales on an asymmetric or unsigned grid (`calibration.factory`)."""
        return self.scale_type == ScaleType.FLOAT.value or not (self.symmetric and self.signed)

    @property
    def float_spec(self) -> FloatQuantSpec:
        return FloatQuantSpec(self.bit_width, self.signed, self.narrow_range, self.symmetric)

    @property
    def round_code(self) -> int:
        return method_code(self.round_method)

    @property
    def max_fix_pos(self) -> int:
        return max_fix_pos_for(self.bit_width)


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
    """The calibration observer of one tensor (`nndct_shared.calibration.factory`)."""
    return calibration_observer(s)

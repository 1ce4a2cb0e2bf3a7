"""Ready-made configurations: the guide's default and the RNN quantizer's LSTM settings."""

from __future__ import annotations

from .enums import (
    CalibMethod,
    CalibStatistic,
    RoundMode,
    ScaleType,
    TargetDevice,
)
from .resolve import INPUT_DIFFS_SEARCH_RANGE
from .schema import ALL_KINDS, QuantConfig, TensorOverrides, TensorQuantConfig, TensorQuantizeConfig
from .validate import check_bit_width, check_enum

__all__ = ["default_config", "lstm_config"]


def default_config(
    bitwidth: int = 8, target_device: TargetDevice | str = TargetDevice.DPU
) -> QuantConfig:
    """The configuration used when no config file is given (guide, "Default Configurations").

    The guide's values, at the top level and in ``overall_quantize_config``::

        convert_relu6_to_relu false, include_cle true, include_bias_corr true, target_device
        DPU, quantizable_data_type [input, weights, bias, activation], bit_width 8, method
        diffs, round_mode std_round, symmetry true, per_channel false, signed true,
        narrow_range false, scale_type poweroftwo, calib_statistic_method modal

    plus ``convert_silu_to_hswish``, ``keep_first_last_layer_accuracy`` and
    ``keep_add_layer_accuracy`` false (the reference's Quant_Config.md defaults), and
    ``tensor_quantize_config.activation.round_mode = half_up``: the guide's flat listing omits
    it, but its DPU restrictions require half_up for activations and the reference tool's
    default does exactly this (activations use the DPU round, parameters std_round).

    `bitwidth` replaces every tensor's bit width (the torch_quantizer ``bitwidth`` argument);
    on target DPU only 8 is accepted, so other widths need `target_device` "CPU" or "GPU".
    """
    bit_width = check_bit_width(bitwidth, "default_config(bitwidth)")
    target = check_enum(TargetDevice, target_device, "default_config(target_device)")
    return QuantConfig(
        convert_relu6_to_relu=False,
        convert_silu_to_hswish=False,
        include_cle=True,
        keep_first_last_layer_accuracy=False,
        keep_add_layer_accuracy=False,
        include_bias_corr=True,
        target_device=target,
        quantizable_data_type=ALL_KINDS,
        overall_quantize_config=TensorQuantConfig(
            bit_width=bit_width,
            method=CalibMethod.DIFFS,
            round_mode=RoundMode.STD_ROUND,
            symmetry=True,
            per_channel=False,
            signed=True,
            narrow_range=False,
            scale_type=ScaleType.POWER_OF_TWO,
            calib_statistic_method=CalibStatistic.MODAL,
        ),
        tensor_quantize_config=TensorQuantizeConfig(
            activation=TensorOverrides(round_mode=RoundMode.HALF_UP),
        ),
    )


def lstm_config(bitwidth: int = 16) -> QuantConfig:
    """The RNN quantizer's settings (``torch_quantizer(..., lstm=True)``), as a `QuantConfig`.

    * activations and inputs: 16 bit, diffs, floor rounding (kernel method 4);
    * weights and bias: `bitwidth` bits (at most 16), diffs, std_round (kernel method 3);
    * all tensors: power-of-two scales, symmetric, signed, per tensor, not narrow, modal
      statistic across calls;
    * input tensors: diffs search range 1 (fix position from the max only), others 5;
    * cross-layer equalization and bias correction off (the LSTM flow forces both off);
    * target_device DPU_RNN.
    """
    bit_width = check_bit_width(bitwidth, "lstm_config(bitwidth)")
    params = TensorOverrides(bit_width=bit_width, round_mode=RoundMode.STD_ROUND)
    return QuantConfig(
        convert_relu6_to_relu=False,
        convert_silu_to_hswish=False,
        include_cle=False,
        keep_first_last_layer_accuracy=False,
        keep_add_layer_accuracy=False,
        include_bias_corr=False,
        target_device=TargetDevice.DPU_RNN,
        quantizable_data_type=ALL_KINDS,
        overall_quantize_config=TensorQuantConfig(
            bit_width=16,
            method=CalibMethod.DIFFS,
            round_mode=RoundMode.FLOOR,
            symmetry=True,
            per_channel=False,
            signed=True,
            narrow_range=False,
            scale_type=ScaleType.POWER_OF_TWO,
            calib_statistic_method=CalibStatistic.MODAL,
        ),
        tensor_quantize_config=TensorQuantizeConfig(
            input=TensorOverrides(diffs_search_range=INPUT_DIFFS_SEARCH_RANGE),
            weights=params,
            bias=params,
        ),
    )

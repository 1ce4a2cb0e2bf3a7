"""default_config() is the guide's default; lstm_config() is the RNN quantizer's settings."""

from __future__ import annotations

import pytest

from nndct_shared.config import (
    CalibMethod,
    CalibStatistic,
    QuantConfig,
    RoundMode,
    ScaleType,
    TargetDevice,
    TensorKind,
    TensorQuantConfig,
    config_differences,
    default_config,
    load_config,
    lstm_config,
)
from nndct_shared.messages import QuantConfigError

GUIDE_DEFAULT = {
    # "a. Default Configurations" of the user guide ...
    "convert_relu6_to_relu": False,
    "include_cle": True,
    "include_bias_corr": True,
    "target_device": "DPU",
    "quantizable_data_type": ["input", "weights", "bias", "activation"],
    "overall_quantize_config": {
        "bit_width": 8,
        "method": "diffs",
        "round_mode": "std_round",
        "symmetry": True,
        "per_channel": False,
        "signed": True,
        "narrow_range": False,
        "scale_type": "poweroftwo",
        "calib_statistic_method": "modal",
    },
    # ... the reserved / reference-only switches at their Quant_Config.md defaults ...
    "convert_silu_to_hswish": False,
    "keep_first_last_layer_accuracy": False,
    "keep_add_layer_accuracy": False,
    # ... and the DPU's activation rounding, which the flat listing omits.
    "tensor_quantize_config": {"activation": {"round_mode": "half_up"}},
}


def test_default_config_is_the_guides_default() -> None:
    assert default_config().to_dict() == GUIDE_DEFAULT


def test_default_config_per_kind() -> None:
    cfg = default_config()
    for kind in TensorKind:
        params = cfg.for_tensor(kind)
        assert params.bit_width == 8
        assert params.method is CalibMethod.DIFFS
        assert params.scale_type is ScaleType.POWER_OF_TWO
        assert params.calib_statistic_method is CalibStatistic.MODAL
        assert (params.symmetry, params.per_channel, params.signed, params.narrow_range) == (
            True, False, True, False
        )
        expected_round = RoundMode.HALF_UP if kind is TensorKind.ACTIVATION else RoundMode.STD_ROUND
        assert params.round_mode is expected_round


def test_default_config_other_bitwidth_needs_a_non_dpu_target() -> None:
    with pytest.raises(QuantConfigError) as info:
        default_config(16)
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG_TARGET"
    assert "lstm_config()" in info.value.fix
    cfg = default_config(4, target_device="CPU")
    assert cfg.target_device is TargetDevice.CPU
    assert {cfg.for_tensor(k).bit_width for k in TensorKind} == {4}


def test_default_config_rejects_illegal_bitwidth() -> None:
    with pytest.raises(QuantConfigError) as info:
        default_config(40)
    assert info.value.msg_id == "QUANTIZER_TORCH_ILLEGAL_BITWIDTH"
    assert "at 'default_config(bitwidth)'" in str(info.value)


def test_lstm_config_matches_the_rnn_quantizer() -> None:
    cfg = lstm_config()
    assert cfg.target_device is TargetDevice.DPU_RNN
    assert (cfg.include_cle, cfg.include_bias_corr) == (False, False)
    common = dict(
        method=CalibMethod.DIFFS,
        symmetry=True,
        per_channel=False,
        signed=True,
        narrow_range=False,
        scale_type=ScaleType.POWER_OF_TWO,
        calib_statistic_method=CalibStatistic.MODAL,
    )
    assert cfg.for_tensor("activation") == TensorQuantConfig(
        bit_width=16, round_mode=RoundMode.FLOOR, diffs_search_range=5, **common
    )
    assert cfg.for_tensor("input") == TensorQuantConfig(
        bit_width=16, round_mode=RoundMode.FLOOR, diffs_search_range=1, **common
    )
    for kind in ("weights", "bias"):
        assert cfg.for_tensor(kind) == TensorQuantConfig(
            bit_width=16, round_mode=RoundMode.STD_ROUND, diffs_search_range=5, **common
        )


def test_lstm_config_bitwidth_sets_parameters_only() -> None:
    cfg = lstm_config(8)
    assert [cfg.for_tensor(k).bit_width for k in TensorKind] == [16, 8, 8, 16]
    with pytest.raises(QuantConfigError, match="at most 16 bits"):
        lstm_config(24)


@pytest.mark.parametrize(
    ("bits", "signed", "symmetry", "narrow", "low", "high"),
    [
        (8, True, True, False, -128, 127),
        (8, True, True, True, -127, 127),
        (16, True, True, False, -32768, 32767),
        (8, False, True, False, 0, 255),
        (8, True, False, False, 0, 255),
        (4, True, True, False, -8, 7),
    ],
)
def test_integer_range(bits, signed, symmetry, narrow, low, high) -> None:
    params = TensorQuantConfig(
        bit_width=bits, method="maxmin", round_mode="half_even", symmetry=symmetry,
        per_channel=False, signed=signed, narrow_range=narrow, scale_type="float",
        calib_statistic_method="max",
    )
    assert (params.quant_min, params.quant_max) == (low, high)


def test_config_differences(config_data_dir) -> None:
    a = load_config(config_data_dir / "guide_example_config.json")
    data = a.to_dict()
    data["layer_quantize_config"][1]["tensor_quantize_config"]["activation"]["round_mode"] = (
        "half_down"
    )
    data["include_cle"] = True
    b = QuantConfig.from_dict(data)
    assert config_differences(a, b) == [
        "include_cle",
        "layer_quantize_config[1].tensor_quantize_config.activation.round_mode",
    ]
    assert config_differences(a, a) == []
    assert config_differences(default_config(), lstm_config())[:3] == [
        "include_bias_corr", "include_cle", "overall_quantize_config.bit_width"
    ]

"""Resolution order: overall -> tensor kind -> layer type -> layer name, with defaults filled."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nndct_shared.config import (
    DEFAULT_DIFFS_SEARCH_RANGE,
    DEFAULT_PERCENTAGE,
    INPUT_DIFFS_SEARCH_RANGE,
    CalibMethod,
    RoundMode,
    TensorKind,
    default_config,
    load_config,
)
from nndct_shared.messages import QuantConfigError

CONV = "torch.nn.Conv2d"
CONV1 = "ResNet::ResNet/Conv2d[conv1]/input.2"


@pytest.fixture
def example(example_dict):
    return load_config(example_dict)


def test_model_level_overall_then_tensor_override(example) -> None:
    weights = example.for_tensor("weights")
    assert (weights.method, weights.round_mode, weights.per_channel) == (
        CalibMethod.MAXMIN, RoundMode.HALF_EVEN, False
    )
    activation = example.for_tensor(TensorKind.ACTIVATION)
    assert activation.method is CalibMethod.MSE  # tensor_quantize_config.activation
    assert activation.round_mode is RoundMode.HALF_EVEN  # from overall


def test_layer_type_overrides_model(example) -> None:
    assert example.for_tensor("weights", layer_type=CONV).per_channel is True
    activation = example.for_tensor("activation", layer_type=CONV)
    assert activation.method is CalibMethod.ENTROPY
    # bias has no override in the layer: the layer's overall config applies.
    layer_overall = example.layer_quantize_config[0].overall_quantize_config
    assert example.for_tensor("bias", layer_type=CONV) == replace(
        layer_overall, diffs_search_range=DEFAULT_DIFFS_SEARCH_RANGE
    )


def test_layer_overall_replaces_the_models_tensor_overrides(example) -> None:
    """A layer's overall_quantize_config is complete: the model's activation mse is not used."""
    activation = example.for_tensor("activation", layer_name=CONV1)
    assert activation.method is CalibMethod.MAXMIN
    assert activation.round_mode is RoundMode.HALF_UP


def test_layer_name_beats_layer_type(example) -> None:
    activation = example.for_tensor("activation", layer_type=CONV, layer_name=CONV1)
    assert activation.method is CalibMethod.MAXMIN  # not the type entry's entropy
    assert activation.round_mode is RoundMode.HALF_UP
    assert example.for_tensor("weights", layer_type=CONV, layer_name=CONV1).per_channel is False
    assert example.layer_for(CONV, CONV1) is example.layer_quantize_config[1]


def test_unknown_layer_name_falls_back_to_type_then_model(example) -> None:
    assert example.for_tensor("activation", CONV, "ResNet::other").method is CalibMethod.ENTROPY
    assert example.for_tensor("activation", "torch.nn.Linear", "x").method is CalibMethod.MSE
    assert example.layer_for("torch.nn.Linear", "x") is None


@pytest.mark.parametrize(
    ("layer_type", "matches"),
    [
        ("torch.nn.Conv2d", True),
        ("Conv2d", True),
        ("pytorch_nndct.nn.Conv2d", True),
        ("torch.nn.Conv1d", False),
        ("conv2d", False),
        ("torch.nn.Conv2dTranspose", False),
    ],
)
def test_layer_type_matches_on_last_component(example, layer_type, matches) -> None:
    expected = CalibMethod.ENTROPY if matches else CalibMethod.MSE
    assert example.for_tensor("activation", layer_type=layer_type).method is expected


def test_layer_kinds_decide_what_is_quantized(example) -> None:
    # The Conv2d entries quantize weights, bias and activation but not input.
    assert example.quantizes("weights", layer_type=CONV)
    assert not example.quantizes("input", layer_type=CONV)
    assert not example.quantizes("input", layer_name=CONV1)
    # for_tensor of a kind the layer leaves in float gives the model-level parameters.
    assert example.for_tensor("input", layer_type=CONV) == example.for_tensor("input")
    assert example.quantizes("input")


def test_model_kinds_decide_what_is_quantized(cpu_dict) -> None:
    cpu_dict["quantizable_data_type"] = ["weights", "activation"]
    cfg = load_config(cpu_dict)
    assert [k.value for k in TensorKind if cfg.quantizes(k)] == ["weights", "activation"]


def test_optional_parameters_get_reference_defaults() -> None:
    cfg = default_config()
    assert cfg.for_tensor("input").diffs_search_range == INPUT_DIFFS_SEARCH_RANGE == 1
    for kind in ("weights", "bias", "activation"):
        assert cfg.for_tensor(kind).diffs_search_range == DEFAULT_DIFFS_SEARCH_RANGE == 5
        assert cfg.for_tensor(kind).percentage is None  # not percentile


def test_percentage_default_and_explicit(cpu_dict) -> None:
    cpu_dict["tensor_quantize_config"] = {
        "activation": {"method": "percentile"},
        "weights": {"method": "percentile", "percentage": 99.9},
    }
    cfg = load_config(cpu_dict)
    assert cfg.for_tensor("activation").percentage == DEFAULT_PERCENTAGE == 99.99
    assert cfg.for_tensor("weights").percentage == 99.9
    assert cfg.for_tensor("input").percentage is None


def test_explicit_search_range_is_kept() -> None:
    data = default_config().to_dict()
    data["tensor_quantize_config"]["input"] = {"diffs_search_range": 3}
    data["overall_quantize_config"]["diffs_search_range"] = 7
    cfg = load_config(data)
    assert cfg.for_tensor("input").diffs_search_range == 3
    assert cfg.for_tensor("weights").diffs_search_range == 7


def test_unknown_kind_is_a_config_error(example) -> None:
    with pytest.raises(QuantConfigError) as info:
        example.for_tensor("weight")
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG_VALUE"
    assert "'for_tensor(kind)' = \"weight\" is not valid (did you mean 'weights'?)" in str(
        info.value
    )

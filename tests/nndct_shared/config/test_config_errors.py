"""Every kind of bad configuration is rejected with the right message ID, path and fix."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest

from nndct_shared.config import (
    QuantConfig,
    TensorQuantConfig,
    TensorQuantizeConfig,
    default_config,
    load_config,
    lstm_config,
)
from nndct_shared.messages import QuantConfigError, use_frontend

ID = "QUANTIZER_TORCH_"
Mutator = Callable[[dict[str, Any]], None]


def reject(data: dict[str, Any]) -> QuantConfigError:
    with pytest.raises(QuantConfigError) as info:
        load_config(data)
    assert isinstance(info.value, ValueError)
    return info.value


def overall(**kw: Any) -> Mutator:
    return lambda d: d["overall_quantize_config"].update(kw)


def tensor(kind: str, **kw: Any) -> Mutator:
    return lambda d: d.setdefault("tensor_quantize_config", {}).setdefault(kind, {}).update(kw)


# --- unknown and missing keys -------------------------------------------------------------------


def _set(path: list[Any], key: str, value: Any) -> Mutator:
    def mutate(d: dict[str, Any]) -> None:
        node: Any = d
        for step in path:
            node = node[step]
        node[key] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "path", "suggestion", "a_valid_key"),
    [
        (_set([], "include_cel", True), "include_cel", "include_cle", "target_device"),
        (_set([], "bit_width", 8), "bit_width", None, "overall_quantize_config"),
        (_set(["overall_quantize_config"], "bit width", 8), "overall_quantize_config.bit width",
         "bit_width", "calib_statistic_method"),
        (_set(["tensor_quantize_config"], "activations", {}),
         "tensor_quantize_config.activations", "activation", "weights"),
        (_set(["tensor_quantize_config", "activation"], "methd", "mse"),
         "tensor_quantize_config.activation.methd", "method", "round_mode"),
        (_set(["layer_quantize_config", 0], "layer_types", None),
         "layer_quantize_config[0].layer_types", "layer_type", "layer_name"),
        (_set(["layer_quantize_config", 1, "overall_quantize_config"], "round_mod", "half_up"),
         "layer_quantize_config[1].overall_quantize_config.round_mod", "round_mode", "signed"),
        (_set(["layer_quantize_config", 0, "tensor_quantize_config", "weights"], "zzz", 1),
         "layer_quantize_config[0].tensor_quantize_config.weights.zzz", None, "per_channel"),
    ],
)
def test_unknown_key_names_path_valid_keys_and_suggestion(
    example_dict, mutate, path, suggestion, a_valid_key
) -> None:
    mutate(example_dict)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_UNKNOWN_KEY"
    text = str(err)
    assert f"Unknown key '{path}'" in text
    assert a_valid_key in text.split("Valid keys", 1)[1]
    if suggestion:
        assert f"(did you mean '{suggestion}'?)" in text
    else:
        assert "did you mean" not in text
    assert "Fix: Remove or rename" in text


@pytest.mark.parametrize(
    ("mutate", "where", "missing"),
    [
        (lambda d: d.pop("target_device"), "at the top level", "target_device"),
        (lambda d: d.pop("overall_quantize_config"), "at the top level", "overall_quantize_config"),
        (lambda d: d["overall_quantize_config"].pop("signed"), "in 'overall_quantize_config'",
         "signed"),
        (lambda d: d["layer_quantize_config"][1].pop("quantizable_data_type"),
         "in 'layer_quantize_config[1]'", "quantizable_data_type"),
        (lambda d: d["layer_quantize_config"][0]["overall_quantize_config"].pop("method"),
         "in 'layer_quantize_config[0].overall_quantize_config'", "method"),
    ],
)
def test_missing_required_key(example_dict, mutate, where, missing) -> None:
    mutate(example_dict)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_MISSING_KEY"
    assert f"Required key(s) missing {where}: {missing}." in str(err)


def test_missing_keys_are_listed_together(cpu_dict) -> None:
    for key in ("narrow_range", "scale_type"):
        del cpu_dict["overall_quantize_config"][key]
    err = reject(cpu_dict)
    assert "missing in 'overall_quantize_config': narrow_range, scale_type." in str(err)


# --- wrong types and values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "path", "expected", "got"),
    [
        (_set([], "include_cle", "true"), "include_cle", "a boolean (true or false)",
         'a string "true"'),
        (overall(symmetry=1), "overall_quantize_config.symmetry", "a boolean", "an integer 1"),
        (overall(method=5), "overall_quantize_config.method", "a string, one of maxmin",
         "an integer 5"),
        (_set([], "quantizable_data_type", "input"), "quantizable_data_type", "a list of strings",
         'a string "input"'),
        (_set([], "layer_quantize_config", {}), "layer_quantize_config", "a list of layer",
         "an object {}"),
        (_set([], "tensor_quantize_config", []), "tensor_quantize_config", "an object",
         "a list []"),
        (_set([], "overall_quantize_config", None), "overall_quantize_config", "an object",
         "null"),
        (overall(percentage="99"), "overall_quantize_config.percentage", "a number",
         'a string "99"'),
        (overall(diffs_search_range=2.0), "overall_quantize_config.diffs_search_range",
         "an integer", "a number 2.0"),
        (_set(["layer_quantize_config", 0], "layer_type", 5),
         "layer_quantize_config[0].layer_type", "null or a string", "an integer 5"),
        (tensor("weights", signed=None), "tensor_quantize_config.weights.signed", "a boolean",
         "null"),
    ],
)
def test_wrong_type(example_dict, mutate, path, expected, got) -> None:
    mutate(example_dict)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_TYPE"
    assert f"'{path}' must be {expected}" in str(err)
    assert f"got {got}." in str(err)


def test_top_level_must_be_an_object(tmp_path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(QuantConfigError) as info:
        load_config(path)
    assert info.value.msg_id == ID + "QUANT_CONFIG_TYPE"
    assert "'(top level)' must be an object ({...}), got a list [1, 2]." in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "path", "suggestion", "allowed"),
    [
        (overall(method="minmax"), "overall_quantize_config.method", "maxmin",
         "maxmin, percentile, entropy, mse, diffs"),
        (tensor("activation", round_mode="half_odd"),
         "tensor_quantize_config.activation.round_mode", "half_down",
         "std_round, half_even, half_up, half_down, floor"),
        (overall(scale_type="power_of_two"), "overall_quantize_config.scale_type", "poweroftwo",
         "float, poweroftwo"),
        (overall(calib_statistic_method="mode"), "overall_quantize_config.calib_statistic_method",
         "modal", "modal, max, mean, median"),
        (_set([], "target_device", "FPGA"), "target_device", None, "DPU, CPU, GPU, DPU_RNN"),
        (_set([], "quantizable_data_type", ["input", "activations"]), "quantizable_data_type[1]",
         "activation", "input, weights, bias, activation"),
    ],
)
def test_value_not_allowed(example_dict, mutate, path, suggestion, allowed) -> None:
    mutate(example_dict)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_VALUE"
    text = str(err)
    assert f"'{path}' = " in text
    assert f"Allowed: {allowed}." in text
    if suggestion:
        assert f"(did you mean '{suggestion}'?)" in text
    else:
        assert "did you mean" not in text


@pytest.mark.parametrize(
    ("mutate", "path", "allowed"),
    [
        (_set([], "quantizable_data_type", []), "quantizable_data_type", "a non-empty list"),
        (_set([], "quantizable_data_type", ["bias", "bias"]), "quantizable_data_type[1]",
         "each tensor kind at most once"),
        (overall(method="percentile", percentage=0), "overall_quantize_config.percentage",
         "greater than 0 and at most 100"),
        (overall(method="percentile", percentage=100.5), "overall_quantize_config.percentage",
         "greater than 0 and at most 100"),
        (overall(percentage=math.nan), "overall_quantize_config.percentage",
         "greater than 0 and at most 100"),
        (overall(diffs_search_range=0), "overall_quantize_config.diffs_search_range",
         "an integer from 1 to 32"),
        (_set(["layer_quantize_config", 1], "layer_name", "  "),
         "layer_quantize_config[1].layer_name", "null or a non-empty string"),
    ],
)
def test_value_out_of_range(example_dict, mutate, path, allowed) -> None:
    mutate(example_dict)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_VALUE"
    assert f"'{path}' = " in str(err)
    assert allowed in str(err)


@pytest.mark.parametrize("value", [1, 33, 0, -8, "8", True, 8.0])
def test_illegal_bit_width(cpu_dict, value) -> None:
    cpu_dict["overall_quantize_config"]["bit_width"] = value
    err = reject(cpu_dict)
    assert err.msg_id == ID + "ILLEGAL_BITWIDTH"
    assert f"Bit width {value!r} at 'overall_quantize_config.bit_width' is illegal" in str(err)
    assert "an integer in [2, 32]" in str(err)


def test_percentage_accepts_integers_and_100(cpu_dict) -> None:
    cpu_dict["overall_quantize_config"].update(method="percentile", percentage=100)
    assert load_config(cpu_dict).overall_quantize_config.percentage == 100.0


# --- conflicts (any target) ---------------------------------------------------------------------


CONFLICTS = [
    # (mutations on the CPU float/maxmin config, path, kind, words of the problem)
    ([overall(per_channel=True)], "overall_quantize_config.per_channel", "input",
     "per-channel quantization is only supported for weights"),
    ([tensor("activation", per_channel=True)], "tensor_quantize_config.activation.per_channel",
     "activation", "only supported for weights"),
    ([overall(method="diffs")], "overall_quantize_config.method", "input",
     "method 'diffs' searches power-of-two fix positions, but scale_type is 'float' "
     "('overall_quantize_config.scale_type')"),
    ([overall(symmetry=False, method="mse")], "overall_quantize_config.method", "input",
     "method 'mse' is not supported with asymmetric quantization "
     "('overall_quantize_config.symmetry' = false)"),
    ([overall(symmetry=False), tensor("activation", method="entropy")],
     "tensor_quantize_config.activation.method", "activation",
     "method 'entropy' is not supported with asymmetric quantization"),
    ([overall(calib_statistic_method="modal")], "overall_quantize_config.calib_statistic_method",
     "input", "the 'modal' statistic is not supported with method 'maxmin' and float scales"),
    ([tensor("activation", method="percentile", calib_statistic_method="modal")],
     "tensor_quantize_config.activation.calib_statistic_method", "activation",
     "not supported with method 'percentile'"),
    ([overall(scale_type="poweroftwo", calib_statistic_method="max"),
      tensor("activation", method="mse", calib_statistic_method="modal")],
     "tensor_quantize_config.activation.calib_statistic_method", "activation",
     "the 'modal' statistic is not supported with method 'mse' and power-of-two scales"),
    ([overall(scale_type="poweroftwo", method="entropy", calib_statistic_method="modal")],
     "overall_quantize_config.calib_statistic_method", "input",
     "not supported with method 'entropy' and power-of-two scales"),
    ([overall(signed=False, narrow_range=True)], "overall_quantize_config.narrow_range", "input",
     "narrow_range only applies to signed quantization"),
]


@pytest.mark.parametrize(("mutations", "path", "kind", "problem"), CONFLICTS)
def test_conflict(cpu_dict, mutations, path, kind, problem) -> None:
    for mutate in mutations:
        mutate(cpu_dict)
    err = reject(cpu_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_CONFLICT"
    text = str(err)
    assert f"'{path}' = " in text
    assert f"cannot be used for {kind} tensors: " in text
    assert problem in text
    assert err.fix and "Fix: " + err.fix in text


def test_conflict_inside_a_layer_names_the_layer_path(example_dict) -> None:
    example_dict["layer_quantize_config"][0]["overall_quantize_config"]["symmetry"] = False
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG_CONFLICT"
    assert "'layer_quantize_config[0].tensor_quantize_config.activation.method' = \"entropy\"" in (
        str(err)
    )
    assert "('layer_quantize_config[0].overall_quantize_config.symmetry' = false)" in str(err)


def test_modal_applies_only_to_per_batch_kinds(cpu_dict) -> None:
    """calib_statistic_method does not matter for weights and bias, so no conflict there."""
    cpu_dict["quantizable_data_type"] = ["weights", "bias"]
    cpu_dict["overall_quantize_config"]["calib_statistic_method"] = "modal"
    assert load_config(cpu_dict).quantizes("weights")


def test_kinds_not_quantized_are_not_checked(cpu_dict) -> None:
    cpu_dict["quantizable_data_type"] = ["weights"]
    cpu_dict["overall_quantize_config"]["per_channel"] = True
    assert load_config(cpu_dict).for_tensor("weights").per_channel is True


# --- target restrictions ------------------------------------------------------------------------


DPU_RESTRICTIONS = [
    (overall(bit_width=16), "overall_quantize_config.bit_width", "input", "16",
     "the DPU computes in int8"),
    (overall(method="maxmin"), None, None, None, None),  # allowed on DPU
    (overall(method="mse"), "overall_quantize_config.method", "input", '"mse"',
     "the method must be diffs or maxmin"),
    (overall(symmetry=False), "overall_quantize_config.symmetry", "input", "false",
     "quantization must be symmetric"),
    (tensor("weights", per_channel=True), "tensor_quantize_config.weights.per_channel",
     "weights", "true", "quantization must be per tensor"),
    (overall(signed=False), "overall_quantize_config.signed", "input", "false",
     "quantization must be signed"),
    (overall(scale_type="float"), "overall_quantize_config.scale_type", "input", '"float"',
     "scales must be powers of two"),
    (tensor("activation", calib_statistic_method="max"),
     "tensor_quantize_config.activation.calib_statistic_method", "activation", '"max"',
     "the calibration statistic must be modal"),
    (overall(round_mode="half_even"), "overall_quantize_config.round_mode", "input",
     '"half_even"', "input tensors must use round_mode 'std_round'"),
    (tensor("activation", round_mode="half_even"),
     "tensor_quantize_config.activation.round_mode", "activation", '"half_even"',
     "activation tensors must use round_mode 'half_up'"),
    # the guide's default listing: std_round for activations is read as the DPU's half_up
    (tensor("activation", round_mode="std_round"), None, None, None, None),
    (overall(narrow_range=True), None, None, None, None),  # guide vs reference: not restricted
]


@pytest.mark.parametrize(("mutate", "path", "kind", "value", "requirement"), DPU_RESTRICTIONS)
def test_dpu_restriction(mutate, path, kind, value, requirement) -> None:
    data = default_config().to_dict()
    mutate(data)
    if path is None:
        assert load_config(data).target_device == "DPU"
        return
    err = reject(data)
    assert err.msg_id == ID + "QUANT_CONFIG_TARGET"
    assert (
        f"'{path}' = {value} is not supported on target_device 'DPU' for {kind} tensors: "
        f"{requirement}" in str(err)
    )
    assert "'CPU' or 'GPU'" in err.fix


@pytest.mark.parametrize(
    ("mutate", "path", "kind", "requirement"),
    [
        (tensor("activation", round_mode="half_up"),
         "tensor_quantize_config.activation.round_mode", "activation",
         "activation tensors must use round_mode 'floor'"),
        (overall(bit_width=8), "overall_quantize_config.bit_width", "input",
         "the RNN DPU computes activations and inputs in int16"),
        (tensor("weights", bit_width=24), "tensor_quantize_config.weights.bit_width", "weights",
         "the RNN DPU holds weights and bias in at most 16 bits"),
        (tensor("bias", round_mode="floor"), "tensor_quantize_config.bias.round_mode", "bias",
         "bias tensors must use round_mode 'std_round'"),
    ],
)
def test_dpu_rnn_restriction(mutate, path, kind, requirement) -> None:
    data = lstm_config().to_dict()
    mutate(data)
    err = reject(data)
    assert err.msg_id == ID + "QUANT_CONFIG_TARGET"
    assert f"'{path}' = " in str(err)
    assert f"on target_device 'DPU_RNN' for {kind} tensors: {requirement}" in str(err)


def test_same_settings_pass_on_cpu_and_gpu() -> None:
    for target in ("CPU", "GPU"):
        data = default_config().to_dict()
        data["target_device"] = target
        data["overall_quantize_config"]["bit_width"] = 16
        data["tensor_quantize_config"]["activation"]["round_mode"] = "half_even"
        assert load_config(data).for_tensor("activation").bit_width == 16


# --- layer entries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer_type", "layer_name", "problem"),
    [
        ("torch.nn.Conv2d", "ResNet::x", "both layer_type and layer_name are set"),
        (None, None, "neither layer_type nor layer_name is set"),
    ],
)
def test_layer_must_select_by_type_or_name(example_dict, layer_type, layer_name, problem) -> None:
    example_dict["layer_quantize_config"][1].update(layer_type=layer_type, layer_name=layer_name)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG"
    assert f"invalid at 'layer_quantize_config[1]': {problem}" in str(err)


def test_two_entries_for_the_same_layer_type(example_dict) -> None:
    twin = copy.deepcopy(example_dict["layer_quantize_config"][0])
    twin["layer_type"] = "Conv2d"  # same last component as torch.nn.Conv2d
    example_dict["layer_quantize_config"].append(twin)
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG"
    assert "'layer_quantize_config[2].layer_type': it selects the same layers as " in str(err)
    assert "layer_quantize_config[0] (layer_type 'torch.nn.Conv2d')" in str(err)


def test_two_entries_for_the_same_layer_name(example_dict) -> None:
    layers = example_dict["layer_quantize_config"]
    layers.append(copy.deepcopy(layers[1]))
    err = reject(example_dict)
    assert "'layer_quantize_config[2].layer_name': it selects the same layers" in str(err)


def test_override_for_a_kind_that_is_not_quantized(example_dict) -> None:
    example_dict["layer_quantize_config"][0]["tensor_quantize_config"]["input"] = {"bit_width": 8}
    err = reject(example_dict)
    assert err.msg_id == ID + "QUANT_CONFIG"
    assert "'layer_quantize_config[0].tensor_quantize_config.input': 'input' is not in " \
        "layer_quantize_config[0].quantizable_data_type" in str(err)


def test_model_level_override_for_a_kind_that_is_not_quantized(example_dict) -> None:
    example_dict["quantizable_data_type"] = ["input", "weights", "bias"]
    err = reject(example_dict)
    assert "'tensor_quantize_config.activation': 'activation' is not in quantizable_data_type" in (
        str(err)
    )


# --- the catalogue: front end, direct construction ------------------------------------------------


def test_tf_front_end_gets_tf_ids(cpu_dict) -> None:
    cpu_dict["overall_quantize_config"]["method"] = "minmax"
    with use_frontend("tf"):
        err = reject(cpu_dict)
    assert err.msg_id == "QUANTIZER_TF_QUANT_CONFIG_VALUE"
    assert str(err).startswith("[VAIQ_ERROR][QUANTIZER_TF_QUANT_CONFIG_VALUE]: ")


def test_direct_construction_is_validated_too() -> None:
    good = default_config().overall_quantize_config
    with pytest.raises(QuantConfigError, match=r"'method' = \"nope\" is not valid"):
        TensorQuantConfig(**{**good.__dict__, "method": "nope"})
    with pytest.raises(QuantConfigError) as info:
        QuantConfig(overall_quantize_config=good, target_device="CPU", include_cle="yes")
    assert "'include_cle' must be a boolean" in str(info.value)
    with pytest.raises(QuantConfigError) as info:
        QuantConfig(overall_quantize_config=good, quantizable_data_type=["input"],
                    layer_quantize_config=[good])
    assert "'layer_quantize_config[0]' must be LayerQuantConfig" in str(info.value)
    with pytest.raises(QuantConfigError, match="'weights' must be TensorOverrides or null"):
        TensorQuantizeConfig(weights={"bit_width": 8})  # type: ignore[arg-type]


def test_strings_are_coerced_on_direct_construction() -> None:
    good = default_config().overall_quantize_config
    cfg = QuantConfig(overall_quantize_config=good, target_device="dpu",
                      quantizable_data_type=["weights", "bias"])
    assert cfg.target_device == "DPU"
    assert cfg.quantizable_data_type == ("weights", "bias")
    assert isinstance(cfg.quantizable_data_type, tuple)

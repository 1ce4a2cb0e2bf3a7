"""The guide's configuration files load into the expected objects and round-trip unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nndct_shared.config import (
    CalibMethod,
    CalibStatistic,
    QuantConfig,
    RoundMode,
    ScaleType,
    TargetDevice,
    TensorKind,
    TensorOverrides,
    TensorQuantConfig,
    default_config,
    load_config,
    lstm_config,
    save_config,
)
from nndct_shared.config.dpu_rounding import listing_rounding_paths
from nndct_shared.messages import MissingFileError, QuantConfigError

GUIDE_OVERALL = TensorQuantConfig(
    bit_width=8,
    method=CalibMethod.MAXMIN,
    round_mode=RoundMode.HALF_EVEN,
    symmetry=True,
    per_channel=False,
    signed=True,
    narrow_range=False,
    scale_type=ScaleType.FLOAT,
    calib_statistic_method=CalibStatistic.MAX,
)


def test_model_config_from_guide_loads(config_data_dir: Path) -> None:
    cfg = load_config(config_data_dir / "guide_model_config.json")
    assert cfg.convert_relu6_to_relu is False
    assert cfg.include_cle is False
    assert cfg.keep_first_last_layer_accuracy is False
    assert cfg.keep_add_layer_accuracy is False
    assert cfg.include_bias_corr is False
    assert cfg.target_device is TargetDevice.CPU
    assert cfg.quantizable_data_type == (
        TensorKind.INPUT, TensorKind.WEIGHTS, TensorKind.BIAS, TensorKind.ACTIVATION
    )
    assert cfg.overall_quantize_config == GUIDE_OVERALL
    assert cfg.tensor_quantize_config.activation == TensorOverrides(method=CalibMethod.MSE)
    assert cfg.tensor_quantize_config.weights is None
    assert cfg.layer_quantize_config == ()


def test_example_config_from_guide_loads(config_data_dir: Path) -> None:
    cfg = load_config(str(config_data_dir / "guide_example_config.json"))
    by_type, by_name = cfg.layer_quantize_config
    assert by_type.layer_type == "torch.nn.Conv2d" and by_type.layer_name is None
    assert by_name.layer_type is None
    assert by_name.layer_name == "ResNet::ResNet/Conv2d[conv1]/input.2"
    for layer in (by_type, by_name):
        assert layer.quantizable_data_type == (
            TensorKind.WEIGHTS, TensorKind.BIAS, TensorKind.ACTIVATION
        )
        assert layer.overall_quantize_config == GUIDE_OVERALL
    assert by_type.tensor_quantize_config.weights == TensorOverrides(per_channel=True)
    assert by_type.tensor_quantize_config.activation == TensorOverrides(
        method=CalibMethod.ENTROPY
    )
    assert by_name.tensor_quantize_config.activation == TensorOverrides(
        round_mode=RoundMode.HALF_UP
    )


@pytest.mark.parametrize("name", ["guide_model_config.json", "guide_example_config.json"])
def test_guide_files_round_trip(config_data_dir: Path, name: str) -> None:
    raw = json.loads((config_data_dir / name).read_text())
    cfg = load_config(raw)
    # Unchanged, except that the one global switch the file leaves out gets its default.
    assert cfg.to_dict() == {"convert_silu_to_hswish": False, **raw}
    assert QuantConfig.from_dict(cfg.to_dict()) == cfg
    assert load_config(json.loads(cfg.to_json())) == cfg


@pytest.mark.parametrize("make", [default_config, lstm_config], ids=["default", "lstm"])
def test_presets_round_trip(make) -> None:
    cfg = make()
    assert QuantConfig.from_dict(cfg.to_dict()) == cfg
    assert load_config(json.loads(cfg.to_json())) == cfg


def test_save_config_writes_atomically_and_reloads(tmp_path: Path, config_data_dir: Path) -> None:
    cfg = load_config(config_data_dir / "guide_example_config.json")
    target = tmp_path / "sub" / "quant_config.json"
    assert save_config(cfg, target) == target
    assert target.read_text(encoding="utf-8") == cfg.to_json()
    assert load_config(target) == cfg
    assert sorted(p.name for p in target.parent.iterdir()) == ["quant_config.json"]


def test_save_config_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "c.json"
    target.write_text("old")
    save_config(lstm_config(), target)
    assert load_config(target) == lstm_config()


def test_default_listing_loads_and_resolves_to_the_default(config_data_dir: Path) -> None:
    """The guide's flat default listing has round_mode std_round for every tensor, while its DPU
    restrictions require half_up for activations: on a DPU the listing's activations are rounded
    half_up (as the default is), so every tensor resolves exactly as default_config()'s."""
    listing = load_config(config_data_dir / "guide_default_listing.json")
    assert listing_rounding_paths(listing) == ["overall_quantize_config.round_mode"]
    assert listing_rounding_paths(default_config()) == []
    for kind in TensorKind:
        for layer_type in (None, "torch.nn.Conv2d"):
            assert listing.for_tensor(kind, layer_type) == default_config().for_tensor(kind, layer_type)
    assert listing.for_tensor("activation").round_mode is RoundMode.HALF_UP
    assert listing.for_tensor("weights").round_mode is RoundMode.STD_ROUND
    # a CPU config keeps std_round for its activations: the DPU's rounding is not its business
    raw = json.loads((config_data_dir / "guide_default_listing.json").read_text())
    raw["target_device"] = "CPU"
    assert load_config(raw).for_tensor("activation").round_mode is RoundMode.STD_ROUND


def test_other_activation_round_modes_are_still_refused_on_dpu(config_data_dir: Path) -> None:
    raw = json.loads((config_data_dir / "guide_default_listing.json").read_text())
    raw["overall_quantize_config"]["round_mode"] = "half_even"
    with pytest.raises(QuantConfigError) as info:
        load_config(raw)
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG_TARGET"


def test_load_config_sources(tmp_path: Path) -> None:
    assert load_config(None) == default_config()
    cfg = lstm_config()
    assert load_config(cfg) is cfg
    with pytest.raises(QuantConfigError) as info:
        load_config(42)  # type: ignore[arg-type]
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG_TYPE"
    assert "a Python int" in str(info.value)


def test_values_are_case_insensitive_and_written_canonically(cpu_dict) -> None:
    cpu_dict["target_device"] = "cpu"
    cpu_dict["overall_quantize_config"].update(
        method="Maxmin", scale_type="Float", round_mode="HALF_EVEN", calib_statistic_method="Max"
    )
    cpu_dict["tensor_quantize_config"] = {"activation": {"method": "MSE"}}
    cfg = load_config(cpu_dict)
    assert cfg.target_device is TargetDevice.CPU
    out = cfg.to_dict()
    assert out["target_device"] == "CPU"
    assert out["overall_quantize_config"]["method"] == "maxmin"
    assert out["overall_quantize_config"]["scale_type"] == "float"
    assert out["tensor_quantize_config"] == {"activation": {"method": "mse"}}


def test_null_containers_and_optional_params_mean_unset(cpu_dict) -> None:
    cpu_dict["tensor_quantize_config"] = None
    cpu_dict["layer_quantize_config"] = None
    cpu_dict["overall_quantize_config"]["percentage"] = None
    cfg = load_config(cpu_dict)
    assert cfg.tensor_quantize_config.is_empty()
    assert cfg.layer_quantize_config == ()
    assert cfg.overall_quantize_config.percentage is None
    assert "tensor_quantize_config" not in cfg.to_dict()


def test_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError) as info:
        load_config(missing)
    assert isinstance(info.value, MissingFileError)
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG_FILE_MISSING"
    assert str(missing) in str(info.value)


def test_json_syntax_error_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "target_device": "CPU",\n}\n')
    with pytest.raises(QuantConfigError) as info:
        load_config(bad)
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_CONFIG"
    assert str(bad) in str(info.value)
    assert "(line 3, column 1)" in str(info.value)


def test_duplicate_json_key_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "dup.json"
    bad.write_text('{"target_device": "CPU", "target_device": "DPU"}')
    with pytest.raises(QuantConfigError, match="the key 'target_device' appears twice"):
        load_config(bad)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(QuantConfigError, match="the file cannot be read"):
        load_config(tmp_path)


def test_non_utf8_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"target_device": "CPÜ"}'.encode("latin-1"))
    with pytest.raises(QuantConfigError, match="the file cannot be read"):
        load_config(bad)

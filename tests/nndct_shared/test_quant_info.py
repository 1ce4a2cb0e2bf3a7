"""quant_info.json: byte-exact round trip of the reference's file, strict reading, name checks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nndct_shared.quant_info import (
    QuantInfo,
    QuantInfoError,
    check_against,
    read_quant_info,
    to_json_text,
    write_quant_info,
)

DEC = "DecoderRnn1_StandardLstmCell_layer_0_forward"
ENC = "EncoderRnn1_StandardLstmCell_layer_0_forward"
CELL_PARAMS = [
    "weight_ii", "bias_i", "weight_hi", "weight_if", "bias_f", "weight_hf",
    "weight_ig", "bias_g", "weight_hg", "weight_io", "bias_o", "weight_ho",
]
CELL_OUTPUTS = [
    "input_0", "input_1", "input_2",
    "w_ii * input_0 + bias_i", "w_hi * input_1", "y_i",
    "w_if * input_0 + bias_f", "w_hf * input_1", "y_f",
    "w_ig * input_0 + bias_g", "w_hg * input_1", "y_g",
    "w_io * input_0 + bias_o", "w_ho * input_1", "y_o",
    "it", "ft", "cct", "ot", "it*cct", "ft*input_2", "c_next", "c_temp", "h_next",
]
SIGMOID_TANH = {"it", "ft", "cct", "ot", "c_temp"}


@pytest.fixture()
def golden_file(golden_lstm_dir: Path) -> Path:
    return golden_lstm_dir / "quant_info.json"


def _write(tmp_path: Path, text: str, name: str = "quant_info.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_golden_file_reads_with_names_in_file_order(golden_file: Path) -> None:
    qi = read_quant_info(golden_file)
    expected_params = [f"{cell}::{p}" for cell in (ENC, DEC) for p in CELL_PARAMS]
    expected_outputs = [f"{cell}::{o}" for cell in (ENC, DEC) for o in CELL_OUTPUTS]
    assert list(qi.param) == expected_params
    assert list(qi.output) == expected_outputs
    assert qi.input == {}
    assert all(v == (16, 12) for v in qi.param.values())
    for name, value in qi.output.items():
        local = name.split("::", 1)[1]
        assert value == ((16, 15) if local in SIGMOID_TANH else (16, 12)), name
    assert qi.source == golden_file


def test_write_of_read_golden_is_byte_identical(golden_file: Path, tmp_path: Path) -> None:
    out = write_quant_info(read_quant_info(golden_file), tmp_path / "quant_info.json")
    assert out.read_bytes() == golden_file.read_bytes()
    assert os.listdir(tmp_path) == ["quant_info.json"]  # no temp file left behind


def test_layout_of_small_file_with_null_and_empty_sections(tmp_path: Path) -> None:
    qi = QuantInfo(param={"w": (8, -2)}, output={"a::x y": (16, None), "b*c": (4, 3)})
    expected = (
        "{\n"
        '  "param":\n  {\n    "w":[8,-2]\n  },\n'
        '  "output":\n  {\n    "a::x y":[16,null],\n    "b*c":[4,3]\n  },\n'
        '  "input":\n  {\n\n  }\n'
        "}"
    )
    assert to_json_text(qi) == expected
    path = write_quant_info(qi, tmp_path / "sub" / "q.json")
    assert path.read_text(encoding="utf-8") == expected
    back = read_quant_info(path)
    assert back == qi
    assert back.output["a::x y"] == (16, None)


def test_all_sections_empty(tmp_path: Path) -> None:
    text = to_json_text(QuantInfo())
    assert text == '{\n  "param":\n  {\n\n  },\n  "output":\n  {\n\n  },\n  "input":\n  {\n\n  }\n}'
    assert read_quant_info(_write(tmp_path, text)) == QuantInfo()


def test_names_needing_json_escapes_round_trip(tmp_path: Path) -> None:
    qi = QuantInfo(output={'odd "quoted" \\ name': (16, 1), "größe": (8, 0)})
    path = write_quant_info(qi, tmp_path / "q.json")
    assert read_quant_info(path) == qi
    assert '"größe":[8,0]' in path.read_text(encoding="utf-8")


def test_overwrite_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    write_quant_info(QuantInfo(param={"a": (16, 1)}), path)
    write_quant_info(QuantInfo(param={"b": (16, 2)}), path)
    assert read_quant_info(path).param == {"b": (16, 2)}
    assert os.listdir(tmp_path) == ["q.json"]


def test_invalid_entry_is_rejected_on_write_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(QuantInfoError, match=r'"w" in "param".*fix_pos 1\.5'):
        write_quant_info(QuantInfo(param={"w": (16, 1.5)}), tmp_path / "q.json")
    assert os.listdir(tmp_path) == []


def test_corrupt_json_names_file_and_position(tmp_path: Path) -> None:
    path = _write(tmp_path, '{\n  "param":\n  {\n    "a":[16,12],\n  }')
    with pytest.raises(QuantInfoError) as info:
        read_quant_info(path)
    message = str(info.value)
    assert str(path) in message and "not valid JSON" in message and "line 5" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(QuantInfoError, match="not UTF-8"):
        read_quant_info(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[1, 2]", "top level is a list"),
        ('{"param": {}, "output": {}}', 'missing "input"'),
        ('{"param": {}, "output": {}, "input": {}, "extra": {}}', 'unexpected "extra"'),
        ('{"param": [], "output": {}, "input": {}}', '"param" is a list'),
    ],
)
def test_wrong_top_level_structure(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(QuantInfoError, match=pattern) as info:
        read_quant_info(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ("[16]", "expected a pair"),
        ("[16, 12, 1]", "expected a pair"),
        ('"16,12"', "expected a pair"),
        ("[16, 12.5]", "fix_pos 12.5"),
        ('[16, "12"]', "fix_pos '12'"),
        ("[16, true]", "fix_pos True"),
        ("[0, 12]", "bit_width 0"),
        ("[null, 12]", "bit_width None"),
        ("[16.0, 12]", "bit_width 16.0"),
    ],
)
def test_bad_entries_name_file_and_entry(tmp_path: Path, entry: str, pattern: str) -> None:
    path = _write(tmp_path, '{"param": {}, "output": {"P::y_i": %s}, "input": {}}' % entry)
    with pytest.raises(QuantInfoError, match=pattern) as info:
        read_quant_info(path)
    message = str(info.value)
    assert str(path) in message and '"P::y_i" in "output"' in message


def test_duplicate_name_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"param": {"w": [16, 1], "w": [16, 2]}, "output": {}, "input": {}}')
    with pytest.raises(QuantInfoError, match='"w" appears twice'):
        read_quant_info(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_quant_info(tmp_path / "absent.json")


def test_check_against_accepts_the_matching_model(golden_file: Path) -> None:
    qi = read_quant_info(golden_file)
    params = [f"{cell}::{p}" for cell in (DEC, ENC) for p in CELL_PARAMS]
    outputs = [f"{cell}::{o}" for cell in (DEC, ENC) for o in reversed(CELL_OUTPUTS)]
    check_against(qi, params, outputs)
    check_against(qi, params, outputs, expected_input_names=[])


def test_check_against_lists_missing_and_unexpected_sorted(golden_file: Path) -> None:
    qi = read_quant_info(golden_file)
    params = [f"{DEC}::{p}" for p in CELL_PARAMS] + ["Other::weight_z", "Other::bias_a"]
    outputs = [f"{cell}::{o}" for cell in (DEC, ENC) for o in CELL_OUTPUTS]
    with pytest.raises(QuantInfoError) as info:
        check_against(qi, params, outputs)
    assert info.value.msg_id.endswith("_CALIB_RESULT_MISMATCH")
    message = str(info.value)
    assert str(golden_file) in message
    assert "2 tensor(s) of the model are missing from it (param: 'Other::bias_a', " in message
    unexpected = sorted(f"{ENC}::{p}" for p in CELL_PARAMS)
    shown = ", ".join(repr(n) for n in unexpected[:10])
    assert f"12 name(s) in it are not in the model (param: {shown}, ... (2 more))" in message
    assert "output:" not in message
    assert "Re-run calibration (quant_mode 'calib')" in message


def test_check_against_input_section_only_when_asked() -> None:
    qi = QuantInfo(param={}, output={"a": (8, 1)}, input={"a": (8, 2)})
    check_against(qi, [], ["a"])
    with pytest.raises(QuantInfoError, match=r"\(in memory\).*0 tensor\(s\).*\(none\).*"
                       r"1 name\(s\) in it are not in the model \(input: 'a'\)"):
        check_against(qi, [], ["a"], expected_input_names=[])


def test_read_errors_carry_the_catalogue_id(tmp_path: Path) -> None:
    with pytest.raises(QuantInfoError) as info:
        read_quant_info(_write(tmp_path, "{"))
    assert info.value.msg_id.endswith("_QUANT_INFO_CORRUPT")
    assert "re-run calibration" in info.value.fix

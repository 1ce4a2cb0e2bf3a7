"""`QuantInfoStore`, the one reader and writer of a calibration result for every flow: the
reference's golden LSTM file read through it, every section compared, the bit-width check, and
quant_info.json staged with quant_info_float.json all or nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nndct_shared.output_dir import staged_export
from nndct_shared.messages import MissingFileError, OutputDirError, QuantConfigError, QuantInfoError
from nndct_shared.quant_info import QuantInfo, read_quant_info
from nndct_shared.quant_info_float import FloatEntry, FloatQuantInfo, read_float_quant_info
from nndct_shared.quant_info_store import (FLOAT_QUANT_INFO_FILE, QUANT_INFO_FILE, QuantInfoStore,
                                           bit_width_changes, check_recorded_config)


@pytest.fixture()
def golden_store(golden_lstm_dir: Path, tmp_path: Path) -> QuantInfoStore:
    shutil.copy(golden_lstm_dir / QUANT_INFO_FILE, tmp_path / QUANT_INFO_FILE)
    return QuantInfoStore(tmp_path)


def test_the_reference_file_reads_with_exactly_its_names(golden_store):
    golden = read_quant_info(golden_store.path)
    info = golden_store.read(list(golden.param), list(golden.output))
    assert info == golden and info.source == golden_store.path


def test_every_section_is_compared(golden_store):
    golden = read_quant_info(golden_store.path)
    params, outputs = list(golden.param), list(golden.output)
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH") as err:
        golden_store.read(params, outputs[1:] + ["x"])            # a name in the wrong place
    assert "'x'" in str(err.value) and repr(outputs[0]) in str(err.value)
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH"):
        golden_store.read(params, outputs, ["a model input"])    # the input section too
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH"):
        golden_store.read(params + outputs, [])                  # sections are not merged


def test_missing_and_broken_files(tmp_path):
    store = QuantInfoStore(tmp_path)
    with pytest.raises(MissingFileError, match="NO_CALIB_RESULT") as err:
        store.read([], [])
    assert str(tmp_path / QUANT_INFO_FILE) in str(err.value)
    with pytest.raises(MissingFileError, match="NO_CALIB_RESULT"):
        store.read_float([], [])
    store.path.write_text('{"param": {"w": [8, 3]}, "output": {}}')
    with pytest.raises(QuantInfoError, match="QUANT_INFO_CORRUPT"):
        store.read(["w"], [])


def test_the_bit_width_check(golden_store):
    golden = read_quant_info(golden_store.path)
    names = list(golden.param) + list(golden.output)
    golden_store.check_bit_widths(golden, dict.fromkeys(names, 16))        # calibrated at 16
    with pytest.raises(QuantConfigError, match="QUANT_CONFIG_MISMATCH") as err:
        golden_store.check_bit_widths(golden, dict.fromkeys(names, 8), current="bitwidth=8")
    text = str(err.value)
    assert f"bit width of '{names[0]}' (8 now, 16 at calibration)" in text
    assert "bitwidth=8" in text and f"({len(names) - 3} more)" in text and str(golden_store.path) in text


def test_bit_width_changes_of_per_channel_entries():
    recorded = {"w": [8, 8, 4], "b": [8]}
    assert bit_width_changes({"w": 8, "b": 8}, recorded) == ["bit width of 'w' (8 now, 4/8 at calibration)"]
    assert bit_width_changes({"b": 8}, recorded) == []
    check_recorded_config("quant_info.json", [])                   # nothing changed: no error


def test_stage_writes_both_files_together_or_none(tmp_path):
    store = QuantInfoStore(tmp_path / "out")
    info = QuantInfo(param={"w": (8, 5)}, output={"y": (8, 3)})
    floats = FloatQuantInfo(output={"z": FloatEntry(8, False, False, False, 0.5, 3)})
    with staged_export(store.directory) as unit:
        path = store.stage(unit, info, floats)
    assert path == store.path and read_quant_info(path) == info
    assert read_float_quant_info(tmp_path / "out" / FLOAT_QUANT_INFO_FILE).output == floats.output
    bad = FloatQuantInfo(output={"z": FloatEntry(8, False, False, False, -1.0, 3)})   # scale < 0
    with pytest.raises(QuantInfoError), staged_export(store.directory) as unit:
        store.stage(unit, QuantInfo(param={"w": (8, 6)}), bad)
    assert read_quant_info(store.path) == info                      # the old result stays


def test_write_reports_an_unusable_directory(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputDirError, match="OUTPUT_DIR"):
        QuantInfoStore(tmp_path / "file" / "out").write(QuantInfo())
    store = QuantInfoStore(tmp_path / "ok")
    assert store.write(QuantInfo(param={"w": (8, 1)})) == store.path and store.read(["w"], []).param == {"w": (8, 1)}

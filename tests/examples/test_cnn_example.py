"""examples/cnn end to end, in a temporary directory: float, calib, test, deploy."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cnn"


def _run(monkeypatch, capsys, *args: str) -> float:
    monkeypatch.setattr(sys, "argv", ["quantize.py", *args])
    runpy.run_path(str(EXAMPLE / "quantize.py"), run_name="__main__")
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("accuracy")][-1]
    return float(line.split(":")[1].strip().rstrip("%"))


def test_cnn_example_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE))
    float_acc = _run(monkeypatch, capsys, "--quant_mode", "float")
    _run(monkeypatch, capsys, "--quant_mode", "calib", "--subset_len", "500")
    assert (tmp_path / "quantize_result" / "quant_info.json").is_file()
    assert (tmp_path / "quantize_result" / "DigitsNet.py").is_file()
    quant_acc = _run(monkeypatch, capsys, "--quant_mode", "test")
    print(f"example: float {float_acc:.2f}% int8 {quant_acc:.2f}%")
    assert float_acc > 95.0 and abs(float_acc - quant_acc) <= 1.0
    _run(monkeypatch, capsys, "--quant_mode", "test", "--subset_len", "1", "--batch_size", "1", "--deploy")
    out = tmp_path / "quantize_result"
    for name in ("DigitsNet_int.xmodel", "DigitsNet_int.onnx", "DigitsNet_int.pt"):
        assert (out / name).stat().st_size > 0, name
    shapes = (out / "deploy_check_data_int" / "DigitsNet" / "shape.txt").read_text()
    assert "DigitsNet::nndct_input_0" in shapes
    codes = np.fromfile(out / "deploy_check_data_int" / "DigitsNet" / "DigitsNet__nndct_input_0_fix.bin",
                        dtype=np.int8)
    assert codes.size == 64

"""examples/cnn/tensorflow end to end, in a temporary directory: float, calib, test, deploy; and
the shipped digits_net.keras holds the PyTorch example's checkpoint, converted."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import keras
import numpy as np
import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cnn" / "tensorflow"


def _run(monkeypatch, capsys, *args: str) -> float:
    monkeypatch.setattr(sys, "argv", ["quantize.py", *args])
    runpy.run_path(str(EXAMPLE / "quantize.py"), run_name="__main__")
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("accuracy")][-1]
    return float(line.split(":")[1].strip().rstrip("%"))


def _example_module(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "model", raising=False)  # another example's model.py
    import model

    return model


def test_shipped_keras_model_is_the_converted_checkpoint(monkeypatch):
    model = _example_module(monkeypatch)
    state = torch.load(EXAMPLE.parent / "checkpoints" / "digits_net.pth", map_location="cpu", weights_only=True)
    shipped = keras.saving.load_model(model.MODEL_FILE, compile=False)
    for name, weights in model.keras_weights_from_torch(state).items():
        for got, want in zip(shipped.get_layer(name).get_weights(), weights):
            assert np.array_equal(got, want), name


def test_keras_cnn_example_end_to_end(tmp_path, monkeypatch, capsys):
    _example_module(monkeypatch)
    monkeypatch.chdir(tmp_path)
    float_acc = _run(monkeypatch, capsys, "--quant_mode", "float")
    _run(monkeypatch, capsys, "--quant_mode", "calib", "--subset_len", "500")
    out = tmp_path / "quantize_result"
    assert (out / "quant_info.json").is_file() and (out / "bias_corr.npz").is_file()
    quant_acc = _run(monkeypatch, capsys, "--quant_mode", "test")
    print(f"keras example: float {float_acc:.2f}% int8 {quant_acc:.2f}%")
    assert float_acc > 95.0 and abs(float_acc - quant_acc) <= 1.0
    _run(monkeypatch, capsys, "--quant_mode", "test", "--subset_len", "1", "--batch_size", "1", "--deploy")
    for name in ("DigitsNet_int.xmodel", "DigitsNet_int.onnx"):
        assert (out / name).stat().st_size > 0, name
    shapes = (out / "deploy_check_data_int" / "DigitsNet" / "shape.txt").read_text()
    assert "DigitsNet::input_0" in shapes
    codes = np.fromfile(out / "deploy_check_data_int" / "DigitsNet" / "DigitsNet__input_0_fix.bin", dtype=np.int8)
    assert codes.size == 64

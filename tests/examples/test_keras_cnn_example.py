"""examples/cnn/tensorflow end to end, in a temporary directory: float, calib, test, deploy; and
the shipped digits_net.keras holds the PyTorch example's checkpoint, converted."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cnn" / "tensorflow"


def _run(monkeypatch, capsys, *args: str) -> float:
    monkeypatch.setattr(sys, "argv", ["quantize.py", *args])
    runpy.run_path(str(EXAMPLE / "quantize.py"), run_name="__main__")
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("accuracy")][-1]
    return float(line.split(":")[1].strip().rstrip("%"))


#: Modules the example's scripts import by plain name (other examples have a model.py too).
EXAMPLE_MODULES = ("model", "digits_data", "digits_cli")


@pytest.fixture
def example_path():
    """The example's folder on sys.path, its plain-named modules fresh; both restored after."""
    saved_path = list(sys.path)
    saved = {name: sys.modules.pop(name) for name in EXAMPLE_MODULES if name in sys.modules}
    sys.path.insert(0, str(EXAMPLE))
    try:
        yield
    finally:
        for name in EXAMPLE_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
        sys.path[:] = saved_path


def test_shipped_keras_model_is_the_converted_checkpoint(example_path):
    import model
    state = torch.load(EXAMPLE.parent / "checkpoints" / "digits_net.pth", map_location="cpu", weights_only=True)
    shipped = keras.saving.load_model(model.MODEL_FILE, compile=False)
    for name, weights in model.keras_weights_from_torch(state).items():
        for got, want in zip(shipped.get_layer(name).get_weights(), weights):
            assert np.array_equal(got, want), name


def test_keras_cnn_example_end_to_end(example_path, tmp_path, monkeypatch, capsys):
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
    assert "DigitsNet::nndct_input_0" in shapes  # the reference 3.x node names
    codes = np.fromfile(out / "deploy_check_data_int" / "DigitsNet" / "DigitsNet__nndct_input_0_fix.bin",
                        dtype=np.int8)
    assert codes.size == 64

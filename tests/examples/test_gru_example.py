"""Tests of the GRU example (examples/gru): the shipped float models, the weight mapping to
Keras, the accuracies its README states (float, 16- and 8-bit, re-measured here from the shipped
checkpoint), and that its Keras script writes exactly the files its PyTorch script writes."""
from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from helpers.example_files import GRU_EXAMPLE_DIR, assert_same_files, import_example_file

torch = pytest.importorskip("torch")


def _import(relative: str, name: str):
    return import_example_file(relative, name, GRU_EXAMPLE_DIR)


@pytest.fixture(scope="module")
def torch_script():
    return _import("pytorch/quantize_gru.py", "gru_example_torch_quantize")


@pytest.fixture(scope="module")
def keras_script():
    pytest.importorskip("keras")
    return _import("tensorflow/quantize_gru.py", "gru_example_keras_quantize")


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads((GRU_EXAMPLE_DIR / "float_accuracy.json").read_text(encoding="utf-8"))


def printed_percent(out: str, label: str) -> float:
    match = re.search(rf"^{label}: (\d+\.\d\d)%", out, flags=re.MULTILINE)
    assert match, f"no '{label}: x.xx%' line in:\n{out}"
    return float(match.group(1))


def test_shipped_models_reproduce_the_recorded_float_accuracy(dataset, torch_script, keras_script, record):
    _, _, x_test, y_test = dataset
    model = torch_script.load_float_model(GRU_EXAMPLE_DIR / "pytorch" / "pretrained.pth")
    assert isinstance(model.gru, torch.nn.GRU)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x_test)).numpy()
    keras_model = keras_script.load_keras_model(GRU_EXAMPLE_DIR / "tensorflow" / "pretrained.keras")
    keras_logits = np.asarray(keras_model(x_test))
    np.testing.assert_allclose(keras_logits, torch_logits, rtol=0, atol=1e-5)
    assert int((torch_logits.argmax(1) == y_test).sum()) == record["pytorch"]["test_correct"]
    assert int((keras_logits.argmax(1) == y_test).sum()) == record["keras"]["test_correct"]
    assert record["pytorch"]["test_correct"] / len(y_test) > 0.95  # a genuinely good float model


def test_weight_mapping_makes_keras_match_torch_for_fresh_weights(dataset):
    pytest.importorskip("keras")
    torch_module = _import("pytorch/gru_model.py", "gru_example_torch_model")
    keras_module = _import("tensorflow/keras_gru_model.py", "gru_example_keras_model")
    torch.manual_seed(1234)
    model = torch_module.GruClassifier(hidden_size=8).eval()
    with torch.no_grad():  # different input and recurrent biases, so a mix-up of the two shows
        for name, param in model.named_parameters():
            if "bias" in name:
                param.uniform_(-0.5, 0.5)
    twin = keras_module.build_model(timesteps=29, hidden_size=8)
    twin.set_weights(keras_module.keras_weights_from_torch(model.state_dict()))
    x = dataset[2][:64]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(twin(x)), want, rtol=0, atol=1e-5)


def test_gru_training_is_deterministic(dataset):
    train = import_example_file("train_float_models.py", "lstm_example_train")
    torch_module = _import("pytorch/gru_model.py", "gru_example_torch_model")
    config = train.TrainConfig(hidden_size=8, epochs=1, batch_size=64)
    first, second = (train.train_torch_model(dataset[0], dataset[1], config, torch_module, "GruClassifier")
                     .state_dict() for _ in range(2))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.fixture(scope="module")
def measured(torch_script, tmp_path_factory) -> dict[int, tuple[float, float, object]]:
    """bit width -> (float accuracy, quantized accuracy, output dir) on all 370 test sequences,
    calibrated on them (as the README says), from the shipped checkpoint."""
    out = {}
    for bw in (16, 8):
        out_dir = tmp_path_factory.mktemp(f"gru{bw}")
        common = ["--bitwidth", str(bw), "--output_dir", str(out_dir)]
        assert torch_script.main(["--quant_mode", "calib", *common]) == 0
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert torch_script.main(["--quant_mode", "test", *common]) == 0
        text = printed.getvalue()
        out[bw] = (printed_percent(text, "float accuracy"), printed_percent(text, "quantized accuracy"), out_dir)
    return out


def test_readme_states_the_measured_accuracies(measured, record):
    readme = (GRU_EXAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    row = re.search(r"^\| all 370 test sequences \| (\d+\.\d\d)% \| (\d+\.\d\d)% \| (\d+\.\d\d)% \|$", readme,
                    flags=re.MULTILINE)
    assert row, "README has no 'all 370 test sequences' row"
    stated_float, stated_16, stated_8 = (float(v) for v in row.groups())
    assert f"{stated_float:.2f}" == record["pytorch"]["test_accuracy_percent"]
    assert measured[16][0] == measured[8][0] == stated_float
    assert (measured[16][1], measured[8][1]) == (stated_16, stated_8)
    assert abs(measured[16][1] - stated_float) <= 0.5  # the bar for 16 bits
    assert sorted(p.name for p in (measured[16][2] / "xmodel").iterdir()) == \
        ["Gru_StandardGruCell_layer_0_forward_int.xmodel"]


def test_keras_script_writes_what_the_pytorch_script_writes(tmp_path, capsys, torch_script, keras_script):
    subset = 27
    for script, out_dir in ((torch_script, tmp_path / "torch"), (keras_script, tmp_path / "keras")):
        common = ["--subset_len", str(subset), "--output_dir", str(out_dir)]
        assert script.main(["--quant_mode", "calib", *common]) == 0
        assert script.main(["--quant_mode", "test", "--deploy", *common]) == 0
        out = capsys.readouterr().out
        assert abs(printed_percent(out, "quantized accuracy") - printed_percent(out, "float accuracy")) \
            <= 100.0 / subset + 1e-9, out
    assert assert_same_files(tmp_path / "torch", tmp_path / "keras") > 29 * 39


def test_a_missing_checkpoint_names_the_training_script(torch_script, capsys):
    with pytest.raises(SystemExit):
        torch_script.parse_args(["--checkpoint", "/nonexistent/pretrained.pth"])
    assert "examples/gru/train_gru.py" in capsys.readouterr().err

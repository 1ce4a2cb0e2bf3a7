"""Tests of the LSTM example's dataset, float models and shipped checkpoints.

The dataset facts asserted here (270/370 cases, 30 training cases per speaker, 7-29
frames, 12 features) are those stated in the JapaneseVowels file's own header; the
accuracies are re-measured from the shipped checkpoints and compared with what
train_float_models.py recorded in float_accuracy.json and README.md.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers.example_files import assert_same_files

torch = pytest.importorskip("torch")

NUM_CLASSES = 9
NUM_FEATURES = 12
MAX_LENGTH = 29


def real_lengths(x: np.ndarray) -> np.ndarray:
    """Length of each pre-padded sequence: frames after the leading all-zero frames."""
    is_pad = np.all(x == 0.0, axis=2)
    return x.shape[1] - np.argmin(is_pad, axis=1)


@pytest.fixture(scope="module")
def torch_model_module(import_example):
    return import_example("pytorch/model.py", "lstm_example_torch_model")


@pytest.fixture(scope="module")
def keras_model_module(import_example):
    pytest.importorskip("keras")
    return import_example("tensorflow/model.py", "lstm_example_keras_model")


@pytest.fixture(scope="module")
def accuracy_record(lstm_example_dir: Path) -> dict:
    return json.loads((lstm_example_dir / "float_accuracy.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shipped_torch_model(lstm_example_dir: Path, torch_model_module):
    state_dict = torch.load(lstm_example_dir / "pytorch" / "pretrained.pth", weights_only=True)
    model = torch_model_module.LstmClassifier()
    model.load_state_dict(state_dict)
    return model.eval()


@pytest.fixture(scope="module")
def shipped_keras_model(lstm_example_dir: Path, keras_model_module):
    import keras

    return keras.saving.load_model(lstm_example_dir / "tensorflow" / "pretrained.keras",
                                   compile=False)


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(model(x, training=False))


# ---------------------------------------------------------------- dataset


def test_dataset_shapes_and_dtypes(dataset):
    x_train, y_train, x_test, y_test = dataset
    assert x_train.shape == (270, MAX_LENGTH, NUM_FEATURES)
    assert x_test.shape == (370, MAX_LENGTH, NUM_FEATURES)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.shape == (270,) and y_test.shape == (370,)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert np.all(np.isfinite(x_train)) and np.all(np.isfinite(x_test))


def test_labels_match_the_documented_class_distribution(dataset):
    _, y_train, _, y_test = dataset
    assert np.bincount(y_train, minlength=NUM_CLASSES).tolist() == [30] * NUM_CLASSES
    test_counts = np.bincount(y_test, minlength=NUM_CLASSES)
    assert test_counts.sum() == 370
    assert test_counts.min() == 24 and test_counts.max() == 88
    assert y_test.min() == 0 and y_test.max() == NUM_CLASSES - 1


def test_load_is_deterministic(example_data, dataset):
    again = example_data.load_dataset()
    for first, second in zip(dataset, again):
        assert first.dtype == second.dtype
        np.testing.assert_array_equal(first, second)


def test_sequences_are_pre_padded_with_zero_frames(dataset):
    x_train, _, x_test, _ = dataset
    for x, longest in ((x_train, 26), (x_test, 29)):
        lengths = real_lengths(x)
        assert lengths.min() == 7 and lengths.max() == longest
        for n, length in enumerate(lengths):
            # padding only in front; every frame after it is real (non-zero somewhere)
            assert np.all(x[n, :MAX_LENGTH - length] == 0.0)
            assert np.all(np.any(x[n, MAX_LENGTH - length:] != 0.0, axis=1))


def test_features_are_normalised_with_training_statistics(dataset):
    x_train, _, x_test, _ = dataset
    frames = x_train[np.any(x_train != 0.0, axis=2)].astype(np.float64)
    assert frames.shape == (int(real_lengths(x_train).sum()), NUM_FEATURES)
    np.testing.assert_allclose(frames.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(frames.std(axis=0), 1.0, atol=1e-6)
    test_frames = x_test[np.any(x_test != 0.0, axis=2)]
    assert not np.allclose(test_frames.mean(axis=0), 0.0, atol=1e-3)  # not re-normalised


def test_cases_are_interleaved_round_robin_over_speakers(dataset):
    _, y_train, _, y_test = dataset
    assert y_train.tolist() == list(range(NUM_CLASSES)) * 30
    # the smallest test class has 24 cases, so the first 24 rounds are complete
    assert y_test[:24 * NUM_CLASSES].tolist() == list(range(NUM_CLASSES)) * 24


def test_matches_sktimes_own_reader(example_data, dataset):
    pytest.importorskip("pandas")
    sktime_datasets = pytest.importorskip("sktime.datasets")
    folder = example_data.sktime_data_dir()
    frame, labels = sktime_datasets.load_from_tsfile(
        str(folder / "JapaneseVowels_TRAIN.ts"), return_data_type="nested_univ")
    raw = [np.stack([frame.iloc[n, d].to_numpy() for d in range(NUM_FEATURES)], axis=1)
           for n in range(len(frame))]
    frames = np.concatenate(raw)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    x_train, y_train, _, _ = dataset
    # undo the round-robin order: in the file, class c's case r is line 30*c + r; in the
    # dataset it is at position 9*r + c
    file_order = np.arange(270).reshape(30, NUM_CLASSES).T.ravel()
    x_file, y_file = x_train[file_order], y_train[file_order]
    np.testing.assert_array_equal(y_file + 1, labels.astype(np.int64))
    for n, case in enumerate(raw):
        expected = ((case - mean) / std).astype(np.float32)
        np.testing.assert_array_equal(x_file[n, MAX_LENGTH - len(case):], expected)


# ---------------------------------------------------------------- .ts reader errors


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "@problemName T\n@timeStamps false\n@univariate false\n@dimensions 2\n" \
         "@equalLength false\n@classLabel true a b\n@data\n"


def test_ts_reader_parses_variable_length_cases(ts_format, tmp_path):
    path = write(tmp_path / "ok.ts", "# comment\n" + HEADER + "1,2,3:4,5,6:a\n7:8:b\n")
    parsed = ts_format.read_ts_file(path)
    assert parsed.labels == ["a", "b"] and parsed.class_labels == ["a", "b"]
    np.testing.assert_array_equal(parsed.series[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(parsed.series[1], [[7, 8]])


@pytest.mark.parametrize("body, message", [
    ("1,?:3,4:a\n", "missing value"),
    ("1,2:3:a\n", "different lengths"),
    ("1,2:a\n", "expected 2 dimensions"),
    ("1,2:3,4:c\n", "not in @classLabel"),
    ("1,x:3,4:a\n", "dimension 0"),
    ("", "@data section is empty"),
])
def test_ts_reader_rejects_bad_cases_naming_the_line(ts_format, tmp_path, body, message):
    path = write(tmp_path / "bad.ts", HEADER + body)
    with pytest.raises(ts_format.TsFormatError, match=message):
        ts_format.read_ts_file(path)


def test_ts_reader_rejects_timestamps_and_unlabelled_files(ts_format, tmp_path):
    stamped = write(tmp_path / "s.ts", HEADER.replace("@timeStamps false", "@timeStamps true"))
    with pytest.raises(ts_format.TsFormatError, match="timeStamps true"):
        ts_format.read_ts_file(stamped)
    unlabelled = write(tmp_path / "u.ts", HEADER.replace("@classLabel true a b", "@classLabel false"))
    with pytest.raises(ts_format.TsFormatError, match="no labels"):
        ts_format.read_ts_file(unlabelled)


def test_load_dataset_names_the_missing_folder(example_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="JapaneseVowels_TRAIN.ts"):
        example_data.load_dataset(data_dir=tmp_path)


# ---------------------------------------------------------------- float models


def test_weight_mapping_makes_keras_match_torch_for_fresh_weights(
        dataset, torch_model_module, keras_model_module):
    torch.manual_seed(1234)
    model = torch_model_module.LstmClassifier(hidden_size=8).eval()
    with torch.no_grad():  # non-zero biases on both sides, so a bias mix-up shows
        for name, param in model.named_parameters():
            if "bias" in name:
                param.uniform_(-0.5, 0.5)
    twin = keras_model_module.build_model(timesteps=MAX_LENGTH, hidden_size=8)
    twin.set_weights(keras_model_module.keras_weights_from_torch(model.state_dict()))
    x = dataset[2][:64]
    np.testing.assert_allclose(keras_logits(twin, x), torch_logits(model, x), rtol=0, atol=1e-5)


def test_weight_mapping_rejects_foreign_state_dicts(keras_model_module):
    with pytest.raises(KeyError, match="lstm.bias_hh_l0"):
        keras_model_module.keras_weights_from_torch({"lstm.weight_ih_l0": np.zeros((4, 1))})


def test_shipped_float_models_agree(dataset, shipped_torch_model, shipped_keras_model):
    x_test = dataset[2]
    np.testing.assert_allclose(keras_logits(shipped_keras_model, x_test),
                               torch_logits(shipped_torch_model, x_test), rtol=0, atol=1e-5)


def test_shipped_checkpoints_reproduce_recorded_accuracy(
        dataset, shipped_torch_model, shipped_keras_model, accuracy_record):
    _, y_train, x_test, y_test = dataset
    assert accuracy_record["test_total"] == len(y_test)
    torch_correct = int(np.sum(torch_logits(shipped_torch_model, x_test).argmax(1) == y_test))
    keras_correct = int(np.sum(keras_logits(shipped_keras_model, x_test).argmax(1) == y_test))
    assert torch_correct == accuracy_record["pytorch"]["test_correct"]
    assert keras_correct == accuracy_record["keras"]["test_correct"]
    assert f"{100 * torch_correct / len(y_test):.2f}" == \
        accuracy_record["pytorch"]["test_accuracy_percent"]
    assert torch_correct / len(y_test) > 0.95  # a genuinely good float model


def test_readme_reports_the_recorded_accuracy(lstm_example_dir, accuracy_record):
    readme = (lstm_example_dir / "README.md").read_text(encoding="utf-8")
    record = accuracy_record["pytorch"]
    stated = f"**{record['test_accuracy_percent']}%** ({record['test_correct']}/" \
             f"{accuracy_record['test_total']})"
    assert re.search(r"\| PyTorch float \| " + re.escape(stated), readme)
    keras = accuracy_record["keras"]
    assert f"Keras float (PyTorch weights) | **{keras['test_accuracy_percent']}%**" in readme


def test_torch_training_is_deterministic(dataset, torch_model_module, import_example):
    train = import_example("train_float_models.py", "lstm_example_train")
    config = train.TrainConfig(hidden_size=8, epochs=1, batch_size=64)
    x_train, y_train = dataset[0], dataset[1]
    first = train.train_torch_model(x_train, y_train, config, torch_model_module).state_dict()
    second = train.train_torch_model(x_train, y_train, config, torch_model_module).state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


# ---------------------------------------------------------------- scripts' float path


def expected_percent(logits: np.ndarray, labels: np.ndarray) -> str:
    return f"{100 * np.mean(logits.argmax(1) == labels):.2f}"


def test_pytorch_script_float_mode(dataset, shipped_torch_model, capsys, import_example):
    script = import_example("pytorch/quantize_lstm.py", "lstm_example_torch_quantize")
    assert script.main(["--quant_mode", "float", "--subset_len", "100", "--batch_size", "7"]) == 0
    out = capsys.readouterr().out
    x, y = dataset[2][:100], dataset[3][:100]
    assert "evaluating on 100 JapaneseVowels test sequences" in out
    assert f"float accuracy: {expected_percent(torch_logits(shipped_torch_model, x), y)}%" in out
    assert "quantized accuracy" not in out


def test_keras_script_float_mode(dataset, shipped_keras_model, capsys, import_example):
    script = import_example("tensorflow/quantize_lstm.py", "lstm_example_keras_quantize")
    assert script.main(["--quant_mode", "float", "--subset_len", "120", "--batch_size", "40"]) == 0
    out = capsys.readouterr().out
    x, y = dataset[2][:120], dataset[3][:120]
    assert "evaluating on 120 JapaneseVowels test sequences" in out
    assert f"float accuracy: {expected_percent(keras_logits(shipped_keras_model, x), y)}%" in out


def test_scripts_reject_bad_arguments(capsys, import_example):
    script = import_example("pytorch/quantize_lstm.py", "lstm_example_torch_quantize")
    with pytest.raises(SystemExit):
        script.parse_args(["--subset_len", "0"])
    assert "--subset_len must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.parse_args(["--quant_mode", "int8"])
    with pytest.raises(SystemExit):
        script.parse_args(["--checkpoint", "/nonexistent/pretrained.pth"])
    assert "train_float_models.py" in capsys.readouterr().err


def printed_percent(out: str, label: str) -> float:
    match = re.search(rf"^{label}: (\d+\.\d\d)%", out, flags=re.MULTILINE)
    assert match, f"no '{label}: x.xx%' line in:\n{out}"
    return float(match.group(1))


def test_pytorch_script_calib_then_test(tmp_path, capsys, import_example):
    """The example's quantized flow, once the quantizer package is importable."""
    pytest.importorskip("pytorch_nndct.apis")
    script = import_example("pytorch/quantize_lstm.py", "lstm_example_torch_quantize")
    subset = 18  # two rounds of the nine speakers
    common = ["--subset_len", str(subset), "--output_dir", str(tmp_path)]
    for mode in ("calib", "test"):
        assert script.main(["--quant_mode", mode, *common]) == 0
        out = capsys.readouterr().out
        float_acc = printed_percent(out, "float accuracy")
        quant_acc = printed_percent(out, "quantized accuracy")
        # 16-bit LSTM: at most one of the sequences may change its predicted class
        assert abs(quant_acc - float_acc) <= 100.0 / subset + 1e-9, out
    assert (tmp_path / "quant_info.json").is_file()
    assert sorted(p.name for p in (tmp_path / "xmodel").iterdir()) == \
        ["Lstm_StandardLstmCell_layer_0_forward_int.xmodel"]


def test_keras_script_calib_then_test_writes_what_the_pytorch_script_writes(tmp_path, capsys, import_example):
    """Both example scripts quantize the same float network on the same sequences: the Keras
    flow's quant_info.json, xmodel and per-frame dumps equal the PyTorch flow's byte for byte."""
    torch_script = import_example("pytorch/quantize_lstm.py", "lstm_example_torch_quantize")
    keras_script = import_example("tensorflow/quantize_lstm.py", "lstm_example_keras_quantize")
    subset = 27
    for script, out_dir in ((torch_script, tmp_path / "torch"), (keras_script, tmp_path / "keras")):
        common = ["--subset_len", str(subset), "--output_dir", str(out_dir)]
        assert script.main(["--quant_mode", "calib", *common]) == 0
        assert script.main(["--quant_mode", "test", "--deploy", *common]) == 0
        out = capsys.readouterr().out
        assert abs(printed_percent(out, "quantized accuracy") - printed_percent(out, "float accuracy")) \
            <= 100.0 / subset + 1e-9, out
    assert assert_same_files(tmp_path / "torch", tmp_path / "keras") > 29 * 40

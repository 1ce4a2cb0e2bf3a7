"""Train the float LSTM classifier of the examples and ship it for PyTorch and Keras.

Why one script for both frameworks: the two quantize examples must start from the same
float network. The model is trained once in PyTorch (seeded, CPU, a few seconds), and
the Keras twin receives exactly those weights (`tensorflow/model.py` documents the
mapping); the script checks that both give the same logits before saving anything.

Writes (atomically, next to this file unless --output-dir is given):
  pytorch/pretrained.pth        state_dict; load with torch.load(path, weights_only=True)
  tensorflow/pretrained.keras   Keras 3 model file (architecture + weights)
  float_accuracy.json           the measured test accuracies, which tests re-check

Usage: python examples/lstm/train_float_models.py
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from data import DATASET_NAME, load_dataset  # noqa: E402

# Agreement demanded between the PyTorch and Keras float logits before saving.
LOGIT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters; the defaults produced the shipped checkpoints."""

    hidden_size: int = 32
    epochs: int = 60
    batch_size: int = 16
    learning_rate: float = 5e-3
    weight_decay: float = 1e-4
    seed: int = 0


def load_module(path: Path, name: str) -> ModuleType:
    """Import a file under a unique module name (both frameworks' files are called model.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def train_torch_model(x_train: np.ndarray, y_train: np.ndarray, config: TrainConfig,
                      torch_model_module: ModuleType, classifier: str = "LstmClassifier"):
    """Adam + cross-entropy on shuffled mini-batches.

    Seeded initialisation and batch order; the CPU kernels used here are deterministic,
    so a rerun on the same machine reproduces the weights bit for bit (BLAS thread counts
    may change the last bits on another machine; the tests use the shipped checkpoint).
    `torch.use_deterministic_algorithms` is not set: it is a process-wide switch and
    imports torch's compiler stack (seconds) for no effect on these CPU ops.
    """
    import torch

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = getattr(torch_model_module, classifier)(
        input_size=x_train.shape[2], hidden_size=config.hidden_size,
        num_classes=int(y_train.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    inputs = torch.from_numpy(x_train)
    targets = torch.from_numpy(y_train)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), config.batch_size):
            batch = order[start:start + config.batch_size]
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def keras_logits(model, x: np.ndarray) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(model(x, training=False))


def count_correct(logits: np.ndarray, labels: np.ndarray) -> int:
    return int(np.sum(np.argmax(logits, axis=1) == labels))


def percent(correct: int, total: int) -> str:
    """The accuracy as the examples print it ("96.49")."""
    return f"{100.0 * correct / total:.2f}"


def _atomic_target(path: Path, suffix: str) -> Path:
    """A fresh temp file in the target's folder, so os.replace onto the target is atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; ship ordinary readable files
    return Path(tmp)


def save_torch_state_dict(model, path: Path) -> None:
    import torch

    # Saved through a buffer: torch names the archive's root folder after the file, and the
    # temp file's random name would make every retraining produce different bytes.
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    tmp = _atomic_target(path, ".pth")
    try:
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_keras_model(model, path: Path) -> None:
    tmp = _atomic_target(path, ".keras")  # Keras 3 insists on the .keras suffix
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_json(record: dict, path: Path) -> None:
    tmp = _atomic_target(path, ".json")
    try:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def parse_args(argv: list[str] | None, description: str = __doc__.splitlines()[0],
               default_output_dir: Path = HERE) -> tuple[TrainConfig, Path]:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=description)
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name}", type=type(value), default=value)
    parser.add_argument("--output-dir", type=Path, default=default_output_dir,
                        help="where pytorch/, tensorflow/ and float_accuracy.json go "
                             "(default: next to this script)")
    args = vars(parser.parse_args(argv))
    output_dir = args.pop("output_dir")
    return TrainConfig(**args), output_dir


@dataclass(frozen=True)
class ExampleFiles:
    """Where an example's float models live: `<dir>/pytorch/<torch_file>` holds the PyTorch
    `classifier` class, `<dir>/tensorflow/<keras_file>` the Keras twin (`build_model`,
    `keras_weights_from_torch`)."""

    directory: Path
    classifier: str
    torch_file: str
    keras_file: str
    module_prefix: str


LSTM_FILES = ExampleFiles(HERE, "LstmClassifier", "model.py", "model.py", "lstm_example")


def train_and_save(config: TrainConfig, output_dir: Path, files: ExampleFiles = LSTM_FILES) -> dict:
    """Trains the PyTorch classifier, copies its weights into the Keras twin, checks that both
    give the same logits, and writes pretrained.pth, pretrained.keras and float_accuracy.json
    under `output_dir`. Returns the recorded accuracies."""
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = load_dataset()
    torch_module = load_module(files.directory / "pytorch" / files.torch_file, f"{files.module_prefix}_torch_model")
    keras_module = load_module(files.directory / "tensorflow" / files.keras_file, f"{files.module_prefix}_keras_model")

    torch_model = train_torch_model(x_train, y_train, config, torch_module, files.classifier)
    keras_model = keras_module.build_model(
        timesteps=x_train.shape[1], num_features=x_train.shape[2],
        hidden_size=config.hidden_size, num_classes=int(y_train.max()) + 1)
    keras_model.set_weights(keras_module.keras_weights_from_torch(torch_model.state_dict()))

    torch_test = torch_logits(torch_model, x_test)
    keras_test = keras_logits(keras_model, x_test)
    max_diff = float(np.max(np.abs(torch_test - keras_test)))
    if max_diff > LOGIT_TOLERANCE:
        raise RuntimeError(f"PyTorch and Keras float logits differ by {max_diff:.3g} "
                           f"(> {LOGIT_TOLERANCE}); the weight mapping is wrong")

    total = len(y_test)
    record = {
        "dataset": DATASET_NAME,
        "test_total": total,
        "pytorch": {"train_correct": count_correct(torch_logits(torch_model, x_train), y_train),
                    "test_correct": count_correct(torch_test, y_test)},
        "keras": {"test_correct": count_correct(keras_test, y_test)},
        "max_abs_logit_diff": max_diff,
        "train_config": asdict(config),
    }
    for side in ("pytorch", "keras"):
        record[side]["test_accuracy_percent"] = percent(record[side]["test_correct"], total)

    save_torch_state_dict(torch_model, output_dir / "pytorch" / "pretrained.pth")
    save_keras_model(keras_model, output_dir / "tensorflow" / "pretrained.keras")
    save_json(record, output_dir / "float_accuracy.json")

    print(f"train accuracy (pytorch): {percent(record['pytorch']['train_correct'], len(y_train))}%")
    print(f"float accuracy (pytorch): {record['pytorch']['test_accuracy_percent']}%")
    print(f"float accuracy (keras):   {record['keras']['test_accuracy_percent']}%")
    print(f"max |logit difference| pytorch vs keras: {max_diff:.3g}")
    print(f"done in {time.perf_counter() - started:.1f} s; wrote {output_dir}")
    return record


def main(argv: list[str] | None = None) -> int:
    config, output_dir = parse_args(argv)
    train_and_save(config, output_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

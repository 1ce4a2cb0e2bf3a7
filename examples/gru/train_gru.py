"""Train the float GRU classifier of the GRU example and ship it for PyTorch and Keras.

The LSTM example's training (examples/lstm/train_float_models.py: seeded Adam on the CPU, the
Keras twin receives the PyTorch weights and must give the same logits) with `GruClassifier`.

Writes (atomically, next to this file unless --output-dir is given):
  pytorch/pretrained.pth        state_dict; load with torch.load(path, weights_only=True)
  tensorflow/pretrained.keras   Keras 3 model file (architecture + weights)
  float_accuracy.json           the measured test accuracies, which tests re-check

Usage: python examples/gru/train_gru.py
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LSTM_EXAMPLE = HERE.parent / "lstm"  # the dataset loader and the training code
if str(LSTM_EXAMPLE) not in sys.path:
    sys.path.insert(0, str(LSTM_EXAMPLE))

from train_float_models import ExampleFiles, parse_args, train_and_save  # noqa: E402

GRU_FILES = ExampleFiles(HERE, "GruClassifier", "gru_model.py", "keras_gru_model.py", "gru_example")


def main(argv: list[str] | None = None) -> int:
    config, output_dir = parse_args(argv, __doc__.splitlines()[0], HERE)
    train_and_save(config, output_dir, GRU_FILES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

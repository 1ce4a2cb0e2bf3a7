"""Fixtures for the Keras front end: the JapaneseVowels sequences of the LSTM example (real
speech features, 12 coefficients per frame) as calibration and test data."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers.example_files import import_example_file  # noqa: E402


@pytest.fixture(scope="session")
def vowels() -> tuple[np.ndarray, np.ndarray]:
    """(calibration sequences [60, 29, 12], test sequences [40, 29, 12]), float32."""
    data = import_example_file("data.py", "lstm_example_data")
    x_train, _, x_test, _ = data.load_dataset()
    return x_train[:60], x_test[:40]

"""Shared fixtures: paths to the golden files written by the reference tool."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/helpers holds independent reference implementations shared by several test modules.
sys.path.insert(0, str(Path(__file__).parent))

DATA_DIR = Path(__file__).parent / "data"
GOLDEN_LSTM_DIR = DATA_DIR / "golden" / "vitis-rnn-lstm-cell"


@pytest.fixture(scope="session")
def golden_lstm_dir() -> Path:
    """The reference RNN quantizer's output for `nn.LSTM(16, 32)` (see its README.md)."""
    return GOLDEN_LSTM_DIR

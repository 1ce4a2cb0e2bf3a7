"""Fixtures for the xmodel tests: the reference quantizer's LSTM-cell xmodels."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def golden_xmodels(golden_lstm_dir: Path) -> list[Path]:
    """Both golden cell xmodels (Decoder and Encoder), sorted by name."""
    paths = sorted((golden_lstm_dir / "xmodel").glob("*.xmodel"))
    assert len(paths) == 2, f"expected 2 golden xmodels in {golden_lstm_dir / 'xmodel'}"
    return paths


@pytest.fixture(scope="session")
def decoder_xmodel(golden_xmodels: list[Path]) -> Path:
    (path,) = [p for p in golden_xmodels if p.name.startswith("DecoderRnn1_")]
    return path

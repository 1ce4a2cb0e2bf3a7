"""Fixtures for the config tests: the guide's example files and a valid CPU config to mutate."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

CONFIG_DATA = Path(__file__).parent / "data"


def read(name: str) -> dict[str, Any]:
    return json.loads((CONFIG_DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
def config_data_dir() -> Path:
    """Directory of the JSON files copied from the user guide."""
    return CONFIG_DATA


@pytest.fixture
def example_dict() -> dict[str, Any]:
    """The guide's full example config (model + tensor + two layer configs), as a fresh dict."""
    return copy.deepcopy(read("guide_example_config.json"))


@pytest.fixture
def cpu_dict() -> dict[str, Any]:
    """The guide's model configuration (target CPU), without the activation override."""
    data = read("guide_model_config.json")
    del data["tensor_quantize_config"]
    return data

"""Fixtures for the LSTM example tests: the example's files, imported by path.

Why by path: the examples are scripts, not an installed package, and both frameworks'
model files are called model.py, so each is imported under its own unique module name.
examples/lstm is put on sys.path because the example modules import `data` and
`ts_format` from there, as they do when run as scripts.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest
from helpers.example_files import LSTM_EXAMPLE_DIR, import_example_file


@pytest.fixture(scope="session")
def import_example():
    """`import_example_file` as a fixture: test modules cannot import from conftest under
    pytest's importlib import mode."""
    return import_example_file


@pytest.fixture(scope="session")
def lstm_example_dir() -> Path:
    return LSTM_EXAMPLE_DIR


@pytest.fixture(scope="session")
def example_data() -> ModuleType:
    return import_example_file("data.py", "lstm_example_data")


@pytest.fixture(scope="session")
def ts_format() -> ModuleType:
    """The very module data.py uses (same name), so its exception class is the same one."""
    import_example_file("data.py", "lstm_example_data")
    return importlib.import_module("ts_format")


@pytest.fixture(scope="session")
def dataset(example_data: ModuleType):
    """(x_train, y_train, x_test, y_test), loaded once for the session."""
    return example_data.load_dataset()

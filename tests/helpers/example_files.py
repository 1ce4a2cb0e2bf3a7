"""Import the RNN examples' files (scripts, not a package) by path, for any test directory.

Why by path: both frameworks' model files of the LSTM example are called model.py, so each is
imported under its own unique module name; examples/lstm is put on sys.path because the example
modules import `data`, `ts_format`, `cli` and `quantize_flow` from there (the GRU example too),
as they do when run as scripts.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
LSTM_EXAMPLE_DIR = EXAMPLES_DIR / "lstm"
GRU_EXAMPLE_DIR = EXAMPLES_DIR / "gru"


def import_example_file(relative: str, name: str, example_dir: Path = LSTM_EXAMPLE_DIR) -> ModuleType:
    """Import <example_dir>/<relative> (default: examples/lstm) as module `name` (cached in
    sys.modules)."""
    if name in sys.modules:
        return sys.modules[name]
    if str(LSTM_EXAMPLE_DIR) not in sys.path:
        sys.path.insert(0, str(LSTM_EXAMPLE_DIR))
    spec = importlib.util.spec_from_file_location(name, example_dir / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def assert_same_files(first: Path, second: Path) -> int:
    """Both output folders show the same files with the same bytes (through the stable links of
    the export store, see `output_tree.visible_tree`); returns how many."""
    from helpers.output_tree import visible_tree

    files = [{k: v for k, v in visible_tree(root).items() if v is not None} for root in (first, second)]
    assert sorted(files[0]) == sorted(files[1])
    for rel, data in files[0].items():
        assert data == files[1][rel], rel
    return len(files[0])

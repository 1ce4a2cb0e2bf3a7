"""The Keras CNN flow's tests: the PyTorch / Keras twins (`twins.py`) on sys.path."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

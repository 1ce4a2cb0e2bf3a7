"""Makes calib_reference (this directory's independent re-statement of the calibration rules)
importable from the test modules here; pytest runs with --import-mode=importlib, which does not
put test directories on sys.path."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from nndct_shared.messages import reset_warn_once

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture()
def logged_warnings(caplog):
    """Returns a callable listing the warning lines logged so far (once-only state reset)."""
    reset_warn_once()
    caplog.set_level(logging.WARNING, logger="nndct")
    yield lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    reset_warn_once()

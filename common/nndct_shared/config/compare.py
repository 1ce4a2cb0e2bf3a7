"""Where two configurations differ, by option path, for the "config changed since
calibration" check (message QUANT_CONFIG_MISMATCH)."""

from __future__ import annotations

from typing import Any

from .schema import QuantConfig
from .validate import join


def config_differences(a: QuantConfig, b: QuantConfig) -> list[str]:
    """Option paths whose values differ between `a` and `b` (JSON forms compared), sorted."""
    out: list[str] = []
    _diff(a.to_dict(), b.to_dict(), "", out)
    return sorted(out)


def _diff(x: Any, y: Any, path: str, out: list[str]) -> None:
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y)):
            if key not in x or key not in y:
                out.append(join(path, key))
            else:
                _diff(x[key], y[key], join(path, key), out)
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y) and all(
        isinstance(v, dict) for v in x + y
    ):
        for i, (u, v) in enumerate(zip(x, y)):
            _diff(u, v, join(path, i), out)
    elif x != y:
        out.append(path or "(whole configuration)")

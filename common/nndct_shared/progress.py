"""Progress bars for the long loops of the flows (per-cell export, per-frame dumps, later the
CNN flow and fast finetune).

A user running a quantization script in a terminal wants to see that a long export is moving;
a log file, a CI job or a notebook capturing stderr does not want bar redraws mixed into the
messages. So a bar is shown only when all of these hold: ``tqdm`` can be imported (it is not a
dependency), ``sys.stderr`` is a terminal, and the environment variable ``NNDCT_NO_PROGRESS``
is not ``1``. Otherwise the iterable is returned unchanged, so wrapping a loop costs nothing.
Bars go to stderr and are removed when the loop ends (``leave=False``): the messages printed
around them stay readable.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

__all__ = ["DISABLE_ENV", "progress", "progress_enabled"]

DISABLE_ENV = "NNDCT_NO_PROGRESS"
"""Set to ``1`` to turn every progress bar off, e.g. when a terminal is recorded."""

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether a bar would be drawn now (tqdm importable, stderr a terminal, not disabled)."""
    if os.environ.get(DISABLE_ENV) == "1":
        return False
    stream = sys.stderr
    try:
        if stream is None or not stream.isatty():
            return False
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    try:
        import tqdm  # noqa: F401  (optional dependency)
    except ImportError:
        return False
    return True


def progress(
    iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it"
) -> Iterable[T]:
    """``iterable`` wrapped in a transient tqdm bar on stderr, or unchanged (see the module
    docstring for when). ``total`` defaults to ``len(iterable)`` where tqdm can take it."""
    if not progress_enabled():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr,
                dynamic_ncols=True)

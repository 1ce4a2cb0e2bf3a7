"""Fault injection for the output-safety tests: make the n-th call of an OS function fail the way
a full disk does, to prove that a failing export leaves the previous files as they were."""
from __future__ import annotations

import errno

import pytest


def fail_on_call(monkeypatch: pytest.MonkeyPatch, module, name: str, n: int) -> list[int]:
    """Replace `module.name` so that its n-th call raises ENOSPC; returns the list of calls made
    (one entry per call), for the test to check that the failure point was reached."""
    real = getattr(module, name)
    calls: list[int] = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)
    return calls

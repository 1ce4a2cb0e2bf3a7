"""nndct_shared.progress: a transient tqdm bar on a terminal's stderr, nothing anywhere else."""
from __future__ import annotations

import io
import sys

import pytest

from nndct_shared.progress import DISABLE_ENV, progress, progress_enabled


class _Terminal(io.StringIO):
    """A captured stderr that says it is a terminal."""

    def isatty(self) -> bool:
        if self.closed:
            raise ValueError("I/O operation on closed file")  # as a real stream does
        return True


def _terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """Make sys.stderr a terminal. Called in the test body: pytest puts its own capture
    stream back into sys.stderr between the setup and call phases."""
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    return stream


def test_not_a_terminal_returns_the_iterable_itself(monkeypatch, capsys) -> None:
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    items = [1, 2, 3]
    assert not sys.stderr.isatty()  # pytest captures it
    assert progress(items, "work") is items
    assert not progress_enabled()
    assert capsys.readouterr() == ("", "")


def test_terminal_gets_a_bar_on_stderr_that_disappears(monkeypatch) -> None:
    pytest.importorskip("tqdm")
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    terminal = _terminal(monkeypatch)
    assert progress_enabled()
    wrapped = progress(range(4), "export xmodel", unit="cell")
    assert wrapped is not None and not isinstance(wrapped, range)
    assert list(wrapped) == [0, 1, 2, 3]
    text = terminal.getvalue()
    assert "export xmodel" in text and "cell" in text
    # leave=False: the last thing written clears the line the bar was on.
    assert text.endswith("\r") and text.rstrip("\r").split("\r")[-1].strip() == ""
    assert stdout.getvalue() == ""


def test_total_is_passed_for_iterators_without_a_length(monkeypatch) -> None:
    pytest.importorskip("tqdm")
    _terminal(monkeypatch)
    wrapped = progress(iter("abc"), "frames", total=3, unit="frame")
    assert wrapped.total == 3
    assert list(wrapped) == ["a", "b", "c"]


def test_environment_variable_turns_bars_off(monkeypatch) -> None:
    terminal = _terminal(monkeypatch)
    monkeypatch.setenv(DISABLE_ENV, "1")
    items = ["a"]
    assert progress(items, "work") is items
    assert terminal.getvalue() == ""
    monkeypatch.setenv(DISABLE_ENV, "0")  # only "1" disables
    pytest.importorskip("tqdm")
    assert progress_enabled()


def test_without_tqdm_the_iterable_is_returned(monkeypatch) -> None:
    terminal = _terminal(monkeypatch)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` raise ImportError
    items = (1, 2)
    assert progress(items, "work") is items
    assert terminal.getvalue() == ""


def test_closed_or_missing_stderr_means_no_bar(monkeypatch) -> None:
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    closed = _Terminal()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    assert not progress_enabled()
    monkeypatch.setattr(sys, "stderr", None)
    items = [0]
    assert progress(items, "work") is items

"""Kill an export at every step of its commit, one forked child per step, and check what a
reader of the output_dir sees (issue 13).

The steps are the ones `nndct_shared.export_commit` reports through its fault-injection hook
(``NNDCT_COMMIT_FAULT_STEP``: the child kills itself with SIGKILL after that step); a first child
runs the export with ``NNDCT_COMMIT_TRACE`` to enumerate them. Before every child the output_dir
is restored to the same old state (a copy that keeps the symlinks), so every kill starts from
the same directory. Children are forked from the test process after the models were built, so
a child only runs the export itself (torch uses one thread in it: no thread pool survives a
fork).
"""
from __future__ import annotations

import os
import shutil
import signal
import traceback
from collections.abc import Callable
from pathlib import Path

from nndct_shared.export_commit import FAULT_STEP_ENV, TRACE_ENV, sweep

from .output_tree import store_debris, visible_tree

SWITCH_STEPS = ("switched", "took over: switched")
"""The steps after which a new version is what readers see."""
CHILD_TIMEOUT_S = 120


def one_torch_thread() -> None:
    """A forked child's setup when torch ran in the parent: no thread pool survives a fork."""
    import torch

    torch.set_num_threads(1)


def expect_one_switch(seen: list[tuple[str, dict]]) -> None:
    """A single commit: the old tree up to the switch, the new one from it on."""
    labels = [label for label, _ in seen]
    switch = labels.index("switched")
    assert [label for label in labels if label in SWITCH_STEPS] == ["switched"]
    assert all(tree == seen[0][1] for _, tree in seen[:switch])
    assert all(tree == seen[-1][1] for _, tree in seen[switch:])


def run_in_child(action: Callable[[], None], env: dict[str, str], setup: Callable[[], None] | None = None) -> int:
    """Run `action` in a forked child with `env` set; its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            signal.alarm(CHILD_TIMEOUT_S)
            if setup is not None:
                setup()
            os.environ.update(env)
            action()
        except BaseException:
            traceback.print_exc()
            code = 70
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def _restore(template: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(template, out, symlinks=True)


def kill_at_every_step(out: Path, export: Callable[[], None], setup: Callable[[], None] | None = None,
                       normalize: Callable[[dict], dict] | None = None) -> list[tuple[str, dict]]:
    """`out` holds the old result; `export` writes the new one into it. Kills a child after each
    step and checks: every kill leaves the tree of a complete export (what a reader sees changes
    only at a switch step); after a kill the sweep leaves no debris and changes nothing visible.
    `normalize` maps a visible tree to what is compared (for formats that are not byte-stable
    from one write to the next). Returns [(step label, compared tree after a kill there)]; `out`
    ends with the new result."""
    def visible(path: Path) -> dict:
        tree = visible_tree(path)
        return tree if normalize is None else normalize(tree)

    template = out.parent / f"{out.name}.template"
    shutil.copytree(out, template, symlinks=True)
    old = visible(out)
    trace = out.parent / f"{out.name}.steps"
    trace.unlink(missing_ok=True)
    status = run_in_child(export, {TRACE_ENV: str(trace)}, setup)
    assert status == 0, f"the export failed in the child (status {status})"
    new = visible(out)
    assert new != old, "the export under test must change what readers see"
    steps = [line.split("\t", 1)[1] for line in trace.read_text(encoding="utf-8").splitlines()]
    assert any(step in SWITCH_STEPS for step in steps)
    seen: list[tuple[str, dict]] = []
    previous = old
    for k, label in enumerate(steps, start=1):
        _restore(template, out)
        status = run_in_child(export, {FAULT_STEP_ENV: str(k)}, setup)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
            f"step {k} ({label}): the child was not killed there (status {status})"
        tree = visible(out)
        if label not in SWITCH_STEPS:
            assert tree == previous, f"killed after step {k} ({label}): readers see a change outside a switch"
        sweep(out)
        assert store_debris(out) == [], f"killed after step {k} ({label}): the sweep left debris"
        assert visible(out) == tree, f"killed after step {k} ({label}): the sweep changed the result"
        seen.append((label, tree))
        previous = tree
    assert previous == new, "a kill after the last step must leave the new result"
    _restore(template, out)
    status = run_in_child(export, {}, setup)
    assert status == 0 and visible(out) == new
    shutil.rmtree(template)
    trace.unlink()
    return seen

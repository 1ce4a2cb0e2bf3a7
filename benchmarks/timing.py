"""The timing rules of every benchmark here: one warm-up call, then the best of `repeats` calls
(the minimum is the least disturbed by other work on a shared machine). Several contenders are
timed interleaved -- one call of each per round -- so that a burst of load on the machine hits
all of them alike."""
from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls of `fn`, after one warm-up call."""
    return interleaved_best({"fn": fn}, repeats)["fn"]


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Seconds of the fastest call of each function: one warm-up call each, then `repeats`
    rounds that call every function once, in order."""
    for fn in fns.values():
        fn()  # warm-up
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best

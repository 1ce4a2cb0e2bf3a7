"""How many threads the LSTM time loops may use.

Why here: the loops run on the thread team of the C++ library; a process that limits its
threads (NNDCT_NUM_THREADS, or `torch.set_num_threads` when it uses PyTorch) must get loops that
stay within that limit, without nndct_shared ever importing torch.
"""
from __future__ import annotations

import os
import sys


def loop_threads() -> int:
    """NNDCT_NUM_THREADS when it holds a positive integer; else `torch.get_num_threads()` when
    PyTorch is already imported in this process; else the number of CPUs. Read on every call,
    so a change at run time applies to the next forward."""
    env = os.environ.get("NNDCT_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    torch = sys.modules.get("torch")
    get = getattr(torch, "get_num_threads", None)
    if callable(get):
        return max(1, int(get()))
    return max(1, os.cpu_count() or 1)


__all__ = ["loop_threads"]

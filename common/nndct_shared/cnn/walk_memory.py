"""How much memory a node-by-node walk over a captured CNN graph needs (float and quantized side by
side, for every recorded sample): bias correction and fast finetune walk the model once instead
of recomputing it up to each layer, when the walk fits (both front ends use this).

Memory of a walk: the live values of both sides for all recorded samples (a ResNet-style model
keeps two or three at a time). `walk_bytes` estimates the peak from the captured shapes, so that
a caller can fall back to recomputation when it would not fit (`MEMORY_FRACTION`).
"""
from __future__ import annotations

import os
from collections import Counter
from math import prod

from nndct_shared.graph import Graph

__all__ = ["MEMORY_FRACTION", "walk_bytes", "walk_fits"]

#: A walk may use at most this share of the machine's physical memory (`walk_fits`).
MEMORY_FRACTION = 0.25


def walk_bytes(graph: Graph, samples: int, bytes_per_value: int = 4) -> int:
    """Peak bytes of the values a walk keeps (both sides) for `samples` samples, from the
    captured shapes (dimension 0 is the batch)."""
    order = graph.topological_order()
    readers = Counter(t for node in order for t in node.inputs)
    live: dict[str, int] = {}
    peak = 0
    for node in order:
        for name in node.outputs:
            meta = graph.tensor(name)
            shape = tuple(meta.shape) if meta is not None and meta.shape is not None else ()
            live[name] = prod(int(d) for d in shape[1:]) if shape else 1
        peak = max(peak, sum(live.values()))
        for name in node.inputs:
            readers[name] -= 1
            if readers[name] == 0:
                live.pop(name, None)
    return 2 * peak * samples * bytes_per_value


def walk_fits(graph: Graph, samples: int) -> bool:
    """True when `walk_bytes` stays within MEMORY_FRACTION of the physical memory."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: assume it fits
        return True
    return walk_bytes(graph, samples) <= MEMORY_FRACTION * physical

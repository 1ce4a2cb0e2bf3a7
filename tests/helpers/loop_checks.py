"""Checks shared by the fast-against-scalar loop tests of the recurrent cells (LSTM and GRU):
bit-for-bit array comparison, random mixed widths for a cell, and which nodes reached the
limits of their own (narrow) code range."""
from __future__ import annotations

import numpy as np

from nndct_shared.lstm.widths import CellWidths


def same_bits(a, b) -> bool:
    """Same shape and the same bits (also the sign of zeros); float32 against float64 compares
    the exact float64 values."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype:
        a, b = a.astype(np.float64), b.astype(np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def mixed_widths(cell, rng) -> CellWidths:
    """Every node and parameter of `cell` (an LSTM or GRU QuantizedCell) at its own random
    width in 5..16."""
    d = cell.definition
    return CellWidths(tuple(int(w) for w in rng.integers(5, 17, len(d.node_names))),
                      {n: int(rng.integers(5, 17)) for n in d.param_names})


def narrow_limits_reached(codes: np.ndarray, widths: CellWidths, node_names) -> set[str]:
    """Names of the nodes 1.. narrower than 16 bits whose recorded codes ([T, nodes - 1, H])
    reach an end of their own code range; asserts that no code lies outside it."""
    reached = set()
    for i, w in enumerate(widths.node[1:]):
        lo, hi = -2 ** (w - 1), 2 ** (w - 1) - 1
        c = codes[:, i]
        assert c.min() >= lo and c.max() <= hi, f"node {node_names[i + 1]} outside its {w}-bit range"
        if w < 16 and (c.min() == lo or c.max() == hi):
            reached.add(node_names[i + 1])
    return reached

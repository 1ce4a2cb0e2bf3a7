"""Fixed-point kernels (C++, multi-threaded) with a NumPy API.

Everything takes and returns NumPy arrays (float32 or float64; a C-contiguous input is never
copied). See README.md in this folder for the rounding methods and the defined edge cases.
"""
from __future__ import annotations

from ._core import core as _core
from .calib import (
    MAX_SEARCH_RANGE,
    ZERO_TENSOR_FIX_POS,
    diffs_fix_pos,
    diffs_fix_pos_per_channel,
    maxmin_fix_pos,
    maxmin_fix_pos_per_channel,
)
from .fix import fix_codes, fix_codes_per_channel, fix_neuron, fix_neuron_per_channel
from .histogram import AbsHistogram
from .stats import channel_difference_sums, grid_extent
from .methods import METHOD_NAMES, PUBLIC_METHOD_CODES, resolve_method
from .tables import (
    sigmoid_table,
    sigmoid_table_codes,
    sigmoid_table_lookup,
    tanh_table,
    tanh_table_codes,
    tanh_table_lookup,
)


def max_threads() -> int:
    """Threads the kernels may use: CPU count capped by the NNDCT_NUM_THREADS variable."""
    return int(_core.max_threads())


__all__ = [
    "AbsHistogram",
    "MAX_SEARCH_RANGE",
    "METHOD_NAMES",
    "PUBLIC_METHOD_CODES",
    "ZERO_TENSOR_FIX_POS",
    "channel_difference_sums",
    "diffs_fix_pos",
    "diffs_fix_pos_per_channel",
    "fix_codes",
    "fix_codes_per_channel",
    "fix_neuron",
    "fix_neuron_per_channel",
    "grid_extent",
    "max_threads",
    "maxmin_fix_pos",
    "maxmin_fix_pos_per_channel",
    "resolve_method",
    "sigmoid_table",
    "sigmoid_table_codes",
    "sigmoid_table_lookup",
    "tanh_table",
    "tanh_table_codes",
    "tanh_table_lookup",
]

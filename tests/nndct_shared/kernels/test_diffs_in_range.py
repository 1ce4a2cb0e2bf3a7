"""The allocation-free diffs search of the LSTM calibration equals diffs_fix_pos.

`diffs_fix_pos_in_range` takes the tensor's finite min / max from its caller (the LSTM loops
compute them while writing a node's values) and runs the candidates' error sums serially in the
same fixed blocks and lanes as the general search, so its answer must be identical, ties and
caps included, also beyond one block of 65536 values.
"""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared import _kernels as core
from nndct_shared import kernels


@pytest.mark.parametrize("n", [1, 7, 8, 9, 100, 4096, 65536, 65537, 200_001])
@pytest.mark.parametrize("cap", [12, None])
def test_equals_the_general_search(n, cap):
    rng = np.random.default_rng(n)
    for scale in (1e-3, 0.7, 3.0, 900.0):
        x = rng.normal(0, scale, n)
        for bits in (16, 8):
            for search_range in (1, 5):
                want = kernels.diffs_fix_pos(x, bits, search_range=search_range, method="floor", max_fix_pos=cap)
                assert core._diffs_fix_pos_in_range(x, bits, search_range, cap) == want, (scale, bits, search_range)


def test_values_on_a_grid_and_zeros():
    """Fake-quantized values (exact candidates tie at zero error) and all-zero tensors."""
    x = np.round(np.random.default_rng(0).normal(0, 2, 5000) * 64) / 64
    assert core._diffs_fix_pos_in_range(x, 16, 5, 12) == kernels.diffs_fix_pos(x, 16, 5, "floor", 12)
    zeros = np.zeros(100)
    assert core._diffs_fix_pos_in_range(zeros, 16, 5, 12) == kernels.diffs_fix_pos(zeros, 16, 5, "floor", 12)
    assert core._diffs_fix_pos_in_range(zeros, 16, 5, None) == kernels.diffs_fix_pos(zeros, 16, 5, "floor", None)


def test_no_finite_value_is_an_error():
    with pytest.raises(ValueError, match="no finite value"):
        core._diffs_fix_pos_in_range(np.full(3, np.nan), 16, 5, 12)

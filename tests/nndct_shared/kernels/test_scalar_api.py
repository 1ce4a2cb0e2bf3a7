"""The per-element C++ header API (fix_point.h, tables.h) that other C++ kernels call.

Bound in nndct_shared._kernels only so that it can be checked here against the exact model.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel_reference import ALL_METHODS, exact_code, qrange, sigmoid_table_ref, tanh_table_ref
from nndct_shared import _kernels as core

TS = sigmoid_table_ref()
TT = tanh_table_ref()


@settings(max_examples=300, deadline=None)
@given(
    r=st.one_of(st.floats(), st.floats(-1e6, 1e6).map(lambda v: math.floor(v) + 0.5),
                st.floats(-3, 3).map(lambda v: round(v * 2**30) / 2**30)),
    method=st.sampled_from(ALL_METHODS),
    bw=st.integers(2, 32),
)
def test_round_to_code_matches_exact_model(r, method, bw):
    lo, hi = qrange(bw)
    expected = exact_code(r, bw, 0, method)
    assert core.round_to_code(r, method, lo, hi) == (0 if expected is None else expected)


def test_round_to_code_near_half_and_custom_bounds():
    for r, dpu, std in [(-0.5 + 2.0**-54, 0, 0), (0.5 - 2.0**-54, 0, 0), (-0.5, 0, -1), (2.0**51 + 0.5, 5, 5)]:
        assert core.round_to_code(r, 2, -5, 5) == dpu
        assert core.round_to_code(r, 3, -5, 5) == std
    assert core.round_to_code(7.6, 4, 0, 255) == 7
    assert core.round_to_code(-7.6, 4, 0, 255) == 0
    with pytest.raises(ValueError, match="qmin <= qmax"):
        core.round_to_code(1.0, 2, 5, -5)
    with pytest.raises(ValueError, match="method"):
        core.round_to_code(1.0, 9, -5, 5)


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(),
    fp=st.one_of(st.integers(-1100, 1100), st.integers(-20, 40)),
    method=st.sampled_from(ALL_METHODS),
    bw=st.integers(2, 32),
)
def test_fix_code_and_value_scalar_match_exact_model(x, fp, method, bw):
    expected = exact_code(x, bw, fp, method)
    assert core.fix_code_scalar(x, bw, fp, method) == (0 if expected is None else expected)
    value = core.fix_value_scalar(x, bw, fp, method)
    if expected is None:
        assert math.isnan(value)
    else:
        exact = Fraction(expected) * Fraction(2) ** (-fp)
        try:
            want = float(exact)
        except OverflowError:
            want = math.copysign(math.inf, expected)
        assert value == want
        if expected == 0:  # a zero code gives +0.0 (an underflowing nonzero code may give -0.0)
            assert math.copysign(1.0, value) > 0


def test_scalar_edge_values():
    tiny = float(np.finfo(np.float64).smallest_subnormal)
    assert core.fix_code_scalar(-tiny, 8, -1000, 4) == -1  # underflow keeps the sign for floor
    assert core.fix_code_scalar(tiny, 8, -1000, 7) == 1
    assert core.fix_code_scalar(math.inf, 16, 3, 4) == 32767
    assert core.fix_code_scalar(-math.inf, 16, 3, 7) == -32768
    assert core.fix_code_scalar(math.nan, 16, 3, 2) == 0


@pytest.mark.parametrize("fp", [-2, 0, 5, 7, 8, 12, 15, 40, 126])
def test_sigmoid_and_tanh_code_closed_form(fp):
    lim = min(int(9 * 2.0**fp) + 5, 2**62)
    codes = [0, 1, -1, lim, -lim, 2**62, -(2**62)] + list(np.random.default_rng(fp + 1000).integers(-lim, lim, 300))
    for code in codes:
        x = Fraction(int(code)) * Fraction(2) ** (-fp)
        k_s, k_t = math.floor(x * 128), math.floor(x * 256)
        want_s = 32767 if x >= 8 else 0 if x < -8 else int(TS[1024 + k_s])
        want_t = 32767 if x >= 4 else -32768 if x < -4 else int(TT[1024 + k_t])
        assert core.sigmoid_code(int(code), fp) == want_s
        assert core.tanh_code(int(code), fp) == want_t

"""The packed int16 matrix kernel of the recurrent cells against exact integer products.

`gate_matmul` adds products of 16-bit codes in int32 lanes and flushes them to int64 at
intervals derived from the weights and the inputs' largest magnitude; when a single pair can
overflow (two -32768 weights meeting a -32768 input) it splits the inputs into bytes. Whatever
the instruction set, the result must be the exact integer product, which NumPy's int64 matmul
gives here (|sum| < 2^63 for these sizes).
"""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared import _kernels as core

ISAS = ("avx512vnni", "avx512bw", "avx2", "portable")


def available_isas() -> list[str]:
    best = core._gate_matmul_isa()
    return list(ISAS[ISAS.index(best):])


@pytest.fixture(params=ISAS)
def isa(request):
    if request.param not in available_isas():
        pytest.skip(f"this CPU has no {request.param}")
    assert core._set_gate_matmul_isa(request.param)
    yield request.param
    assert core._set_gate_matmul_isa("auto")


def exact(codes: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x.astype(np.int64) @ codes.astype(np.int64).T


def test_the_best_isa_is_used_by_default():
    assert core._gate_matmul_isa() in ISAS
    assert core._set_gate_matmul_isa("auto")
    assert not core._set_gate_matmul_isa("sse9")


@pytest.mark.parametrize("gates", [1, 2, 3, 4])
@pytest.mark.parametrize("units", [1, 7, 16, 17, 100, 128])
def test_random_codes_of_every_size(isa, gates, units):
    rng = np.random.default_rng(gates * 1000 + units)
    for inner in (0, 1, 2, 3, 31, 64, 255, 512):
        for rows in (1, 2, 3, 4, 5, 9):
            codes = rng.integers(-32768, 32768, size=(gates * units, inner)).astype(np.int32)
            x = rng.integers(-32768, 32768, size=(rows, inner)).astype(np.int16)
            np.testing.assert_array_equal(core._gate_matmul(codes, gates, x), exact(codes, x),
                                          err_msg=f"in={inner} rows={rows}")


@pytest.mark.parametrize("inner", [2, 3, 64, 128, 255, 256, 512, 1000])
def test_extreme_codes_where_int32_sums_overflow(isa, inner):
    """All-(-32768) weights and inputs: every pair sums to 2^31 and every row to inner * 2^30."""
    rng = np.random.default_rng(inner)
    codes = np.full((4 * 16, inner), -32768, np.int32)
    codes[1::3] = 32767
    x = np.full((3, inner), -32768, np.int16)
    x[1] = 32767
    x[2] = rng.choice([-32768, 32767], size=inner)
    got = core._gate_matmul(codes, 4, x)
    np.testing.assert_array_equal(got, exact(codes, x))
    assert got.max() == inner * 2 ** 30  # beyond int32: the flush / split paths were needed


@pytest.mark.parametrize("scale", [1, 64, 4096, 32767])
def test_flush_intervals_at_every_weight_magnitude(isa, scale):
    """Row sums of |w| from small (one int32 group) to large (a flush every pair), inputs at
    the largest magnitude, mixed signs."""
    rng = np.random.default_rng(scale)
    codes = rng.integers(-scale, scale + 1, size=(4 * 33, 300)).astype(np.int32)
    x = rng.choice([-32768, 32767, -1, 0], size=(6, 300)).astype(np.int16)
    np.testing.assert_array_equal(core._gate_matmul(codes, 4, x), exact(codes, x))


def test_codes_outside_int16_are_refused():
    with pytest.raises(ValueError, match="16 bits"):
        core._gate_matmul(np.array([[40000]], np.int32), 1, np.zeros((1, 1), np.int16))

"""fix_neuron / fix_codes against the independent references in kernel_reference.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel_reference import (
    ALL_METHODS,
    METHOD_NAME_TO_CODE,
    exact_code,
    exact_value,
    np_fix_codes,
    np_fix_neuron,
    qrange,
)
from nndct_shared import kernels

DTYPES = (np.float32, np.float64)
TIES = np.arange(-5, 5) + 0.5  # -4.5 ... 4.5
# Expected codes of the ties -4.5 .. 4.5 at fix_pos 0, straight from the method definitions.
EXPECTED_TIES = {
    "dpu_round": [-4, -3, -2, -1, 0, 1, 2, 3, 4, 5],
    "std_round": [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5],
    "floor": [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4],
    "old_rnn": [-4, -3, -2, -1, 0, 0, 2, 2, 4, 4],
    "half_even": [-4, -4, -2, -2, 0, 0, 2, 2, 4, 4],
    "half_down": [-4, -3, -2, -1, 0, 0, 1, 2, 3, 4],
    "ceil": [-4, -3, -2, -1, 0, 1, 2, 3, 4, 5],
}


def _nonpublic_code(name: str) -> int:
    return METHOD_NAME_TO_CODE[name]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXPECTED_TIES))
@pytest.mark.parametrize("fix_pos", [0, 3, -2, 20])
def test_exact_ties_every_method(dtype, name, fix_pos):
    x = (TIES * 2.0**-fix_pos).astype(dtype)
    codes = kernels.fix_codes(x, 8, fix_pos, name)
    assert codes.tolist() == EXPECTED_TIES[name]
    values = kernels.fix_neuron(x, 8, fix_pos, name)
    assert values.dtype == dtype
    np.testing.assert_array_equal(values, np.array(EXPECTED_TIES[name], np.float64) * 2.0**-fix_pos)


def test_method_codes_and_aliases():
    x = np.linspace(-9, 9, 145, dtype=np.float32)  # steps of 1/8: plenty of ties at fix_pos 2
    by_code = {c: kernels.fix_codes(x, 8, 2, c) for c in (2, 3, 4, 5)}
    np.testing.assert_array_equal(kernels.fix_codes(x, 8, 2, "dpu_round"), by_code[2])
    np.testing.assert_array_equal(kernels.fix_codes(x, 8, 2, "HALF_UP"), by_code[2])
    np.testing.assert_array_equal(kernels.fix_codes(x, 8, 2, "Std_Round"), by_code[3])
    np.testing.assert_array_equal(kernels.fix_codes(x, 8, 2, "floor"), by_code[4])
    np.testing.assert_array_equal(kernels.fix_codes(x, 8, 2, "old_rnn"), by_code[5])
    np.testing.assert_array_equal(kernels.fix_codes(x, 8, 2, "py3_round"), kernels.fix_codes(x, 8, 2, "half_even"))
    # The methods really differ on these inputs.
    assert len({tuple(v.tolist()) for v in by_code.values()}) == 4


@pytest.mark.parametrize("bad", [0, 1, 6, 7, 8, -1, "nearest", "", "round"])
def test_unknown_method_is_value_error_listing_valid_methods(bad):
    with pytest.raises(ValueError, match="dpu_round"):
        kernels.fix_neuron(np.zeros(3, np.float32), 8, 0, bad)
    with pytest.raises(ValueError, match="std_round"):
        kernels.fix_codes(np.zeros(3, np.float32), 8, 0, bad)


@pytest.mark.parametrize("bad", [2.0, None, True, [2]])
def test_method_of_wrong_type_is_type_error(bad):
    with pytest.raises(TypeError, match="method"):
        kernels.fix_neuron(np.zeros(3, np.float32), 8, 0, bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bw", [2, 3, 4, 5, 8, 9, 12, 16])
@pytest.mark.parametrize("fp", [-6, 0, 5, 12, 40])
def test_random_values_match_numpy_reference(dtype, bw, fp):
    rng = np.random.default_rng(bw * 100 + fp)
    lo, hi = qrange(bw)
    scale = 2.0**-fp
    # Values spread over 1.5x the representable range, plus exact grid points and exact ties.
    x = np.concatenate([
        rng.uniform(1.5 * lo * scale, 1.5 * hi * scale, 3000),
        rng.integers(lo - 3, hi + 3, 500) * scale,
        (rng.integers(lo - 3, hi + 3, 500) + 0.5) * scale,
    ]).astype(dtype)
    for method in ALL_METHODS:
        name = [n for n, c in METHOD_NAME_TO_CODE.items() if c == method][0]
        np.testing.assert_array_equal(kernels.fix_codes(x, bw, fp, name), np_fix_codes(x, bw, fp, method))
        np.testing.assert_array_equal(kernels.fix_neuron(x, bw, fp, name), np_fix_neuron(x, bw, fp, method))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXPECTED_TIES))
def test_inf_saturates_and_nan_propagates(dtype, name):
    x = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30], dtype=dtype)
    for bw in (2, 8, 16, 32):
        lo, hi = qrange(bw)
        assert kernels.fix_codes(x, bw, 4, name).tolist() == [hi, lo, 0, hi, lo]
        v = kernels.fix_neuron(x, bw, 4, name)
        assert v[0] == dtype(hi / 16) and v[1] == dtype(lo / 16)
        assert np.isnan(v[2])
        assert v[3] == v[0] and v[4] == v[1]


@pytest.mark.parametrize("bw, dtype", [(2, np.int8), (8, np.int8), (9, np.int16), (16, np.int16), (17, np.int32), (32, np.int32)])
def test_code_dtype_and_extremes(bw, dtype):
    lo, hi = qrange(bw)
    x = np.array([lo - 10.0, lo, hi, hi + 10.0, 0.0], np.float64)
    codes = kernels.fix_codes(x, bw, 0, 3)
    assert codes.dtype == dtype
    assert codes.tolist() == [lo, lo, hi, hi, 0]


def test_zero_codes_give_positive_zero():
    x = np.array([-0.3, -0.0, -0.49, 0.2], np.float32)
    for method in ("dpu_round", "std_round", "half_even", "half_down", "old_rnn"):
        out = kernels.fix_neuron(x, 8, 0, method)
        assert not np.signbit(out).any(), method
    assert not np.signbit(kernels.fix_neuron(np.array([-0.0, 0.3], np.float64), 8, 0, "ceil")).any()


@pytest.mark.parametrize("fp", [-126, -100, -1, 60, 100, 126])
@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_fix_positions_exact(fp, dtype):
    info = np.finfo(dtype)
    values = [0.0, 1.0, -1.0, 3.0 * 2.0**-fp, -2.5 * 2.0**-fp, 2.5 * 2.0**-fp, 1e-30, -1e-30,
              float(info.max), float(-info.max), float(info.tiny), float(-info.tiny),
              float(info.smallest_subnormal), float(-info.smallest_subnormal)]
    x = np.array(values, dtype=dtype)
    for method in ALL_METHODS:
        name = [n for n, c in METHOD_NAME_TO_CODE.items() if c == method][0]
        codes = kernels.fix_codes(x, 16, fp, name)
        assert codes.tolist() == [exact_code(float(v), 16, fp, method) for v in x]
        out = kernels.fix_neuron(x, 16, fp, name)
        expected = np.array([exact_value(float(v), 16, fp, method, dtype) for v in x], dtype=dtype)
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(out, expected)


def test_float64_ties_are_exact_where_naive_rounding_fails():
    # 0.5 - 2^-54 + 0.5 rounds to 1.0 in double: a naive floor(r + 0.5) would give 1.
    x = np.array([0.5 - 2.0**-54, -(0.5 - 2.0**-54), 2.0**30 + 0.5, -(2.0**30) - 0.5], np.float64)
    assert kernels.fix_codes(x, 32, 0, "dpu_round").tolist() == [0, 0, 2**30 + 1, -(2**30)]
    assert kernels.fix_codes(x, 32, 0, "std_round").tolist() == [0, 0, 2**30 + 1, -(2**30) - 1]
    assert kernels.fix_codes(x, 32, 0, "half_even").tolist() == [0, 0, 2**30, -(2**30)]


def test_float64_underflow_keeps_the_sign_for_floor_and_ceil():
    tiny = float(np.finfo(np.float64).smallest_subnormal)
    x = np.array([-tiny, tiny, -1e-300], np.float64)
    assert kernels.fix_codes(x, 8, -126, "floor").tolist() == [-1, 0, -1]
    assert kernels.fix_codes(x, 8, -126, "ceil").tolist() == [0, 1, 0]
    assert kernels.fix_codes(x, 8, -126, "std_round").tolist() == [0, 0, 0]


@pytest.mark.parametrize("bad_bw", [0, 1, 33, 64, -3])
def test_bit_width_out_of_range(bad_bw):
    with pytest.raises(ValueError, match=r"bit_width must be in \[2, 32\]"):
        kernels.fix_neuron(np.zeros(2, np.float32), bad_bw, 0, 2)


@pytest.mark.parametrize("bad_fp", [-127, 127, 1000])
def test_fix_pos_out_of_range(bad_fp):
    with pytest.raises(ValueError, match=r"fix_pos must be in \[-126, 126\]"):
        kernels.fix_codes(np.zeros(2, np.float32), 8, bad_fp, 2)


def test_non_integer_arguments_rejected():
    with pytest.raises(TypeError, match="bit_width"):
        kernels.fix_neuron(np.zeros(2, np.float32), 8.0, 0, 2)
    with pytest.raises(TypeError, match="fix_pos"):
        kernels.fix_neuron(np.zeros(2, np.float32), 8, 1.5, 2)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex64, bool])
def test_other_dtypes_rejected(dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.fix_neuron(np.zeros(3, dtype=dtype), 8, 0, 2)


def test_out_in_place_and_input_untouched():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((70, 1000)).astype(np.float32)  # > 64K elements: threaded path
    original = x.copy()
    y = kernels.fix_neuron(x, 8, 4, "std_round")
    np.testing.assert_array_equal(x, original)  # out=None: input not modified
    assert y is not x and not np.shares_memory(x, y)
    z = kernels.fix_neuron(x, 8, 4, "std_round", out=x)
    assert z is x  # in place, the very same array comes back
    np.testing.assert_array_equal(x, y)
    buf = np.empty_like(original)
    assert kernels.fix_neuron(original, 8, 4, 3, out=buf) is buf
    np.testing.assert_array_equal(buf, y)


def test_out_validation():
    x = np.zeros(10, np.float32)
    with pytest.raises(TypeError, match="dtype"):
        kernels.fix_neuron(x, 8, 0, 2, out=np.zeros(10, np.float64))
    with pytest.raises(ValueError, match="shape"):
        kernels.fix_neuron(x, 8, 0, 2, out=np.zeros(11, np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        big = np.zeros(20, np.float32)
        kernels.fix_neuron(big[:10], 8, 0, 2, out=big[5:15])
    ro = np.zeros(10, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        kernels.fix_neuron(x, 8, 0, 2, out=ro)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.fix_neuron(x, 8, 0, 2, out=np.zeros(20, np.float32)[::2])


def test_non_contiguous_input_is_handled():
    x = np.arange(-50, 50, dtype=np.float64).reshape(10, 10).T[::2] / 7
    expected = np_fix_neuron(np.ascontiguousarray(x), 8, 3, 3)
    np.testing.assert_array_equal(kernels.fix_neuron(x, 8, 3, "std_round"), expected)
    assert kernels.fix_neuron(x, 8, 3, 3).shape == x.shape


def test_lists_and_scalars_are_accepted_as_float64():
    assert kernels.fix_neuron([0.5, -0.5], 8, 0, "dpu_round").tolist() == [1.0, 0.0]
    out = kernels.fix_neuron(np.float32(2.5), 8, 0, "std_round")
    assert out.shape == () and out.dtype == np.float32 and float(out) == 3.0


def test_empty_input():
    assert kernels.fix_neuron(np.zeros(0, np.float32), 8, 0, 2).shape == (0,)
    assert kernels.fix_codes(np.zeros((0, 3), np.float64), 8, 0, 2).shape == (0, 3)


def test_thread_count_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(300_000) * 3).astype(np.float32)
    results = []
    for threads in ("1", "2", "7"):
        monkeypatch.setenv("NNDCT_NUM_THREADS", threads)
        results.append(kernels.fix_neuron(x, 16, 12, "floor"))
    monkeypatch.setenv("NNDCT_NUM_THREADS", "1")
    assert kernels.max_threads() == 1
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r)
    np.testing.assert_array_equal(results[0], np_fix_neuron(x, 16, 12, 4))


finite_or_special = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(min_value=-300.0, max_value=300.0).map(lambda v: round(v * 4) / 4),  # many ties
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(finite_or_special, min_size=1, max_size=40),
    bw=st.integers(2, 16),
    fp=st.integers(-20, 30),
    method=st.sampled_from(sorted(METHOD_NAME_TO_CODE)),
    dtype=st.sampled_from(DTYPES),
)
def test_property_matches_exact_rational_model(values, bw, fp, method, dtype):
    x = np.array(values, dtype=dtype)
    code = METHOD_NAME_TO_CODE[method]
    expected_codes = [exact_code(float(v), bw, fp, code) for v in x]
    assert kernels.fix_codes(x, bw, fp, method).tolist() == [0 if c is None else c for c in expected_codes]
    out = kernels.fix_neuron(x, bw, fp, method)
    expected = np.array([exact_value(float(v), bw, fp, code, dtype) for v in x], dtype=dtype)
    np.testing.assert_array_equal(out, expected)


def test_contiguous_input_is_passed_without_copy():
    from nndct_shared.kernels._args import as_float_array

    x = np.ones((4, 5), np.float32)
    assert as_float_array(x) is x
    y = np.ones((4, 5), np.float64)[:, ::2]
    z = as_float_array(y)
    assert z is not y and z.flags.c_contiguous and np.array_equal(z, y)

"""The report's numbers on data whose answer is known in closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nndct_shared.report.metrics import TensorStats, output_error, sqnr_db
from nndct_shared.report.quant import FLOOR, NEAREST, TensorQuant


def test_sqnr_of_a_known_error():
    # signal power 4, noise power 0.02^2 = 4e-4 -> 10 log10(1e4) = 40 dB exactly
    reference = np.full(1000, 2.0)
    noisy = reference + np.where(np.arange(1000) % 2, 0.02, -0.02)
    assert sqnr_db(reference, noisy) == pytest.approx(40.0, abs=1e-9)
    assert sqnr_db(reference, reference) == math.inf
    assert sqnr_db(np.zeros(3), np.ones(3)) == -math.inf
    # sine of amplitude A and an error of power p: SQNR = 10 log10(A^2 / 2 / p)
    t = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    assert sqnr_db(3 * np.sin(t), 3 * np.sin(t) + 0.1 * np.cos(7 * t)) == pytest.approx(
        10 * math.log10(4.5 / 0.005), abs=1e-9)


def test_output_error_is_relative_mse_over_all_outputs():
    ref = [np.array([1.0, -1.0]), np.array([[2.0]])]
    out = [np.array([1.5, -1.0]), np.array([[1.0]])]
    assert output_error(ref, out) == pytest.approx((0.25 + 1.0) / (1 + 1 + 4))
    assert output_error(ref, ref) == 0.0


def test_uniform_quantization_noise_is_step_squared_over_twelve():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 200_000)
    q = TensorQuant(8, 5, rounding=NEAREST)  # step 1/32, range [-4, 4): no clipping
    stats = TensorStats()
    stats.add(x, x, np.round(x * 32) / 32, q)
    expected = 10 * math.log10(np.mean(x * x) / (1 / 32) ** 2 * 12)
    assert stats.sqnr_db == pytest.approx(expected, abs=0.05)
    assert stats.clipped == 0


def test_clipped_and_flushed_shares_at_the_code_limits():
    q = TensorQuant(4, 2, rounding=FLOOR)  # codes -8..7, step 1/4: values in [-2, 2)
    pre = np.array([-3.0, -2.0, 0.1, 1.99, 2.0, 5.0, 0.0, -0.1, 0.3])
    codes = np.clip(np.floor(pre * 4), -8, 7)
    post = codes / 4
    stats = TensorStats()
    stats.add(pre, pre, post, q)
    # clipped: -3 (below -2), 2.0 and 5.0 (codes 8 and 20 above 7); flushed: 0.1 (code 0); -0.1 floors to -1
    assert stats.clipped == 3 and stats.flushed == 1
    row = stats.to_json()
    assert row["clipped_share"] == pytest.approx(3 / 9) and row["flushed_share"] == pytest.approx(1 / 9)
    assert (row["float_min"], row["float_max"]) == (-3.0, 5.0)
    nearest = TensorQuant(4, 2, rounding=NEAREST)
    stats = TensorStats()
    stats.add(np.array([1.8, 1.9]), np.array([1.8, 1.9]), np.array([1.75, 1.75]), nearest)
    assert stats.clipped == 1  # 1.9 * 4 = 7.6 rounds to 8 > 7; 7.2 rounds to 7


def test_widened_grid_keeps_the_range():
    q = TensorQuant(8, 5)
    wide = q.widened(16, max_fix_pos=12)
    assert (wide.bit_width, wide.fix_pos, wide.qmin, wide.qmax) == (16, 12, -32768, 32767)
    assert q.widened(16, max_fix_pos=15).fix_pos == 13
    per_channel = TensorQuant(4, (1, 2), axis=0).widened(8)
    assert per_channel.fix_pos == (5, 6)
    scaled = TensorQuant(8, scale=0.5, zero_point=3, qmin=0, qmax=255).widened(16)
    assert (scaled.scale, scaled.zero_point, scaled.qmin, scaled.qmax) == (0.5 / 256, 768, 0, 65535)

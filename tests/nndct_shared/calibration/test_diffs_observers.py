"""DiffsObserver, MaxMinObserver, ParamObserver on real data, against independent computations."""
from __future__ import annotations

import json

import numpy as np
import pytest
from calib_reference import diffs_fix_pos, maxmin_fix_pos, modal

from nndct_shared.calibration import (
    CalibrationError,
    DiffsObserver,
    MaxMinObserver,
    ParamObserver,
    observer_from_state,
)


def _batches(seed: int, count: int, size: int = 2000) -> list[np.ndarray]:
    """Gaussian batches whose scale varies per batch, so the per-call votes differ."""
    rng = np.random.default_rng(seed)
    scales = rng.choice([0.3, 0.7, 1.0, 1.0, 2.5, 6.0], size=count)
    return [rng.normal(0.0, s, size).astype(np.float32) for s in scales]


def _fix_pos_for(fp: int, bit_width: int = 8) -> np.ndarray:
    """A one-value tensor whose max_scale (search range 1) is exactly fp."""
    return np.array([0.9 * (2 ** (bit_width - 1) - 0.5) * 2.0**-fp], dtype=np.float64)


@pytest.mark.parametrize(("bit_width", "method"), [(8, 2), (16, 4), (4, 3)])
def test_votes_and_mode_match_independent_diffs(bit_width: int, method: int) -> None:
    observer = DiffsObserver(bit_width, search_range=5, method=method, name="act")
    expected_votes = []
    for x in _batches(1, 25):
        observer.observe(x)
        expected = diffs_fix_pos(x, bit_width, 5, method, cap=12)
        expected_votes.append(expected)
        assert observer.last_fix_pos == expected
    assert observer.calls_counted == 25
    assert len(set(expected_votes)) > 1 or bit_width == 16
    assert observer.fix_pos == modal(expected_votes)


def test_lstm_hidden_state_is_capped_at_12() -> None:
    x = np.tanh(np.random.default_rng(2).normal(0, 2, (1, 100))).astype(np.float32)
    observer = DiffsObserver(16, search_range=5, method="floor")
    observer.observe(x)
    assert diffs_fix_pos(x, 16, 5, 4, cap=None) >= 14
    assert observer.fix_pos == 12


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [("modal", 3), ("max", 1), ("mean", 3), ("median", 3)],
)
def test_statistics_over_calls(statistic: str, expected: int) -> None:
    # modal 3 (tie with 5); max: the largest scale 2^-1; mean scale 0.1236 is covered by 2^-3;
    # lower median 3
    votes = [3, 5, 3, 9, 5, 3, 1, 5, 2, 6]
    observer = DiffsObserver(8, search_range=1, statistic=statistic)
    for fp in votes:
        observer.observe(_fix_pos_for(fp))
    assert observer.votes.counts() == {1: 1, 2: 1, 3: 3, 5: 3, 6: 1, 9: 1}
    assert observer.fix_pos == expected


def test_search_range_one_is_per_call_maxmin() -> None:
    observer = DiffsObserver(8, search_range=1)
    for x in _batches(4, 10):
        observer.observe(x)
        assert observer.last_fix_pos == maxmin_fix_pos(float(x.min()), float(x.max()), 8)


def test_non_finite_tensor_is_skipped_with_warning_naming_it(logged_warnings) -> None:
    observer = DiffsObserver(8, name="P::y_i")
    observer.observe(np.array([1.0, np.nan, 2.0], dtype=np.float32))
    observer.observe(np.array([np.inf, 0.5]))  # counted, but not logged a second time
    lines = logged_warnings()
    assert len(lines) == 1
    assert "TENSOR_VALUE_INVALID]: Tensor 'P::y_i' has inf or nan values" in lines[0]
    DiffsObserver(8, name="P::y_f").observe(np.array([np.nan]))
    assert len(logged_warnings()) == 2 and "'P::y_f'" in logged_warnings()[1]
    assert observer.fix_pos is None
    assert (observer.calls_counted, observer.skipped_nonfinite) == (0, 2)
    observer.observe(_fix_pos_for(4))
    assert observer.fix_pos == 4


def test_all_zero_and_empty_tensors_are_not_counted(logged_warnings) -> None:
    observer = DiffsObserver(8)
    observer.observe(np.zeros((2, 3), dtype=np.float32))
    observer.observe(np.zeros(0))
    assert logged_warnings() == []  # no range information is not a problem worth a warning
    assert observer.fix_pos is None and observer.skipped_no_range == 2
    observer.observe(_fix_pos_for(6))
    observer.observe(np.zeros(4))
    assert observer.votes.counts() == {6: 1} and observer.fix_pos == 6


def test_integer_tensor_is_rejected() -> None:
    with pytest.raises(CalibrationError, match="dtype int64"):
        DiffsObserver(8, name="ids").observe(np.arange(4))


def test_float16_is_widened() -> None:
    x = np.array([0.5, -3.0, 1.25], dtype=np.float16)
    observer = DiffsObserver(8)
    observer.observe(x)
    assert observer.fix_pos == diffs_fix_pos(x.astype(np.float64), 8)


def test_merge_equals_one_observer_over_all_calls() -> None:
    batches = _batches(5, 20)
    whole, first, second = (DiffsObserver(8, statistic="median") for _ in range(3))
    for i, x in enumerate(batches):
        whole.observe(x)
        (first if i % 3 else second).observe(x)
    first.merge(second)
    assert first.votes.counts() == whole.votes.counts()
    assert first.fix_pos == whole.fix_pos and first.calls_counted == 20


def test_merge_rejects_other_settings_or_kind() -> None:
    with pytest.raises(CalibrationError, match="different settings"):
        DiffsObserver(8).merge(DiffsObserver(8, method=4))
    with pytest.raises(CalibrationError, match="cannot merge a MaxMinObserver"):
        DiffsObserver(8).merge(MaxMinObserver(8))


def test_state_round_trips_through_json(logged_warnings) -> None:
    observer = DiffsObserver(16, search_range=3, method=4, max_fix_pos=None, name="P::c")
    for x in _batches(6, 7):
        observer.observe(x)
    observer.observe(np.array([np.nan]))
    state = json.loads(json.dumps(observer.to_state()))
    restored = observer_from_state(state)
    assert isinstance(restored, DiffsObserver)
    assert restored.to_state() == observer.to_state()
    assert restored.fix_pos == observer.fix_pos and restored.skipped_nonfinite == 1
    assert restored.max_fix_pos is None


@pytest.mark.parametrize(
    ("state", "pattern"),
    [
        ({"kind": "Nope"}, "unknown observer kind 'Nope'"),
        ({"kind": "DiffsObserver", "version": 99}, "version 99"),
        ({"kind": "DiffsObserver", "version": 1, "name": "x"}, "incomplete"),
    ],
)
def test_bad_states(state: dict, pattern: str) -> None:
    with pytest.raises(CalibrationError, match=pattern):
        observer_from_state(state)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"bit_width": 1}, "between 2 and 32"),
        ({"bit_width": 8.0}, "must be an integer"),
        ({"search_range": 0}, "positive integer"),
        ({"statistic": "mode"}, "unknown statistic"),
        ({"max_fix_pos": 1.5}, "max_fix_pos"),
        ({"method": 1}, "unknown rounding method code 1"),
        ({"method": "banker"}, "unknown rounding method 'banker'"),
    ],
)
def test_bad_settings(kwargs: dict, pattern: str) -> None:
    with pytest.raises(CalibrationError, match=pattern):
        DiffsObserver(**kwargs)


def test_maxmin_keeps_the_outlier_that_the_mode_ignores() -> None:
    batches = _batches(7, 30)
    batches[13] = batches[13].copy()
    batches[13][5] = -40.0
    maxmin, diffs = MaxMinObserver(8), DiffsObserver(8)
    for x in batches:
        maxmin.observe(x)
        diffs.observe(x)
    low = min(float(x.min()) for x in batches)
    high = max(float(x.max()) for x in batches)
    assert low == -40.0
    assert maxmin.fix_pos == maxmin_fix_pos(low, high, 8) == 1  # 40 * 2 < 128.5 < 40 * 4
    assert maxmin.fix_pos < diffs.fix_pos == modal([diffs_fix_pos(x, 8) for x in batches])


def test_maxmin_merge_state_and_empty() -> None:
    batches = _batches(8, 6)
    one, a, b = MaxMinObserver(16), MaxMinObserver(16), MaxMinObserver(16)
    assert one.fix_pos is None
    for i, x in enumerate(batches):
        one.observe(x)
        (a if i < 2 else b).observe(x)
    a.merge(b)
    assert (a.min_value, a.max_value) == (one.min_value, one.max_value)
    assert a.fix_pos == one.fix_pos
    restored = observer_from_state(json.loads(json.dumps(one.to_state())))
    assert restored.fix_pos == one.fix_pos


def test_param_observer_calibrates_once() -> None:
    rng = np.random.default_rng(9)
    weight = rng.normal(0, 0.05, (32, 16)).astype(np.float32)
    observer = ParamObserver(16, name="P::weight_ii")
    observer.observe(weight)
    assert observer.fix_pos == diffs_fix_pos(weight, 16, 5, 3, cap=12)
    observer.observe(weight * 100)  # ignored: weights are calibrated on first use
    assert observer.fix_pos == diffs_fix_pos(weight, 16, 5, 3, cap=12)
    assert observer.calls_counted == 1
    again = ParamObserver(8, recalibrate=True)
    again.observe(weight)
    again.observe(weight * 100)
    assert again.fix_pos == diffs_fix_pos(weight * 100, 8, 5, 3)
    assert again.calls_counted == 2


def test_param_observer_zero_bias_and_non_finite(logged_warnings) -> None:
    bias = ParamObserver(16, name="P::bias_i")
    bias.observe(np.zeros(32, dtype=np.float32))
    assert bias.fix_pos == 12  # every fix position is exact: the most precise allowed one
    uncapped = ParamObserver(16, max_fix_pos=None)
    uncapped.observe(np.zeros(4))
    assert uncapped.fix_pos == 18
    broken = ParamObserver(8, name="P::w")
    broken.observe(np.array([1.0, np.inf]))
    assert len(logged_warnings()) == 1 and "'P::w'" in logged_warnings()[0]
    assert broken.fix_pos is None and broken.skipped_nonfinite == 1
    broken.observe(np.array([1.0, -0.5]))
    assert broken.fix_pos == diffs_fix_pos(np.array([1.0, -0.5]), 8, 5, 3)


def test_param_observer_per_channel() -> None:
    rng = np.random.default_rng(10)
    weight = rng.normal(0, 1, (4, 3, 5)) * np.array([0.01, 1.0, 30.0, 0.2])[:, None, None]
    observer = ParamObserver(8, axis=0)
    observer.observe(weight)
    expected = tuple(diffs_fix_pos(weight[c], 8, 5, 3) for c in range(4))
    assert observer.fix_pos == expected
    assert len(set(expected)) == 4
    by_last = ParamObserver(8, axis=-1)
    by_last.observe(weight)
    assert by_last.fix_pos == tuple(diffs_fix_pos(weight[..., c], 8, 5, 3) for c in range(5))
    restored = observer_from_state(json.loads(json.dumps(observer.to_state())))
    assert restored.fix_pos == expected
    with pytest.raises(CalibrationError, match="axis 3 does not exist"):
        ParamObserver(8, axis=3).observe(weight)


def test_param_observer_merge() -> None:
    w = np.array([0.5, -0.25, 0.125])
    a, b, empty = ParamObserver(8), ParamObserver(8), ParamObserver(8)
    b.observe(w)
    a.merge(b)
    assert a.fix_pos == b.fix_pos
    a.merge(empty)
    assert a.fix_pos == b.fix_pos
    other = ParamObserver(8, name="w")
    other.observe(w * 50)
    with pytest.raises(CalibrationError, match="different fix positions"):
        a.merge(other)

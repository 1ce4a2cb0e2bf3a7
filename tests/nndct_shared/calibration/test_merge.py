"""Observers calibrated on shards and merged from their states equal one observer on the union.

This is the exactness calibration on several processes rests on (pytorch_nndct.distributed only
moves the states): for every observer kind and statistic, shards of unequal size (one of them
empty) are observed separately, their states travel through pickle and JSON as they would
between processes, and `merge_states` folds them. The merged fix position (and every exact
field of the state) must equal the one observer that saw every call, in any merge order; and
the state of a streaming observer must not grow with the number of calls.
"""
from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from nndct_shared.calibration import (
    DiffsObserver,
    EntropyObserver,
    FloatRangeObserver,
    HistogramVoteObserver,
    MaxMinObserver,
    MseObserver,
    ParamObserver,
    PercentileObserver,
)
from nndct_shared.calibration.exact_sum import ExactSum
from nndct_shared.calibration.merge import merge_state_maps, merge_states
from nndct_shared.calibration.per_channel import PerChannelObserver
from nndct_shared.calibration.screening import CalibrationError

FACTORIES = {
    "diffs_modal": lambda: DiffsObserver(8, statistic="modal"),
    "diffs_max": lambda: DiffsObserver(8, statistic="max"),
    "diffs_mean": lambda: DiffsObserver(8, statistic="mean"),
    "diffs_median": lambda: DiffsObserver(8, statistic="median"),
    "diffs_lstm": lambda: DiffsObserver(16, method=4),
    "param_per_channel": lambda: ParamObserver(8, axis=0),
    "maxmin": lambda: MaxMinObserver(8),
    "percentile": lambda: PercentileObserver(99.9, bit_width=8),
    "mse": lambda: MseObserver(bit_width=8),
    "entropy": lambda: EntropyObserver(bit_width=8),
    "float_max": lambda: FloatRangeObserver(8, statistic="max"),
    "float_mean": lambda: FloatRangeObserver(8, symmetric=False, statistic="mean"),
    "float_median": lambda: FloatRangeObserver(8, statistic="median"),
    "float_percentile": lambda: FloatRangeObserver(8, symmetric=False, percentage=99.9),
    # the config options' observers (every method and statistic of the guide)
    "votes_percentile_median": lambda: HistogramVoteObserver("percentile", 8, statistic="median", percentage=99.9),
    "votes_mse_mean": lambda: HistogramVoteObserver("mse", 8, statistic="mean"),
    "votes_entropy_max": lambda: HistogramVoteObserver("entropy", 8, statistic="max"),
    "float_mse": lambda: FloatRangeObserver(8, statistic="mean", method="mse"),
    "float_entropy": lambda: FloatRangeObserver(8, statistic="max", method="entropy"),
    "pow2_asymmetric_diffs": lambda: FloatRangeObserver(8, symmetric=False, method="diffs", power_of_two=True,
                                                        max_fix_pos=12, statistic="mean"),
    "param_per_channel_float": lambda: PerChannelObserver(1, {"kind": "FloatRangeObserver", "config": {
        "bit_width": 8, "method": "maxmin", "statistic": "max"}}),
}


@pytest.fixture(scope="module")
def activations() -> list[np.ndarray]:
    """40 batches of a real layer's pre-activations: sklearn digits through a fixed random
    linear layer (float32), the scale drifting from batch to batch like a real activation's."""
    from sklearn.datasets import load_digits

    images = load_digits().data.astype(np.float32) / 16.0
    weights = np.random.default_rng(0).normal(0.0, 0.5, (64, 32)).astype(np.float32)
    batches = np.array_split(images[:1600] @ weights, 40)
    return [(b * np.float32(1.0 + 0.37 * math.sin(k))).astype(np.float32) for k, b in enumerate(batches)]


def _observe(observer, batches):
    for batch in batches:
        observer.observe(batch)
    return observer


def _exact_view(observer):
    """The fields that must be bit-equal: the whole state, with ExactSum partials (whose list
    form depends on the order of the additions) replaced by their exactly rounded value."""
    state = observer.to_state()
    data = dict(state["data"])
    for key in ("min_sum", "max_sum"):
        if key in data:
            data[key] = ExactSum.from_state(data[key]).value()
    for key in ("mins", "maxs"):  # the median's per-call values: a multiset
        if key in data:
            data[key] = sorted(data[key])
    if state["kind"] == "ParamObserver":  # a weight is calibrated once per process that saw it
        state.pop("calls_counted")
    return {**state, "data": data}


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_shards_merged_from_states_equal_one_observer(kind, activations) -> None:
    make = FACTORIES[kind]
    if kind.startswith("param"):  # a weight: every rank sees the same tensor
        activations = [activations[0]] * 3
    shards = [activations[:1], activations[1:2], [], activations[2:]] if kind.startswith("param") else \
        [activations[:23], activations[23:24], [], activations[24:]]
    whole = _observe(make(), activations)
    states = [pickle.loads(pickle.dumps(json.loads(json.dumps(_observe(make(), s).to_state())))) for s in shards]
    merged = merge_states(states)
    assert merged.fix_pos == whole.fix_pos is not None
    assert _exact_view(merged) == _exact_view(whole)
    backwards = merge_states(states[::-1])  # another rank order: the same result
    assert backwards.fix_pos == whole.fix_pos
    if isinstance(whole, FloatRangeObserver):
        assert merged.range() == whole.range() == backwards.range()


def test_float_mean_is_exact_where_float_sums_are_not(activations) -> None:
    """Per-call minima of very different magnitudes summed in two orders give two floats; the
    observer's mean does not depend on the order (the exact sum, rounded once, over the count)."""
    batches = [(b * np.float32(10.0 ** ((k * 3) % 11 - 5))).astype(np.float32) for k, b in enumerate(activations)]
    minima = [float(b.min()) for b in batches]
    assert sum(minima) != sum(reversed(minima))  # the data exercises float rounding
    forward = _observe(FloatRangeObserver(8, statistic="mean"), batches)
    backward = _observe(FloatRangeObserver(8, statistic="mean"), batches[::-1])
    assert forward.range() == backward.range()
    assert forward.range()[0] == math.fsum(minima) / len(minima)


def test_exact_sum_merges_in_any_order() -> None:
    values = [1e16, 1.0, -1e16, 3.5e-300, 2.0**-40, 7.25, -1.0]
    whole = ExactSum(values)
    assert whole.value() == math.fsum(values)
    left, right = ExactSum(values[:3]), ExactSum(values[3:])
    right.merge(left)
    assert right.value() == whole.value() == ExactSum(values[::-1]).value()
    assert ExactSum.from_state(json.loads(json.dumps(whole.to_state()))).value() == whole.value()
    with pytest.raises(ValueError, match="finite"):
        ExactSum().add(math.inf)


def _numbers_in(value) -> int:
    if isinstance(value, dict):
        return sum(_numbers_in(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_numbers_in(v) for v in value)
    return 1


@pytest.mark.parametrize("kind", [k for k in FACTORIES if k != "float_median"])
def test_state_does_not_grow_with_the_calls(kind, activations) -> None:
    """Every streaming observer's state has the same size after 40 calls as after 4000: memory
    is independent of the calibration set (the float median alone keeps one value per call)."""
    few = _observe(FACTORIES[kind](), activations)
    many = FACTORIES[kind]()
    for _ in range(100):
        _observe(many, activations)
    # ExactSum keeps at most a few dozen partials whatever the count; allow for them
    slack = 2 * 40 if kind.startswith("float") else 0
    assert _numbers_in(many.to_state()) <= _numbers_in(few.to_state()) + slack
    assert many.fix_pos is not None


def test_merge_state_maps_and_mismatches(activations) -> None:
    a = {"x": _observe(DiffsObserver(8), activations[:5]).to_state()}
    b = {"x": _observe(DiffsObserver(8), activations[5:]).to_state(),
         "y": _observe(MaxMinObserver(8), activations[:1]).to_state()}
    merged = merge_state_maps([a, {}, b])
    assert list(merged) == ["x", "y"]
    assert merged["x"].fix_pos == _observe(DiffsObserver(8), activations).fix_pos
    with pytest.raises(CalibrationError, match="different settings"):
        merge_states([a["x"], DiffsObserver(6).to_state()])
    with pytest.raises(CalibrationError, match="at least one"):
        merge_states([])

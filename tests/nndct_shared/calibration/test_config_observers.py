"""The observers behind the config's options: per-call histogram votes (power-of-two mse,
entropy, percentile), float mse / entropy clips, per-channel wrappers and the factory table."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from calib_reference import abs_histogram, quantization_mse

from nndct_shared.calibration import (
    DiffsObserver,
    FloatQParams,
    FloatRangeObserver,
    HistogramVoteObserver,
    ParamObserver,
    PerChannelObserver,
    make_observer,
    observer_from_state,
)
from nndct_shared.calibration import histogram_selection as sel
from nndct_shared.calibration.fix_pos_votes import FixPosVotes
from nndct_shared.calibration.float_scale import fake_quant_float_numpy, qparams_from_range


def _batches(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for scale in (0.5, 1.0, 2.0, 4.0, 1.5):
        x = rng.normal(0.0, scale, 5000).astype(np.float32)
        x[:2] = [8 * scale, -7 * scale]  # outliers the clipping methods should not follow
        out.append(x)
    return out


@pytest.mark.parametrize("method", ["percentile", "mse", "entropy"])
def test_histogram_votes_are_the_per_call_selections(method):
    batches = _batches()
    observer = HistogramVoteObserver(method, 8, statistic="max", percentage=99.0)
    expected = []
    for x in batches:
        observer.observe(x)
        values = x[x != 0] if method != "percentile" else x
        counts, r = abs_histogram(values, observer.num_bins)
        if method == "percentile":
            expected.append(sel.select_percentile_fix_pos(counts, r, 99.0, 8, 12))
        elif method == "mse":
            expected.append(sel.select_mse_fix_pos(counts, r, 8, 12))
        else:
            expected.append(sel.select_entropy_fix_pos(counts, r, 8, 12))
    assert observer.votes.counts() == FixPosVotes({fp: expected.count(fp) for fp in expected}).counts()
    assert observer.fix_pos == min(expected)  # max: the largest scale
    again = observer_from_state(json.loads(json.dumps(observer.to_state())))
    assert again.fix_pos == observer.fix_pos and again.votes.counts() == observer.votes.counts()
    first, second = (HistogramVoteObserver(method, 8, statistic="max", percentage=99.0) for _ in range(2))
    for x in batches[:2]:
        first.observe(x)
    for x in batches[2:]:
        second.observe(x)
    first.merge(second)
    assert first.votes.counts() == observer.votes.counts()


def test_mse_clips_outliers_and_keeps_exact_zeros_out():
    x = _batches()[1]
    relu = np.maximum(x, 0)  # half exact zeros
    fp_no_clip = HistogramVoteObserver("percentile", 8, percentage=100.0)
    fp_mse = HistogramVoteObserver("mse", 8)
    for observer in (fp_no_clip, fp_mse):
        observer.observe(relu)
    assert fp_mse.fix_pos > fp_no_clip.fix_pos  # the outlier is clipped
    # the zeros change nothing: the vote on the non-zero values alone is the same
    alone = HistogramVoteObserver("mse", 8)
    alone.observe(relu[relu != 0])
    assert alone.fix_pos == fp_mse.fix_pos


def test_entropy_of_a_few_values_does_not_clip():
    """Nine weights (a depthwise 3x3 channel) are no distribution: no clipping, for both scale
    types."""
    w = np.array([0.01, -0.02, 0.03, 0.5, -0.01, 0.02, 0.0, -0.03, 0.01], np.float32)
    counts, r = abs_histogram(w, 2048)
    assert sel.select_entropy_fix_pos(counts, r, 8, 12) == sel.no_clip_fix_pos(sel._top_magnitude(counts, r), 8)
    assert sel.select_float_entropy_clip(counts, r, 128) == sel._top_magnitude(counts, r)


def test_float_mse_clip_is_the_best_candidate_on_the_data():
    """The clip the histogram model picks is, on the data itself, within 2 % of the best MSE any
    candidate clip gives (the model assumes values uniform inside a bin)."""
    x = _batches()[3]
    counts, r = abs_histogram(x, 2048)
    chosen = sel.select_float_mse_clip(counts, r, 127)

    def mse(clip: float) -> float:
        step = clip / 127
        q = np.clip(np.round(x.astype(np.float64) / step), -127, 127) * step
        return float(np.mean((q - x) ** 2))

    width = r / 2048
    best = min(mse(n * width) for n in sel._float_candidates(counts, 1))
    assert chosen < float(np.abs(x).max())  # it clips
    assert mse(chosen) <= best * 1.02


def test_float_entropy_clips_a_gaussian_with_outliers():
    x = _batches()[0]
    counts, r = abs_histogram(x[x != 0], 2048)
    clip = sel.select_float_entropy_clip(counts, r, 128)
    assert 1.0 < clip < 0.5 * float(np.abs(x).max())


def _call_range(x, **options):
    """The range one call gives (an observer that saw only `x`)."""
    observer = FloatRangeObserver(8, **options)
    observer.observe(x)
    return observer.range()


@pytest.mark.parametrize("method", ["mse", "entropy", "percentile"])
def test_float_range_observer_clips_per_call_and_combines(method):
    batches = _batches()
    observer = FloatRangeObserver(8, statistic="mean", method=method, percentage=99.9)
    maxmin = FloatRangeObserver(8, statistic="mean")
    for x in batches:
        observer.observe(x)
        maxmin.observe(x)
    calls = [_call_range(x, method=method, percentage=99.9) for x in batches]
    full = [_call_range(x) for x in batches]
    lo, hi = observer.range()
    assert lo == pytest.approx(np.mean([c[0] for c in calls])) and hi == pytest.approx(np.mean([c[1] for c in calls]))
    assert all(a[0] >= b[0] and a[1] <= b[1] for a, b in zip(calls, full))  # clipped, never widened
    assert observer.fix_pos.scale < maxmin.fix_pos.scale
    again = observer_from_state(json.loads(json.dumps(observer.to_state())))
    assert again.fix_pos == observer.fix_pos


def test_float_mse_needs_a_symmetric_grid():
    with pytest.raises(Exception, match="symmetric grid"):
        FloatRangeObserver(8, symmetric=False, method="mse")


def test_float_unsigned_clips_the_positive_values():
    """An unsigned symmetric grid maps every negative value to 0: the clip is chosen on x >= 0."""
    x = _batches()[1]
    observer = FloatRangeObserver(8, signed=False, method="mse")
    observer.observe(x)
    positive = np.maximum(x, 0)
    counts, r = abs_histogram(positive[positive != 0], 2048)
    assert observer.range()[1] == min(float(x.max()), sel.select_float_mse_clip(counts, r, 255))


@pytest.mark.parametrize("template", [
    {"kind": "FloatRangeObserver", "config": {"bit_width": 8, "method": "maxmin", "statistic": "max"}},
    {"kind": "HistogramVoteObserver", "config": {"method": "mse", "bit_width": 8, "statistic": "max"}},
])
def test_per_channel_is_the_per_tensor_method_per_slice(template):
    rng = np.random.default_rng(1)
    w = (rng.normal(0, 1, (6, 4, 3, 3)) * np.array([0.01, 0.1, 1, 3, 0.5, 0.2])[:, None, None, None])
    w = w.astype(np.float32)
    w[4] = 0.0  # a pruned channel
    observer = PerChannelObserver(0, template, name="conv.weight")
    observer.observe(w)
    result = observer.fix_pos
    assert len(result) == 6
    for c in range(6):
        single = observer_from_state({**observer.channels[c].to_state()})
        if c == 4:
            assert result[c] == single.no_range_result()
            continue
        fresh = type(single)(**template["config"])
        fresh.observe(w[c])
        assert result[c] == fresh.fix_pos
    again = observer_from_state(json.loads(json.dumps(observer.to_state())))
    assert again.fix_pos == result
    if template["kind"] == "FloatRangeObserver":
        assert result[4] == FloatQParams(1.0, 0) and result[3] == qparams_from_range(
            float(w[3].min()), float(w[3].max()), observer.channels[3].spec)


@dataclass
class _Settings:
    """The fields of a CNN tensor setting that `make_observer` reads."""

    method: str
    is_float: bool = False
    is_param: bool = False
    axis: Any = None
    name: str = "t"
    bit_width: int = 8
    search_range: int = 5
    statistic: str = "max"
    percentage: Any = 99.0
    round_method: str = "half_up"
    symmetric: bool = True
    signed: bool = True
    narrow_range: bool = False
    max_fix_pos: int = 12


@pytest.mark.parametrize("settings, kind", [
    (_Settings("diffs"), DiffsObserver),
    (_Settings("maxmin", search_range=1), DiffsObserver),
    (_Settings("diffs", is_param=True), ParamObserver),
    (_Settings("diffs", is_param=True, axis=0), ParamObserver),
    (_Settings("mse"), HistogramVoteObserver),
    (_Settings("entropy", is_param=True), HistogramVoteObserver),
    (_Settings("percentile", is_param=True, axis=0), PerChannelObserver),
    (_Settings("entropy", is_float=True), FloatRangeObserver),
    (_Settings("maxmin", is_float=True, is_param=True, axis=0), PerChannelObserver),
])
def test_factory_table(settings, kind):
    observer = make_observer(settings)
    assert type(observer) is kind
    w = np.random.default_rng(2).normal(0, 1, (4, 8)).astype(np.float32)
    observer.observe(w)
    result = observer.fix_pos
    if settings.axis is not None:
        assert isinstance(result, tuple) and len(result) == 4
    elif settings.is_float:
        assert isinstance(result, FloatQParams)
        assert np.all(np.isfinite(fake_quant_float_numpy(w, observer.spec, result, "half_even")))
    else:
        assert isinstance(result, int) and quantization_mse(w, 8, result) < 0.01


def test_power_of_two_scales_with_a_zero_point():
    from nndct_shared.calibration.float_scale import FloatQuantSpec, covering_power_of_two

    assert covering_power_of_two(0.25) == 0.25 and covering_power_of_two(0.26) == 0.5
    assert covering_power_of_two(1e-9, max_fix_pos=12) == 2.0 ** -12
    spec = FloatQuantSpec(8, signed=False, symmetric=False)
    qp = qparams_from_range(-0.7, 2.9, spec, power_of_two=True)
    assert qp.scale == 2.0 ** -6  # (2.9 + 0.7) / 255 = 0.0141 -> 1/64
    assert fake_quant_float_numpy(np.zeros(1, np.float32), spec, qp, "half_even")[0] == 0.0
    x = _batches()[2]
    maxmin = FloatRangeObserver(8, symmetric=False, power_of_two=True, max_fix_pos=12)
    diffs = FloatRangeObserver(8, symmetric=False, power_of_two=True, max_fix_pos=12, method="diffs",
                               search_range=5)
    maxmin.observe(x)
    diffs.observe(x)
    assert diffs.fix_pos.scale <= maxmin.fix_pos.scale

    def error(qp):
        return float(np.sum((fake_quant_float_numpy(x, diffs.spec, qp, "half_even").astype(np.float64) - x) ** 2))

    candidates = [diffs._grid_at(maxmin.fix_pos.scale / 2 ** k, float(x.min())) for k in range(5)]
    best = min(candidates, key=error)
    assert diffs.fix_pos.scale == best.scale  # the per-call winner, as the only call

"""FixPosVotes: the statistics over per-call fix positions, checked against numpy/scipy."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from calib_reference import modal

from nndct_shared.calibration import STATISTICS, CalibrationError, FixPosVotes


def _votes(values) -> FixPosVotes:
    votes = FixPosVotes()
    for v in values:
        votes.add(v)
    return votes


def test_known_sequence() -> None:
    votes = _votes([3, 5, 3, 7, 5, 1, 12, 5, 3, -2])
    assert votes.total == 10
    assert votes.counts() == {-2: 1, 1: 1, 3: 3, 5: 3, 7: 1, 12: 1}
    assert votes.value("modal") == 3  # 3 and 5 tie with 3 votes: the smaller wins
    assert votes.value("max") == -2  # the largest scale, 2^2
    # mean scale (3/8 + 3/32 + 1/128 + 1/2 + 1/4096 + 4) / 10 = 0.4977: covered by 2^-1
    assert votes.value("mean") == 1
    assert votes.value("median") == 3  # sorted: ... 3, 3, 3 | 5, 5 ...: the lower middle is 3


def test_mean_is_the_covering_fix_position_of_the_mean_scale() -> None:
    assert _votes([-1, -2]).value("mean") == -2  # mean scale 3: covered by 4 = 2^2
    assert _votes([-3, -3, 0]).value("mean") == -3  # (8 + 8 + 1) / 3 = 5.67: covered by 8
    assert _votes([4, 4]).value("mean") == 4  # an exact power of two is its own cover
    assert _votes([0, 2]).value("mean") == 0  # (1 + 1/4) / 2 = 0.625: covered by 1


def _covering_by_scan(values: list[int], scale: Fraction) -> int:
    return max(f for f in range(min(values) - 2, max(values) + 3) if Fraction(2) ** -f >= scale)


def test_empty_votes_give_none() -> None:
    for statistic in STATISTICS:
        assert FixPosVotes().value(statistic) is None


@given(st.lists(st.integers(min_value=-20, max_value=30), min_size=1, max_size=60))
def test_statistics_match_numpy_and_scipy(values: list[int]) -> None:
    votes = _votes(values)
    ordered = sorted(values)
    assert votes.value("modal") == modal(values)
    scales = sorted(Fraction(2) ** -v for v in values)
    assert votes.value("max") == min(values)
    assert votes.value("mean") == _covering_by_scan(values, sum(scales) / len(values))
    middle = len(scales) // 2
    median = scales[middle] if len(scales) % 2 else (scales[middle - 1] + scales[middle]) / 2
    assert votes.value("median") == _covering_by_scan(values, median)
    assert votes.value("median") == ordered[(len(values) - 1) // 2]  # the lower median fix position


@given(
    st.lists(st.integers(min_value=-5, max_value=15), max_size=40),
    st.lists(st.integers(min_value=-5, max_value=15), max_size=40),
)
def test_merge_equals_one_collection(first: list[int], second: list[int]) -> None:
    merged = _votes(first)
    merged.merge(_votes(second))
    together = _votes(first + second)
    assert merged.counts() == together.counts()
    for statistic in STATISTICS:
        assert merged.value(statistic) == together.value(statistic)


def test_memory_does_not_grow_with_calls() -> None:
    votes = FixPosVotes()
    for i in range(100_000):
        votes.add(10 + i % 3)
    assert votes.counts() == {10: 33_334, 11: 33_333, 12: 33_333}
    assert len(votes.to_pairs()) == 3


def test_pairs_round_trip() -> None:
    votes = _votes([4, 4, 9, -1])
    assert votes.to_pairs() == [[-1, 1], [4, 2], [9, 1]]
    assert FixPosVotes.from_pairs(votes.to_pairs()).counts() == votes.counts()


@pytest.mark.parametrize(
    ("fix_pos", "count", "pattern"),
    [(1.0, 1, "must be an int"), (True, 1, "must be an int"), (3, -1, "non-negative")],
)
def test_bad_votes(fix_pos, count, pattern) -> None:
    with pytest.raises(CalibrationError, match=pattern):
        FixPosVotes().add(fix_pos, count)


def test_unknown_statistic() -> None:
    with pytest.raises(CalibrationError, match="unknown statistic 'mode'"):
        _votes([1]).value("mode")

"""Bias correction's error accumulator merged from per-batch parts equals the running one.

Bias correction on several processes gathers every rank's per-batch error sums and adds them in
rank, then batch, order: that must give exactly the bits of one process that updated a single
accumulator batch by batch over the same batches.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from nndct_shared.algorithms import ChannelMeanError, difference_row_sums


@pytest.fixture(scope="module")
def output_pairs():
    """(quantized, float) outputs of a digits 'layer' [batch, channels, 8]: the float output and
    its value rounded to a 2^-5 grid, in batches of uneven size."""
    from sklearn.datasets import load_digits

    images = load_digits().data[:400].reshape(-1, 8, 8).astype(np.float32) / 16.0
    weights = np.random.default_rng(1).normal(0.0, 0.7, (8, 8)).astype(np.float32)
    y = np.einsum("bhw,ch->bcw", images, weights)
    q = np.round(y * 32.0) / 32.0
    bounds = [0, 37, 150, 151, 290, 400]
    return [(q[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def test_parts_merged_in_order_equal_one_running_accumulator(output_pairs):
    running = ChannelMeanError(channel_axis=1)
    parts = []
    for quantized, reference in output_pairs:
        running.update(quantized, reference)
        part = ChannelMeanError(channel_axis=1)
        part.update(quantized, reference)
        parts.append(pickle.loads(pickle.dumps(part.to_state())))
    merged = ChannelMeanError(channel_axis=1)
    merged.merge(ChannelMeanError())  # an empty part (a rank without samples) adds nothing
    for state in parts:
        merged.merge(ChannelMeanError.from_state(state))
    assert merged.count == running.count == 400 * 8
    assert merged.mean().tobytes() == running.mean().tobytes()


def test_merge_refuses_another_channel_count(output_pairs):
    quantized, reference = output_pairs[0]
    a, b = ChannelMeanError(1), ChannelMeanError(1)
    a.update(quantized, reference)
    b.update(quantized[:, :3], reference[:, :3])
    with pytest.raises(ValueError, match="channel count changed"):
        a.merge(b)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_row_sums_in_blocks_on_threads_equal_the_whole_difference(threads):
    """`difference_row_sums` (blocks of rows, several threads) gives the bits of the whole float64
    difference summed per row, and `update_sums` with it the accumulator of `update_rows`."""
    rng = np.random.default_rng(7)
    channels, values = 13, 3 * 4099  # a block count that does not divide, odd row lengths
    y = (rng.standard_normal((channels, values)) * rng.uniform(0.01, 100.0, (channels, 1))).astype(np.float32)
    q = (np.round(y * 64.0) / 64.0).astype(np.float32)
    whole = np.subtract(q, y, dtype=np.float64).sum(axis=1)
    got = difference_row_sums(q, y, threads)
    assert got.dtype == np.float64 and np.array_equal(got, whole)
    by_rows, by_sums = ChannelMeanError(), ChannelMeanError()
    by_rows.update_rows(np.subtract(q, y, dtype=np.float64))
    by_sums.update_sums(got, values)
    assert by_sums.count == by_rows.count and np.array_equal(by_sums.mean(), by_rows.mean())
    with pytest.raises(ValueError):
        difference_row_sums(q, y[:, 1:], threads)

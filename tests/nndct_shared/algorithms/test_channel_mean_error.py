"""Bias correction's error accumulator merged from per-batch parts equals the running one.

Bias correction on several processes gathers every rank's per-batch error sums and adds them in
rank, then batch, order: that must give exactly the bits of one process that updated a single
accumulator batch by batch over the same batches.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from nndct_shared.algorithms import ChannelMeanError
from nndct_shared.kernels import channel_difference_sums


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


def test_update_reads_the_channel_axis_of_any_layout(output_pairs):
    """`update` sums each channel from the outputs' own layout: NCHW-like (axis 1) and the
    same values channels-last (axis -1) give one mean (up to the order of the additions), each
    exactly `channel_difference_sums` over the values seen."""
    quantized, reference = output_pairs[1]
    first, last = ChannelMeanError(1), ChannelMeanError(-1)
    first.update(quantized, reference)
    last.update(np.moveaxis(quantized, 1, -1).copy(), np.moveaxis(reference, 1, -1).copy())
    assert first.count == last.count == quantized.shape[0] * quantized.shape[2]
    assert first.mean().tobytes() == (channel_difference_sums(quantized, reference, 1) / first.count).tobytes()
    assert np.allclose(first.mean(), last.mean(), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="shapes differ"):
        first.update(quantized, reference[:, :, :4])

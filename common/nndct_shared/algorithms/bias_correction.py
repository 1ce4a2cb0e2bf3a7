"""Empirical bias correction math (Nagel et al. 2019, sec. 4.2; Banner et al. 2019).

Why: quantizing a layer's weights (and its inputs) shifts the expected value of its outputs,
E[y_q] - E[y] = E[(W_q - W) x_q] + E[W (x_q - x)], and that shift is systematic: it passes
through the following layers as a bias, which rounding noise does not. Its per-channel mean,
measured on calibration data, is subtracted from the layer's bias, so the quantized layer is
unbiased on that data (up to the bias's own quantization step).

`ChannelMeanError` accumulates the per-channel sum of (quantized - float) output over batches in
float64, so memory stays one vector per layer however many batches are seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nndct_shared.kernels import channel_difference_sums

__all__ = ["BiasCorrection", "ChannelMeanError", "corrected_bias"]


@dataclass(frozen=True)
class BiasCorrection:
    """Per-channel mean output error of one node, before and after its correction (what a
    front end's bias correction reports for each layer it corrects; `error_after` is None when
    the flow skips measuring it)."""

    node: str
    error_before: np.ndarray
    error_after: np.ndarray | None


class ChannelMeanError:
    """Running mean over every axis but `channel_axis` of (quantized - float) outputs."""

    def __init__(self, channel_axis: int = 1) -> None:
        self.channel_axis = channel_axis
        self._sum: np.ndarray | None = None
        self._count = 0

    def update(self, quantized: np.ndarray, reference: np.ndarray) -> None:
        """Add one batch; both arrays have the same shape (batch first), float32 or float64, in
        any layout with the channels on `channel_axis` (NCHW, NHWC, [N, features]): the sums
        are read from that layout by `kernels.channel_difference_sums` (float64 differences,
        additions in a fixed order, no copy of the outputs)."""
        q, r = np.asarray(quantized), np.asarray(reference)
        if q.shape != r.shape:
            raise ValueError(f"output shapes differ: {q.shape} vs {r.shape}")
        channels = q.shape[self.channel_axis]
        self.update_sums(channel_difference_sums(q, r, self.channel_axis), q.size // channels if channels else 0)

    def update_sums(self, batch_sum: np.ndarray, count: int) -> None:
        """Add one batch given as its per-channel sums of (quantized - float) over `count`
        values per channel (what `update` adds; a part made elsewhere, e.g. on another rank)."""
        batch_sum = np.asarray(batch_sum, dtype=np.float64)
        if self._sum is None:
            self._sum = batch_sum
        elif self._sum.shape != batch_sum.shape:
            raise ValueError(f"channel count changed: {self._sum.shape[0]} vs {batch_sum.shape[0]}")
        else:
            self._sum = self._sum + batch_sum
        self._count += count

    @property
    def count(self) -> int:
        """Values per channel seen so far."""
        return self._count

    def mean(self) -> np.ndarray:
        """The per-channel mean error; ValueError before any update."""
        if self._sum is None or self._count == 0:
            raise ValueError("no outputs were accumulated")
        return self._sum / self._count

    def merge(self, other: "ChannelMeanError") -> None:
        """Add `other`'s sums and count. Float sums depend on the order of the additions, so
        merging per-batch accumulators in batch order gives exactly the bits of updating one
        accumulator batch by batch (how the calibration of several processes equals one)."""
        if other._sum is None:
            return
        if self._sum is None:
            self._sum = np.array(other._sum, dtype=np.float64)
        elif self._sum.shape != other._sum.shape:
            raise ValueError(f"channel count changed: {self._sum.shape[0]} vs {other._sum.shape[0]}")
        else:
            self._sum = self._sum + other._sum
        self._count += other._count

    def to_state(self) -> dict:
        """{"channel_axis", "sum" (float64 array or None), "count"}: picklable plain data."""
        return {"channel_axis": self.channel_axis, "sum": self._sum, "count": self._count}

    @classmethod
    def from_state(cls, state: dict) -> "ChannelMeanError":
        acc = cls(int(state["channel_axis"]))
        acc._sum = None if state["sum"] is None else np.asarray(state["sum"], dtype=np.float64)
        acc._count = int(state["count"])
        return acc


def corrected_bias(bias: np.ndarray | None, mean_error: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """bias - mean_error (a zero bias when the layer had none), in `dtype`."""
    err = np.asarray(mean_error, dtype=np.float64)
    base = np.zeros_like(err) if bias is None else np.asarray(bias, dtype=np.float64)
    if base.shape != err.shape:
        raise ValueError(f"bias shape {base.shape} does not match the error's {err.shape}")
    return (base - err).astype(dtype)

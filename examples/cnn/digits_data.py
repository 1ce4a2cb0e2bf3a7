"""The digits split of the CNN examples, in NumPy (no framework needed).

sklearn's 8x8 digits scaled to [0, 1], shuffled with a fixed seed: the first 1400 images train,
the other 397 test. The PyTorch example reads it as NCHW tensors (`digits_net.digits`), the
Keras example as NHWC arrays (`tensorflow/model.py`).
"""
from __future__ import annotations

import numpy as np


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, 8, 8] float32 in [0, 1], labels [N] int64) of the train or test split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    perm = np.random.default_rng(0).permutation(len(data.target))
    x = (data.images[perm] / 16.0).astype(np.float32)
    y = data.target[perm].astype(np.int64)
    return (x[:1400], y[:1400]) if split == "train" else (x[1400:], y[1400:])
